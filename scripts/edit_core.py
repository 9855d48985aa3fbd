"""The edit example: the language server's prompt layout, and the checks each example passes.

An `EditExample` holds a whole document, the region the server would let the model rewrite,
the document's edit history as the server records it (`EditHistory`, unified diffs with two
lines of context, oldest first) and the rewrite. `pieces()` is exactly what
`lsp_server.edits.build_edit_prompt` lays out for that document, region, history and
instruction (when the prompt budget does not trim it; `shown` records a trim made to fit
`max_chars`, cut at whole lines as the server cuts).

Every next-edit example is checked before it is used: its rewrite passes the server's gates
(`edit_gates.check_next_edit`), and the document with the rewrite in place parses whenever
the document before the user's change did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from edit_syntax import Syntax, default_syntax
from training_data import Pieces

from lsp_server.edit_gates import Reason, check_instruction_edit, check_next_edit, parses
from lsp_server.edits import BEFORE_LINE_STEP, EditRegion, choose_region
from lsp_server.history import EditHistory

Replacement = tuple[int, int, str]  # text[start:end] becomes the string
HISTORY_SHARE = 0.5  # of max_chars: at most this much edit history (the newest diffs)
BEFORE_SHARE = 2 / 3  # of the room left for the file around the region


@dataclass(frozen=True)
class EditExample:
    kind: str
    language: str
    path: str
    text: str  # the document as the model sees it (after the user's change)
    region: EditRegion  # what the server lets the model rewrite, with the cursor
    history: tuple[str, ...]  # this document's diffs, oldest first
    rewrite: str  # the region as it should become
    instruction: str | None = None
    shown: tuple[int, int] | None = None  # [start, end) of `text` in the prompt; None: all

    @property
    def region_text(self) -> str:
        return self.text[self.region.start:self.region.end]

    def applied(self, rewrite: str | None = None) -> str:
        """The document with `rewrite` (default: the expected one) in place of the region."""
        new = self.rewrite if rewrite is None else rewrite
        return self.text[:self.region.start] + new + self.text[self.region.end:]

    def pieces(self) -> Pieces:
        """The prompt, up to and including `<|rewrite|>`."""
        start, end = self.shown or (0, len(self.text))
        r, text = self.region, self.text
        head = [] if self.instruction is None else ["<|instruction|>", self.instruction + "\n"]
        return [*head, "<|edit_history|>", *self.history, "<|file_sep|>", f"{self.path}\n",
                text[start:r.start], "<|region_start|>", text[r.start:r.cursor], "<|cursor|>",
                text[r.cursor:r.end], "<|region_end|>", text[r.end:end], "<|rewrite|>"]

    def training_pieces(self) -> Pieces:
        return [*self.pieces(), self.rewrite, "<|endoftext|>"]


def record_history(path: str, text: str, changes: Sequence[Replacement]
                   ) -> tuple[list[str], str]:
    """The diffs the server's history records when `changes` are made one after another,
    each a burst of its own (each change in the coordinates of the text it applies to),
    and the text after them."""
    history = EditHistory()
    now = 0.0
    for start, end, new in changes:
        history.record(path, text, start, text[start:end], new, now)
        text = text[:start] + new + text[end:]
        now += 60.0
    return [entry.diff for entry in history.entries(include_open=True)], text


def apply(text: str, replacements: Sequence[Replacement], base: int = 0) -> str:
    """`text` with non-overlapping replacements made (offsets are `base` + offsets in it)."""
    out, at = [], 0
    for start, end, new in sorted(replacements):
        out += [text[at:start - base], new]
        at = end - base
    return "".join(out) + text[at:]


def shift(replacements: Sequence[Replacement], at: int, delta: int) -> list[Replacement]:
    """Replacements in a text where `delta` characters were inserted at offset `at`."""
    return [(s + delta if s >= at else s, e + delta if e >= at else e, new)
            for s, e, new in replacements]


def fit(example: EditExample, max_chars: int) -> EditExample | None:
    """The example cut down to about `max_chars` characters as the server's budget cuts a
    prompt: the newest diffs first, the text before the region from its top in steps of
    BEFORE_LINE_STEP lines, the text after it from its bottom. None when the region and the
    newest diff alone do not fit."""
    text, r = example.text, example.region
    room = max_chars - len(example.region_text) - len(example.path) \
        - len(example.instruction or "")
    context = r.start + len(text) - r.end
    history_room = max(room * HISTORY_SHARE, room - context)
    history: list[str] = []
    for diff in reversed(example.history):
        if len(diff) > history_room:
            break
        history.insert(0, diff)
        history_room -= len(diff)
    if example.history and not history:
        return None
    room -= sum(len(diff) for diff in history)
    if room < 0:
        return None
    if r.start + len(text) - r.end <= room:
        return replace(example, history=tuple(history), shown=None)
    start = _keep_end(text[:r.start], int(room * BEFORE_SHARE))
    end = r.end + _keep_start(text[r.end:], room - (r.start - start))
    left = room - (r.start - start) - (end - r.end)
    if left > 0 and start > 0:
        start = _keep_end(text[:r.start], r.start - start + left)
    return replace(example, history=tuple(history), shown=(start, end))


def _keep_end(before: str, chars: int) -> int:
    """Where the last whole lines of `before` (which ends a line) that fit in `chars`
    start: a multiple of BEFORE_LINE_STEP lines, unless all of it fits."""
    if len(before) <= chars:
        return 0
    # line starts from which the rest fits, the last one (len(before)) keeping no line
    lowest = len(before) - chars
    kept: list[int] = []
    newline = before.find("\n", max(lowest - 1, 0))
    while newline >= 0:
        if newline + 1 >= lowest:
            kept.append(newline + 1)
        newline = before.find("\n", newline + 1)
    lines = len(kept) - 1
    lines -= lines % BEFORE_LINE_STEP
    return kept[len(kept) - 1 - lines] if kept else len(before)


def _keep_start(after: str, chars: int) -> int:
    if len(after) <= chars:
        return len(after)
    cut = after.rfind("\n", 0, max(chars, 0))
    return cut + 1 if cut >= 0 else 0


def gate(example: EditExample, syntax: Syntax | None = None) -> Reason | None:
    """Why the language server would not show this rewrite (its gates), or None."""
    syntax = syntax or default_syntax()
    parser = syntax.parser(example.language)
    r = example.region
    if example.instruction is not None:
        return check_instruction_edit(text=example.text, start=r.start, end=r.end,
                                      new_region=example.rewrite, parser=parser)
    return check_next_edit(text=example.text, start=r.start, end=r.end,
                           new_region=example.rewrite, cursor=r.cursor,
                           history=list(example.history), parser=parser)


def next_edit(kind: str, language: str, path: str, original: str, changes: Sequence[Replacement],
              cursor: int, targets: Sequence[Replacement], max_chars: int, *,
              syntax: Syntax | None = None, need_change: bool = True) -> EditExample | None:
    """A verified next-edit example.

    `original`: the document before the user's `changes` (made in turn, recorded as the
    history); `cursor`: where the cursor is after them; `targets`: the replacements (in the
    current document) that carry the change on. The region is the one the server chooses
    at the cursor; only the targets inside it are made, and a target across its boundary
    rejects the example. `need_change`: without a target inside the region there is no
    example (False: the rewrite is then the region as it is, a "no change" answer)."""
    syntax = syntax or default_syntax()
    history, current = record_history(path, original, changes)
    parsed = syntax.parse(language, current)
    before = syntax.parse(language, original)
    if parsed is None or before is None or not history:
        return None
    region = choose_region(current, cursor, parsed.doc, parsed.spec)
    if kind != "typing" and not parses(parsed.parser, current, region.start, region.end):
        return None  # the region holds an ERROR node: what needs changing is unclear
    inside: list[Replacement] = []
    for start, end, new in targets:
        if region.start <= start and end <= region.end:
            inside.append((start, end, new))
        elif start < region.end and end > region.start:
            return None
    if need_change and not inside:
        return None
    rewrite = apply(current[region.start:region.end], inside, region.start)
    example = fit(EditExample(kind, language, path, current, region, tuple(history), rewrite),
                  max_chars)
    if example is None or gate(example, syntax) is not None:
        return None
    if before.ok and not syntax.parses(language, example.applied()):
        return None
    return example
