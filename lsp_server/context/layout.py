"""The prompt's token layout: segment types, the split of the budget, and the markers.

The layout is the one the embedded model was trained on (docs/prompt_formats.md): file
pieces `<|file_sep|>` path "\\n" text, then `<|edit_history|>` diffs, then the current file
as fill-in-the-middle, suffix first (SPM) for the embedded model or prefix first (PSM) for
real Qwen2.5-Coder checkpoints, ending with `<|fim_middle|>`. A model without
`<|edit_history|>` gets the diffs as one more file piece, `HISTORY_FILE`. Every text is
tokenized on its own with the literal encoder, so a special-token string inside code stays
text and the number of ids laid out is exactly the number counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from lsp_server.context.tokens import TokenCounter

if TYPE_CHECKING:
    from lsp_server.context.languages import LanguageSpec
    from lsp_server.context.trees import DocumentTree

FILE_SEP = "<|file_sep|>"
EDIT_HISTORY = "<|edit_history|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_MARKERS = 3  # suffix, prefix and middle
# The history's path for a model without <|edit_history|> (a Qwen2.5-Coder checkpoint).
# Such a model was pre-trained on whole repositories laid out as `<|file_sep|>path\n`
# content, where patch files are ordinary files: a `.diff` piece is in its own format and
# tells it unified diffs follow, while a bare text header would read as the end of the
# file before it. Leaving the history out would drop the best hint of what comes next (the
# rest of a rename, an argument just added).
HISTORY_FILE = ".sparkedit/recent_edits.diff"

SEGMENT_KINDS = ("repository", "recent_file", "scopes", "definitions", "repository_fill",
                 "history",
                 "current_suffix", "current_prefix")
# Sizes of the current file are rounded up to this many tokens before they affect the
# other segments, so that typing does not change what the repository segment holds.
RESERVE_QUANTUM = 1024
# The room the other segments leave is handed on in steps of the budget over this, so that
# typing moves it (and the front of the prompt with it) only when it crosses a step.
FILL_STEPS = 128
MIN_FILL_QUANTUM = 16


class ContextRefused(Exception):
    """The context may not be built as asked (an excluded file sent to a remote target)."""


@dataclass(frozen=True)
class Segment:
    """One piece of the prompt. `text` is what `tokens` say without their markers: for a
    file piece `path + "\\n" + content`, for the history the diffs joined, for the current
    file the suffix or the prefix (less the healed token)."""

    kind: str  # one of SEGMENT_KINDS
    path: str | None
    text: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Context:
    segments: tuple[Segment, ...]
    tokens: tuple[int, ...]  # the whole prompt, ending with <|fim_middle|>
    total_tokens: int
    budget: int
    build_ms: float
    heal: str  # text of the prefix's last token, left out for the engine to re-choose
    redactions: int


@dataclass(frozen=True)
class CursorFile:
    path: str  # workspace-relative display path
    text: str
    offset: int  # string offset of the cursor
    tree: DocumentTree | None = None
    spec: LanguageSpec | None = None


@dataclass(frozen=True, kw_only=True)
class ContextOptions:
    budget: int
    fim_order: str = "spm"  # "spm" for the embedded model, "psm" for Qwen2.5-Coder
    heal: bool = True
    remote: bool = False  # redact secrets; refuse an excluded current file
    current_file_share: float = 0.5
    definitions_share: float = 0.1
    history_share: float = 0.1
    recent_share: float = 0.1
    prefix_share: float = 0.75  # of the current file's tokens
    max_definition_lines: int = 40
    nearby_lines: int = 30
    fill: bool = True  # hand the room the other segments leave to more repository files

    def __post_init__(self) -> None:
        if self.fim_order not in ("spm", "psm"):
            raise ValueError(f"fim_order must be 'spm' or 'psm', not {self.fim_order!r}")
        shares = (self.current_file_share, self.definitions_share, self.history_share,
                  self.recent_share)
        if any(not 0.0 <= s <= 1.0 for s in (*shares, self.prefix_share)) or sum(shares) > 1:
            raise ValueError("shares must lie in [0, 1] and add up to at most 1")


@dataclass(frozen=True)
class Markers:
    file_sep: int
    edit_history: int | None  # None: the history is the file piece HISTORY_FILE
    fim_prefix: int
    fim_suffix: int
    fim_middle: int

    @classmethod
    def from_special_ids(cls, special_ids: Mapping[str, int]) -> Markers:
        """Raises KeyError naming a marker the model does not have (all but
        `<|edit_history|>` are needed)."""
        def find(name: str) -> int:
            if name not in special_ids:
                raise KeyError(f"the model has no {name} token")
            return int(special_ids[name])

        edit_history = special_ids.get(EDIT_HISTORY)
        return cls(file_sep=find(FILE_SEP),
                   edit_history=int(edit_history) if edit_history is not None else None,
                   fim_prefix=find(FIM_PREFIX), fim_suffix=find(FIM_SUFFIX),
                   fim_middle=find(FIM_MIDDLE))


@dataclass(frozen=True)
class Allotments:
    """Token limits per segment. They depend on the budget and on the current file's
    quantised size only, never on the exact size of anything that changes per keystroke."""

    repository: int
    recent: int
    definitions: int
    history: int
    current_reserve: int

    @classmethod
    def split(cls, available: int, options: ContextOptions, current_reserve: int
              ) -> Allotments:
        recent = int(available * options.recent_share)
        definitions = int(available * options.definitions_share)
        history = int(available * options.history_share)
        repository = max(0, available - current_reserve - recent - definitions - history)
        return cls(repository=repository, recent=recent, definitions=definitions,
                   history=history, current_reserve=current_reserve)


def current_reserve(available: int, options: ContextOptions, need: int, previous: int | None
                    ) -> int:
    """Tokens reserved for the current file: its share of the budget, or its size rounded
    up to a multiple of RESERVE_QUANTUM when smaller. A previous reserve is kept while the
    file fits it and has not shrunk by two quanta (no flapping at a boundary)."""
    share = int(available * options.current_file_share)
    if previous is not None and need <= previous <= share and previous - need < 2 * RESERVE_QUANTUM:
        return previous
    quantised = -(-need // RESERVE_QUANTUM) * RESERVE_QUANTUM
    return min(share, quantised)


def fill_allotment(room: int, available: int, previous: int | None, previous_used: int = 0
                   ) -> int:
    """Tokens for the trailing repository segment out of `room`, the budget the others
    leave: `room` rounded down to a step of `available` / FILL_STEPS, less a step for the
    current file to grow into. A previous allotment is kept while what it holds
    (`previous_used`) still fits and the room has not grown past it by two steps."""
    quantum = max(MIN_FILL_QUANTUM, available // FILL_STEPS)
    if previous is not None and previous_used <= room < previous + 2 * quantum:
        return previous
    return max(0, (room // quantum - 1) * quantum)


def file_piece(counter: TokenCounter, markers: Markers, kind: str, path: str, text: str
               ) -> Segment:
    """`<|file_sep|>path\\n` + text. The path line and the text are tokenized apart, as in
    the training data (scripts/training_data.py), and so the text's ids are cached alone."""
    head, body = counter.ids_many([f"{path}\n", text])
    return Segment(kind=kind, path=path, text=f"{path}\n{text}",
                   tokens=(markers.file_sep, *head, *body))


