"""Edit and next-edit prompts, and turning a rewritten region back into minimal text edits.

Pure: no engine, no protocol. Offsets are indices into the document's Python string.
The prompt layout here is the one the embedded model is trained on (`EditTask.pieces()` in
scripts/training_data.py, see docs/prompt_formats.md): special tokens are single ids and
every other piece is tokenized on its own with the literal encoder, so a special-token
string inside source code stays text. Checkpoints without these tokens get the plain-text
layout of edit_prompt_text.py, which shares the budget rules and the answer parsing here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lsp_server.completion import CHARS_PER_TOKEN_BOUND
from lsp_server.context.languages import LanguageSpec
from lsp_server.context.privacy import redact_secrets
from lsp_server.context.syntax import editable_region
from lsp_server.context.tokens import Ids, TokenCounter
from lsp_server.context.trees import DocumentTree

EDIT_HISTORY = "<|edit_history|>"
INSTRUCTION = "<|instruction|>"
FILE_SEP = "<|file_sep|>"
REGION_START = "<|region_start|>"
CURSOR = "<|cursor|>"
REGION_END = "<|region_end|>"
REWRITE = "<|rewrite|>"
END_OF_TEXT = "<|endoftext|>"
EDIT_TOKENS = (EDIT_HISTORY, FILE_SEP, REGION_START, CURSOR, REGION_END, REWRITE)

# Markers that end a rewrite when a target returns them as text (the local engine stops at
# any control token id and never returns them).
REWRITE_ENDS = (END_OF_TEXT, REGION_END, FILE_SEP, EDIT_HISTORY, REWRITE, REGION_START)

HISTORY_SHARE = 0.5  # of the room left after the region: at most this much for history
BEFORE_SHARE = 2 / 3  # of the room left after history
# `before` keeps a multiple of this many lines when trimmed, so that a keystroke which
# changes the region's token count by one rarely moves the top cut (and the engine keeps
# its cached prefix through `before`).
BEFORE_LINE_STEP = 8


@dataclass(frozen=True)
class EditRegion:
    """The lines a rewrite may replace: text[start:end] (whole lines), and the cursor."""

    start: int
    end: int
    cursor: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.cursor <= self.end:
            raise ValueError(f"region {self.start}..{self.end} does not hold the cursor "
                             f"at {self.cursor}")


@dataclass(frozen=True)
class EditPrompt:
    tokens: list[int]
    region_text: str
    region_tokens: int  # the region tokenized as one piece: what a copy of it costs
    history_used: int  # how many diffs made it in (the newest ones)
    before_chars_dropped: int  # of the text before the region (after redaction, if any)
    after_chars_dropped: int


@dataclass(frozen=True)
class TextEdit:
    """Replace text[start:end] (document offsets) with `new_text`."""

    start: int
    end: int
    new_text: str


# -- regions ---------------------------------------------------------------------------------

def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _line_end(text: str, offset: int) -> int:
    """Offset after the "\\n" that ends the line holding `offset` (or the text's end)."""
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1


def _line_offsets(text: str, first: int, last: int) -> tuple[int, int]:
    """[start, end) of lines first..last (inclusive, 0-based, "\\n"-separated)."""
    start = 0
    for _ in range(first):
        newline = text.find("\n", start)
        if newline < 0:
            return len(text), len(text)
        start = newline + 1
    end = start
    for _ in range(last - first + 1):
        if end >= len(text):
            break
        end = _line_end(text, end)
    return start, end


def choose_region(text: str, offset: int, tree: DocumentTree | None,
                  spec: LanguageSpec | None, *, min_lines: int = 3,
                  max_lines: int = 40) -> EditRegion:
    """The region an edit at `offset` may rewrite: the syntax's editable region (statements
    around the cursor) when a tree of this text exists, else `min_lines` lines either side."""
    offset = min(max(offset, 0), len(text))
    row = text.count("\n", 0, offset)
    spec = spec if spec is not None else (tree.spec if tree is not None else None)
    # The tree may lag behind `text` (another version of the document): then it is unusable.
    if tree is not None and spec is not None and tree.char_count == len(text):
        first, last = editable_region(spec, tree.tree, tree.source, tree.byte_offset(offset),
                                      min_lines=min_lines, max_lines=max_lines)
        first, last = min(first, row), max(last, row)
    else:
        radius = max(0, min(min_lines, (max_lines - 1) // 2))
        first, last = max(0, row - radius), row + radius
    start, end = _line_offsets(text, first, last)
    return EditRegion(start=start, end=end, cursor=offset)


def selection_region(text: str, start: int, end: int) -> EditRegion:
    """The selection extended to whole lines, the cursor at its start. A selection that ends
    at the start of a line does not take that line in."""
    start, end = sorted((min(max(start, 0), len(text)), min(max(end, 0), len(text))))
    line_end = end if end > start and text[end - 1] == "\n" else _line_end(text, end)
    return EditRegion(start=_line_start(text, start), end=line_end, cursor=start)


# -- the prompt ------------------------------------------------------------------------------

def missing_edit_tokens(special_ids: Mapping[str, int], instruction: bool = False) -> list[str]:
    """The edit layout's special tokens that `special_ids` lacks (a Qwen checkpoint: all)."""
    needed = (*EDIT_TOKENS, INSTRUCTION) if instruction else EDIT_TOKENS
    return [name for name in needed if name not in special_ids]


def _split_lines(text: str) -> list[str]:
    """Lines with their "\\n" kept; only "\\n" ends a line, as tree-sitter counts rows."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _fit_lines(counter: TokenCounter, text: str, allot: int, *, keep_end: bool,
               step: int = 1) -> tuple[str, Ids]:
    """The longest run of whole lines of `text` whose ids fit in `allot`: its last lines
    (`keep_end`, for the text before the region) or its first ones. The count of lines kept
    is a multiple of `step` unless the whole text fits."""
    if allot <= 0 or not text:
        return "", ()
    window = allot * CHARS_PER_TOKEN_BOUND
    if len(text) <= window:
        ids = counter.ids(text)
        if len(ids) <= allot:
            return text, ids
    lines = _split_lines(text)
    if keep_end:
        lines.reverse()  # nearest the region first
    chars, n_window = 0, 0
    for line in lines:
        chars += len(line)
        if chars > window:
            break
        n_window += 1
    # Estimate from per-line counts (cached: lines outside the region rarely change), then
    # check the exact count of the joined text and drop lines until it fits.
    counts = [len(ids) for ids in counter.ids_many(lines[:n_window])]
    n, total = 0, 0
    for count in counts:
        if total + count > allot:
            break
        total += count
        n += 1

    def joined(k: int) -> str:
        return "".join(reversed(lines[:k])) if keep_end else "".join(lines[:k])

    while n > 0:
        if n >= step:
            n -= n % step
        candidate = joined(n)
        ids = counter.ids(candidate)
        if len(ids) <= allot:
            return candidate, ids
        per_line = max(1.0, len(ids) / n)
        n -= max(1, int((len(ids) - allot) / per_line + 0.999))
    return "", ()


def cleaner(redact: bool) -> Callable[[str], str]:
    return (lambda s: redact_secrets(s)[0]) if redact else (lambda s: s)


def check_fixed(fixed: int, budget: int) -> None:
    if fixed > budget:
        raise ValueError(f"the edit region needs {fixed} prompt tokens, more than the budget "
                         f"of {budget}")


def build_edit_prompt(*, counter: TokenCounter, special_ids: Mapping[str, int], path: str,
                      text: str, region: EditRegion, history: Sequence[str],
                      instruction: str | None, budget: int,
                      redact: bool = False) -> EditPrompt:
    """The edit prompt, exactly as the embedded model was trained on it:

    `<|edit_history|>` diffs `<|file_sep|>` path "\\n" before `<|region_start|>` region with
    `<|cursor|>` `<|region_end|>` after `<|rewrite|>`.

    With an instruction, `<|instruction|>` instruction "\\n" comes first. The embedded model
    was NOT trained on instructions: it will mostly ignore them. The layout is what a model
    fine-tuned for instruction edits would get.

    `history`: unified diffs, oldest first. Never more than `budget` tokens: when the parts
    do not all fit, they are trimmed by `fit_context`'s rules. ValueError when the region
    and markers alone exceed `budget`.

    `redact`: secrets in history, before and after are redacted (for a remote target). The
    region never is: the rewrite replaces it, and would write the redaction into the file.
    """
    missing = missing_edit_tokens(special_ids, instruction is not None)
    if missing:
        raise ValueError(f"the model has no edit tokens ({', '.join(missing)})")
    sp = special_ids
    clean = cleaner(redact)
    region_text = text[region.start:region.end]
    cursor = region.cursor - region.start
    head: list[int] = []
    if instruction is not None:
        head += [sp[INSTRUCTION], *counter.ids(instruction + "\n")]
    file_head = [sp[FILE_SEP], *counter.ids(f"{path}\n")]
    middle = [sp[REGION_START], *counter.ids(region_text[:cursor]), sp[CURSOR],
              *counter.ids(region_text[cursor:]), sp[REGION_END]]
    fixed = len(head) + 1 + len(file_head) + len(middle) + 1  # +1: <|edit_history|>, <|rewrite|>
    check_fixed(fixed, budget)
    fitted = fit_context(counter, budget - fixed, history, clean(text[:region.start]),
                         clean(text[region.end:]), clean=clean)
    tokens = [*head, sp[EDIT_HISTORY]]
    for ids in fitted.history:
        tokens += ids
    tokens += [*file_head, *fitted.before_ids, *middle, *fitted.after_ids, sp[REWRITE]]
    assert len(tokens) <= budget, "every part was fitted to the budget"
    return fitted.prompt(tokens, counter, region_text)


@dataclass(frozen=True)
class FittedContext:
    """What of the history and the file around the region fits the room left."""

    history: list[Ids]  # the newest diffs that fit, oldest first
    before: str
    before_ids: Ids
    after: str
    after_ids: Ids
    before_full: str
    after_full: str

    def prompt(self, tokens: list[int], counter: TokenCounter, region: str) -> EditPrompt:
        return EditPrompt(tokens=tokens, region_text=region, region_tokens=counter.count(region),
                          history_used=len(self.history),
                          before_chars_dropped=len(self.before_full) - len(self.before),
                          after_chars_dropped=len(self.after_full) - len(self.after))


def fit_context(counter: TokenCounter, room: int, history: Sequence[str], before_full: str,
                after_full: str, *, clean: Callable[[str], str]) -> FittedContext:
    """The budget rules of every edit layout: history goes first (oldest diffs first; it
    may take at most `HISTORY_SHARE` of `room` unless the file context needs less), then
    `before` is cut from its top (in steps of `BEFORE_LINE_STEP` lines) and `after` from
    its bottom, `before` getting about `BEFORE_SHARE` of what is left. `clean` is applied
    to each diff; `before_full` and `after_full` come cleaned."""
    context_need = _rough_count(counter, before_full, room) + _rough_count(counter, after_full,
                                                                           room)
    history_room = max(int(room * HISTORY_SHARE), room - context_need)
    kept: list[Ids] = []
    for diff in reversed(history):
        ids = counter.ids(clean(diff))
        if len(ids) > history_room:
            break
        history_room -= len(ids)
        kept.append(ids)
    kept.reverse()
    left = room - sum(len(ids) for ids in kept)

    before, before_ids = _fit_lines(counter, before_full, int(left * BEFORE_SHARE),
                                    keep_end=True, step=BEFORE_LINE_STEP)
    after, after_ids = _fit_lines(counter, after_full, left - len(before_ids), keep_end=False)
    if before != before_full and left - len(before_ids) - len(after_ids) > 0:
        before, before_ids = _fit_lines(counter, before_full, left - len(after_ids),
                                        keep_end=True, step=BEFORE_LINE_STEP)
    return FittedContext(history=kept, before=before, before_ids=before_ids, after=after,
                         after_ids=after_ids, before_full=before_full, after_full=after_full)


def _rough_count(counter: TokenCounter, text: str, cap: int) -> int:
    """Tokens of `text`, exact when it is short; `cap` + 1 when it is plainly longer."""
    if len(text) > cap * CHARS_PER_TOKEN_BOUND:
        return cap + 1
    return counter.count(text)


# -- the answer ------------------------------------------------------------------------------

def parse_rewrite(output: str, finish_reason: str | None, *, region: str | None = None,
                  ends: Sequence[str] = REWRITE_ENDS, drop: Sequence[str] = ()) -> str | None:
    """The rewritten region from the model's output, or None when the output was cut short
    (`finish_reason` "length" or "cancelled"): half a region would delete the rest.

    A marker string in `ends` that leaked into the text (a target that returns markers as
    text, or a layout whose markers are text) ends the rewrite, and the strings in `drop`
    are removed, unless the original `region` holds that string itself: then it is code.
    A marker begun at the very end (the model stopped inside it) is cut off too.
    """
    if finish_reason in ("length", "cancelled"):
        return None
    live = [s for s in ends if region is None or s not in region]
    cut = min((i for s in live if (i := output.find(s)) >= 0), default=len(output))
    text = output[:cut]
    for marker in drop:
        if region is None or marker not in region:
            text = text.replace(marker, "")
    return text[:len(text) - _partial_marker(text, [*live, *drop], region or "")]


def _partial_marker(text: str, markers: Sequence[str], region: str) -> int:
    """Length of the longest start of a marker (two characters at least: "<|") that `text`
    ends with, when the region does not end the same way."""
    for n in range(max((len(m) for m in markers), default=1) - 1, 1, -1):
        tail = text[-n:]
        if len(tail) == n and any(m.startswith(tail) for m in markers) \
                and not region.endswith(tail):
            return n
    return 0


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _trimmed(old: str, new: str, at: int) -> TextEdit | None:
    """One replacement of `old` (at document offset `at`) by `new`, less their common ends."""
    head = _common_prefix(old, new)
    tail = _common_prefix(old[head:][::-1], new[head:][::-1])
    if head == len(old) == len(new):
        return None
    return TextEdit(start=at + head, end=at + len(old) - tail,
                    new_text=new[head:len(new) - tail])


def minimal_edits(old: str, new: str, base: int) -> list[TextEdit]:
    """Non-overlapping replacements, sorted by start, that turn `old` into `new`; offsets are
    `base` + offsets in `old`. Lines are matched first; a changed line replaced by one line
    becomes an edit of just the characters that differ, so a renamed word is a small edit."""
    if old == new:
        return []
    a, b = _split_lines(old), _split_lines(new)
    starts = [0]
    for line in a:
        starts.append(starts[-1] + len(line))
    edits: list[TextEdit] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            pairs = [(a[i], b[j1 + i - i1], starts[i]) for i in range(i1, i2)]
        else:
            pairs = [("".join(a[i1:i2]), "".join(b[j1:j2]), starts[i1])]
        for old_part, new_part, at in pairs:
            edit = _trimmed(old_part, new_part, base + at)
            if edit is None:
                continue
            if edits and edits[-1].end >= edit.start:  # touching: one edit
                last = edits[-1]
                gap = old[last.end - base:edit.start - base]
                edit = TextEdit(last.start, edit.end, last.new_text + gap + edit.new_text)
                edits[-1] = edit
            else:
                edits.append(edit)
    return edits
