"""Which prompt endings token healing may re-choose.

Shared by the FIM prompt (lsp_server/prompts.py) and the context builder (`assemble.py`);
it lives here so that the context engine depends on nothing else of the server.
"""

from __future__ import annotations

MAX_HEAL_CHARS = 64


def healable_text(text: str) -> bool:
    """Whether a prefix's last token (its text) may be re-chosen by token healing: a piece
    of a word or of punctuation on one line, ASCII (so its text is exactly its bytes)."""
    return bool(text.strip()) and "\n" not in text and "\r" not in text \
        and text.isascii() and len(text) <= MAX_HEAL_CHARS
