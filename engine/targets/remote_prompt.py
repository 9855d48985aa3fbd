"""Prompts for a remote model: the language server's token prompt as text or as a chat.

The language server builds prompts as token ids of the LOCAL tokenizer (the embedded
model's): a fill-in-the-middle prompt (`<|file_sep|>` files, `<|edit_history|>` diffs,
`<|fim_prefix|>` ... `<|fim_suffix|>` ... `<|fim_middle|>`) or an edit prompt
(`<|instruction|>`, `<|edit_history|>`, `<|file_sep|>` path + text before the region,
`<|region_start|>` ... `<|cursor|>` ... `<|region_end|>` text after, `<|rewrite|>`).
The ids are split at special-token ids (never at marker strings, which a file may hold
as text), so the parts are exact. A tokenizer without sparkedit's edit tokens (a Qwen
checkpoint's) gets the plain-text edit layout of lsp_server/edit_prompt_text.py instead,
whose markers are text: it is recognised by its text markers (`TEXT_EDIT`), which the
language server never lets source text forge. For /completions the text goes as it is,
markers kept; for a chat model the parts are laid out as a short chat (`chat_messages`).

Token healing cannot be done remotely (the first token cannot be constrained), so the
healed text is put back at the end of the prefix: the answer still starts at the cursor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, count

from engine.tokenizer import Tokenizer

CURSOR = "<CURSOR>"
REGION_OPEN, REGION_CLOSE = "<REGION>", "</REGION>"
FENCE = "```"

COMPLETE_SYSTEM = (
    "You are a code completion engine inside an editor. The user shows a file with the "
    f"cursor marked {CURSOR}. Reply with only the code to insert at {CURSOR}: no "
    "explanation, no repetition of the code around the cursor, no Markdown code fences. "
    "Reply with nothing if nothing belongs there."
)
EDIT_SYSTEM = (
    f"You are a code editor inside an editor. The user shows a file in which a region is "
    f"marked between {REGION_OPEN} and {REGION_CLOSE}, with the cursor at {CURSOR}. Rewrite "
    "the region as the developer most likely wants it next (following the instruction when "
    "there is one). Reply with only the new text of the region, the full replacement for "
    "everything between the markers, without the markers, without explanation and without "
    "Markdown code fences. If nothing should change, reply with the region unchanged."
)
TEXT_SYSTEM = "Continue the text. Reply with only the continuation."


@dataclass(frozen=True)
class TextEditLayout:
    """The plain-text edit layout's markers, as lsp_server/edit_prompt_text.py writes them
    (a test checks that the two agree). The builder neutralizes every copy of a marker or
    header in the source around the region and refuses a region that holds a marker, so
    each is the builder's own at its first occurrence."""

    instruction: str = "### Instruction:\n"
    edits: str = "### User Edits:\n\n"
    excerpt: str = "\n### User Excerpt:\n\n"
    region_start: str = "<|editable_region_start|>\n"
    cursor: str = "<|user_cursor_is_here|>"
    region_end: str = "<|editable_region_end|>\n"
    tail: str = "\n### Response:\n<|editable_region_start|>\n"


TEXT_EDIT = TextEditLayout()


@dataclass(frozen=True, kw_only=True)
class PromptParts:
    """A prompt taken apart. `kind`: "fim", "edit" or "text" (a layout not recognised)."""

    kind: str
    raw: str  # the whole prompt as text, markers kept, the healed text put back
    files: tuple[tuple[str, str], ...] = ()  # (path, content) of context files
    history: str = ""
    instruction: str | None = None
    path: str | None = None  # the current file (edit prompts name it)
    prefix: str = ""  # FIM prefix, or the text before an edit's region
    suffix: str = ""  # FIM suffix, or the text after an edit's region
    region: tuple[str, str] = ("", "")  # an edit's region before and after the cursor
    head: str = ""  # raw text before <|fim_prefix|> (for prompt + suffix requests)
    markers: tuple[str, ...] = field(default=(), repr=False)


