"""Documents over maxFileBytes: tracked exactly, never parsed whole; completions see a window
of the text around the cursor, and edits say why they are not offered."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server.context.assemble import ContextOptions
from lsp_server.documents import Document
from lsp_server.workspace import Workspace, WorkspaceSettings, cursor_window

LINES = st.lists(st.sampled_from(["x = 1", "", "def f():", "    return 2", "é😀"]),
                 min_size=1, max_size=60).map(lambda lines: "\n".join(lines) + "\n")


@settings(max_examples=200, deadline=None)
@given(text=LINES, size=st.integers(1, 80), where=st.floats(0, 1))
def test_the_window_holds_the_cursor_within_its_size_at_line_starts(text, size, where):
    offset = round(where * len(text))
    window, start = cursor_window(text, offset, size)
    assert text[start:start + len(window)] == window
    assert start <= offset <= start + len(window)
    assert len(window) <= max(size, 0) or window == text
    if start > 0:  # cut after a line break, unless none lies between the cut and the cursor
        assert text[start - 1] == "\n" or "\n" not in text[start:offset]


def workspace(limit: int) -> Workspace:
    return Workspace(tokenizer=Tokenizer.from_dir(default_model_dir()),
                     settings=WorkspaceSettings(max_file_bytes=limit))


def test_a_document_over_the_limit_gets_no_tree_and_a_context_around_the_cursor():
    body = "".join(f"def f{n}(x):\n    return x + {n}\n\n\n" for n in range(3000))
    doc = Document(uri="file:///big.py", text=body + "total = f1(", version=1,
                   language_id="python")
    ws = workspace(20_000)
    assert ws.too_large(doc.text) and not ws.too_large("x" * 5_000)
    assert not ws.too_large("é" * 9_000) and ws.too_large("😀" * 5_001)  # UTF-8 bytes
    ws.opened(doc)
    assert ws.tree(doc.uri) is None
    context = ws.context(doc, len(doc.text), ContextOptions(budget=512))
    text = "".join(seg.text for seg in context.segments)
    assert "total = f1" in text and "def f2999(x)" in text and "def f0(x)" not in text
    small = Document(uri="file:///small.py", text="def g():\n    pass\n", version=1,
                     language_id="python")
    ws.opened(small)
    assert ws.tree(small.uri) is not None