def piece_cost(counter: TokenCounter, path: str, text: str) -> int:
    head, body = counter.ids_many([f"{path}\n", text])
    return 1 + len(head) + len(body)


@dataclass(frozen=True)
class HistoryHead:
    """What opens the history segment: `<|edit_history|>`, or `<|file_sep|>` and the path
    line of HISTORY_FILE (tokenized apart, as a file piece's)."""

    text: str  # "" or HISTORY_FILE + "\n"
    tokens: tuple[int, ...]

    @classmethod
    def create(cls, counter: TokenCounter, markers: Markers) -> HistoryHead:
        if markers.edit_history is not None:
            return cls(text="", tokens=(markers.edit_history,))
        line = f"{HISTORY_FILE}\n"
        return cls(text=line, tokens=(markers.file_sep, *counter.ids(line)))


def history_segment(head: HistoryHead, diffs: Sequence[str], ids: Sequence[Sequence[int]]
                    ) -> Segment:
    return Segment(kind="history", path=None, text=head.text + "".join(diffs),
                   tokens=(*head.tokens, *chain.from_iterable(ids)))


def fim_segments(markers: Markers, order: str, path: str, prefix_text: str,
                 prefix_ids: Sequence[int], suffix_text: str, suffix_ids: Sequence[int]
                 ) -> tuple[Segment, Segment]:
    """The current file's two segments in prompt order; the last carries <|fim_middle|>."""
    if order == "spm":
        suffix = (markers.fim_suffix, *suffix_ids)
        prefix = (markers.fim_prefix, *prefix_ids, markers.fim_middle)
        return (Segment("current_suffix", path, suffix_text, suffix),
                Segment("current_prefix", path, prefix_text, prefix))
    prefix = (markers.fim_prefix, *prefix_ids)
    suffix = (markers.fim_suffix, *suffix_ids, markers.fim_middle)
    return (Segment("current_prefix", path, prefix_text, prefix),
            Segment("current_suffix", path, suffix_text, suffix))


def join(segments: Iterable[Segment], *, budget: int, build_ms: float, heal: str,
         redactions: int) -> Context:
    segments = tuple(segments)
    tokens = tuple(chain.from_iterable(s.tokens for s in segments))
    assert len(tokens) <= budget, f"{len(tokens)} tokens exceed the budget of {budget}"
    return Context(segments=segments, tokens=tokens, total_tokens=len(tokens), budget=budget,
                   build_ms=build_ms, heal=heal, redactions=redactions)


def context_json(context: Context) -> dict[str, Any]:
    """The context as JSON: each segment's kind, path, text and token count (the ids stay
    out: they are the engine's business), plus the totals."""
    return {
        "segments": [{"kind": s.kind, "path": s.path, "tokens": len(s.tokens), "text": s.text}
                     for s in context.segments],
        "total_tokens": context.total_tokens,
        "budget": context.budget,
        "build_ms": round(context.build_ms, 3),
        "heal": context.heal,
        "redactions": context.redactions,
    }


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences.

    Compares blocks with C-level slice equality and looks inside the first block that
    differs with numpy, so 128k-token prompts compare in well under a millisecond."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        n = min(len(a), len(b))
        diff = np.flatnonzero(a[:n] != b[:n])
        return int(diff[0]) if len(diff) else n
    n = min(len(a), len(b))
    block = 4096
    for i in range(0, n, block):
        j = min(n, i + block)
        x, y = list(a[i:j]), list(b[i:j])
        if x != y:
            diff = np.flatnonzero(np.asarray(x) != np.asarray(y))
            return i + int(diff[0])
    return n