def split_at_markers(tokenizer: Tokenizer, ids: Sequence[int], special_ids: Mapping[str, int]
                     ) -> list[tuple[str | None, str]]:
    """[(marker or None, text up to the next marker)] in order; each text decoded alone
    (a special token is a whole token, so piecewise decoding is exact)."""
    names = {int(i): name for name, i in special_ids.items()}
    cuts = list(compress(count(), map(names.__contains__, ids)))  # C-speed scan
    pieces: list[tuple[str | None, str]] = []
    marker: str | None = None
    start = 0
    for i in cuts:
        pieces.append((marker, tokenizer.token_bytes(ids[start:i]).decode("utf-8", "replace")))
        marker, start = names[ids[i]], i + 1
    pieces.append((marker, tokenizer.token_bytes(ids[start:]).decode("utf-8", "replace")))
    return pieces


def _path_and_text(text: str) -> tuple[str, str]:
    path, _, body = text.partition("\n")
    return path.strip(), body


def _text_edit(raw: str) -> PromptParts | None:
    """The parts of a plain-text edit prompt (see TextEditLayout), or None for other text."""
    lay = TEXT_EDIT
    if not raw.endswith(lay.tail):
        return None
    body = raw[:len(raw) - len(lay.tail)]
    instruction, at = None, 0
    if body.startswith(lay.instruction):
        end = body.find("\n\n" + lay.edits)
        if end < 0:
            return None
        instruction, at = body[len(lay.instruction):end].strip(), end + 2
    if not body.startswith(lay.edits, at):
        return None
    at += len(lay.edits)
    cuts = [at]
    for marker in (lay.excerpt, lay.region_start, lay.cursor, lay.region_end):
        found = body.find(marker, cuts[-1])
        if found < 0:
            return None
        cuts.append(found)
    _, excerpt, start, cursor, end = cuts
    path, before = _path_and_text(body[excerpt + len(lay.excerpt):start])
    return PromptParts(kind="edit", raw=raw, history=body[at:excerpt],
                       instruction=instruction or None, path=path, prefix=before,
                       suffix=body[end + len(lay.region_end):],
                       region=(body[start + len(lay.region_start):cursor],
                               body[cursor + len(lay.cursor):end]))


def parse_prompt(pieces: list[tuple[str | None, str]], heal: str | None = None) -> PromptParts:
    heal = heal or ""
    if heal:  # back at the end of the prefix, where the prompt builder took it from
        pieces = [(m, t + heal if m == "<|fim_prefix|>" else t) for m, t in pieces]
    raw = "".join((m or "") + t for m, t in pieces)
    markers = tuple(m for m, _ in pieces if m is not None)
    seen = set(markers)
    files: list[tuple[str, str]] = []
    by_marker: dict[str, str] = {}
    for m, t in pieces:
        if m == "<|file_sep|>":
            files.append(_path_and_text(t))
        elif m is not None:
            by_marker[m] = t
    history = by_marker.get("<|edit_history|>", "")
    if {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"} <= seen:
        head = raw[:raw.rfind("<|fim_prefix|>")] if "<|fim_prefix|>" in raw else ""
        return PromptParts(kind="fim", raw=raw, files=tuple(files), history=history,
                           prefix=by_marker["<|fim_prefix|>"],
                           suffix=by_marker["<|fim_suffix|>"], head=head, markers=markers)
    if {"<|region_start|>", "<|region_end|>", "<|rewrite|>"} <= seen and files:
        path, before = files.pop()  # the file piece just before the region is the current one
        instruction = by_marker.get("<|instruction|>")
        return PromptParts(kind="edit", raw=raw, files=tuple(files), history=history,
                           instruction=instruction.strip() if instruction else None,
                           path=path, prefix=before, suffix=by_marker["<|region_end|>"],
                           region=(by_marker["<|region_start|>"],
                                   by_marker.get("<|cursor|>", "")), markers=markers)
    text_edit = None if markers else _text_edit(raw)
    return text_edit or PromptParts(kind="text", raw=raw, markers=markers)


def _context_blocks(parts: PromptParts) -> list[str]:
    blocks = [f"Related file {path}:\n{FENCE}\n{text.rstrip()}\n{FENCE}"
              for path, text in parts.files]
    if parts.history.strip():
        blocks.append(f"Recent edits (unified diffs, oldest first):\n{FENCE}diff\n"
                      f"{parts.history.rstrip()}\n{FENCE}")
    return blocks


def chat_messages(parts: PromptParts) -> list[dict[str, str]]:
    """system + user messages for a chat model. An edit's original region goes separately,
    as the request's predicted output."""
    blocks = _context_blocks(parts)
    if parts.kind == "fim":
        blocks.append(f"The file being edited:\n{FENCE}\n{parts.prefix}{CURSOR}{parts.suffix}"
                      f"\n{FENCE}")
        system = COMPLETE_SYSTEM
    elif parts.kind == "edit":
        before, after = parts.region
        blocks.append(f"The file being edited ({parts.path}):\n{FENCE}\n{parts.prefix}"
                      f"{REGION_OPEN}{before}{CURSOR}{after}{REGION_CLOSE}{parts.suffix}"
                      f"\n{FENCE}")
        if parts.instruction:
            blocks.append(f"Instruction: {parts.instruction}")
        system = EDIT_SYSTEM
    else:
        blocks, system = [parts.raw], TEXT_SYSTEM
    return [{"role": "system", "content": system},
            {"role": "user", "content": "\n\n".join(blocks)}]


class FenceFilter:
    """Chat models often wrap code in a Markdown fence even when told not to. Streams the
    output through, but when it opens with a fence, drops the opening line and ends at the
    closing fence (`done` turns True; the caller stops reading)."""

    def __init__(self) -> None:
        self._head = ""  # output held while it may still be an opening fence
        self._state = "start"  # "start" | "plain" | "fenced" | "closed"
        self._tail = ""  # fenced output held while it may be "\n```"
        self._sentinel = False  # _tail starts with a "\n" that is not output

    @property
    def done(self) -> bool:
        return self._state == "closed"

    def feed(self, delta: str) -> str:
        if self._state == "plain":
            return delta
        if self._state == "fenced":
            return self._inside(delta)
        if self._state == "closed":
            return ""
        self._head += delta
        if len(self._head) < len(FENCE) and FENCE.startswith(self._head):
            return ""
        if not self._head.startswith(FENCE):
            self._state, out, self._head = "plain", self._head, ""
            return out
        if "\n" not in self._head:
            return ""  # still the opening line (```python)
        rest = self._head[self._head.index("\n") + 1:]
        self._state, self._head, self._tail, self._sentinel = "fenced", "", "\n", True
        return self._inside(rest)

    def _inside(self, delta: str) -> str:
        text = self._tail + delta
        cut = text.find("\n" + FENCE)
        if cut >= 0:
            self._state, self._tail = "closed", ""
            out = text[:cut]
        else:
            # Hold back what may start "\n```" at the end.
            hold = next((n for n in range(min(len(FENCE) + 1, len(text)), 0, -1)
                         if text.endswith(("\n" + FENCE)[:n])), 0)
            self._tail = text[len(text) - hold:]
            out = text[:len(text) - hold]
        if self._sentinel and out:
            # The "\n" put before the fenced text (so a fence on its first line closes it).
            out, self._sentinel = out[1:], False
        return out

    def flush(self) -> str:
        """What is held at the end of the output."""
        if self._state == "start":
            out, self._head = self._head, ""
            return out
        if self._state == "fenced":
            out, self._tail = self._tail, ""
            if self._sentinel:
                out, self._sentinel = out[1:], False
            return out
        return ""
