"""A file split into chunks for tokenizing, and the lines where a prompt may cut it.

The current file is split into chunks of a few dozen lines. Each chunk is tokenized on its own
through the `TokenCounter` cache, so a keystroke tokenizes only the chunk around the cursor,
and the prefix and suffix are concatenations of cached chunk ids.

Two choices make that exact and cheap:
- Chunks meet at *clean split points*, where tokenizing the two sides apart gives the ids
  of tokenizing them together (`SplitRule`). So the ids of a prefix or suffix are those of
  its whole text, whatever the chunking, and moving a chunk boundary never changes a prompt.
- A chunk boundary is chosen from the text of its line alone (a hash, with a minimum and a
  maximum chunk length), not from the syntax tree, so a keystroke that breaks the parse
  (an unclosed bracket) moves no boundary and the other chunks stay cache hits.
Only the ends of the prompt's prefix and suffix are cut at syntax boundaries (`cuts`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

import numpy as np

from lsp_server.context.tokens import TokenCounter

CHUNK_MIN_LINES = 12
CHUNK_MAX_LINES = 64
CHUNK_HASH_MOD = 16  # past the minimum, about one line in 16 starts a chunk
_PROBE_BYTES = 8  # leading bytes of a line read for its hash and indentation
_WS = (9, 11, 12, 13, 32)  # whitespace inside a line (not "\n")

class SplitRule(StrEnum):
    """Where a text may be split before a non-blank line without changing its ids.
    LINE: at the line start (Qwen2-style pre-tokenizers, which keep newlines together).
    SPACE: before the last whitespace character ahead of the line's first non-blank
    character (GPT-2-style pre-tokenizers, which attach one space to the next word)."""

    LINE = "line"
    SPACE = "space"


_PROBES = ("import os\n\nclass A:\n    x = 1\n\n    def f(self):\n        return 2\n",
           "a = (1,\n     2)\nif a:\n\tb()\n\n\n# c\n@d\ndef e(): pass\n",
           "fn main() {\n    let x = 1;  \n    }\n}\n\n\nstruct S;\n")


def probe_split_rule(counter: TokenCounter) -> SplitRule:
    """The rule under which this tokenizer gives the same ids split and whole."""
    for rule in (SplitRule.SPACE, SplitRule.LINE):
        ok = True
        for text in _PROBES:
            lines = FileLines.build(text.encode(), None, rule, min_lines=1, hash_mod=1)
            for split in lines.bounds[1:-1].tolist():
                a, b = text[:split], text[split:]
                ok = ok and list(counter.ids(a)) + list(counter.ids(b)) == list(counter.ids(text))
        if ok:
            return rule
    return SplitRule.LINE


@dataclass(frozen=True)
class FileLines:
    """A file's bytes, its line starts, its chunks and the lines where the prompt may be
    cut. The cut lines come from a syntax walk that most keystrokes do not need (the cuts
    of the previous build still fit), so they are computed on first use."""

    source: bytes
    starts: np.ndarray  # [n_lines + 1] byte offset of each line start, then len(source)
    bounds: np.ndarray  # [n_chunks + 1] byte offset where each chunk starts, then the end
    nonblank: np.ndarray  # [n_lines] bool
    cut_lines: Callable[[], Sequence[int]] | None  # None: every non-blank line

    @cached_property
    def cuts(self) -> np.ndarray:
        """Sorted non-blank lines where the prompt may begin or end (syntax boundaries)."""
        if self.cut_lines is None:
            return np.flatnonzero(self.nonblank)
        cuts = np.unique(np.asarray(self.cut_lines(), dtype=np.int64))
        cuts = cuts[(cuts >= 0) & (cuts < self.n_lines)]
        return cuts[self.nonblank[cuts]]

    @property
    def n_lines(self) -> int:
        return len(self.starts) - 1

    @property
    def n_chunks(self) -> int:
        return len(self.bounds) - 1

    @classmethod
    def build(cls, source: bytes, cut_lines: Callable[[], Sequence[int]] | None,
              rule: SplitRule, *,
              min_lines: int = CHUNK_MIN_LINES, hash_mod: int = CHUNK_HASH_MOD) -> FileLines:
        data = np.frombuffer(source, dtype=np.uint8)
        starts = np.concatenate(([0], np.flatnonzero(data == 10) + 1, [len(source)]))
        starts = starts.astype(np.int64)
        n_lines = len(starts) - 1
        head = _line_heads(data, starts[:-1])  # [n_lines, _PROBE_BYTES]
        is_ws = np.isin(head, _WS)
        indent = np.where(is_ws.all(axis=1), _PROBE_BYTES, np.argmin(is_ws, axis=1))
        first = head[np.arange(n_lines), np.minimum(indent, _PROBE_BYTES - 1)]
        line_len = starts[1:] - starts[:-1]
        nonblank = (indent < _PROBE_BYTES) & (indent < line_len) & (first != 10) & (first != 13)
        packed = head.astype(np.uint64) << (np.arange(_PROBE_BYTES, dtype=np.uint64) * 8)
        h = np.bitwise_or.reduce(packed, axis=1) * np.uint64(0x9E3779B97F4A7C15) \
            + line_len.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        eligible = nonblank & ((h >> np.uint64(40)) % np.uint64(hash_mod) == 0)
        lines = _chunk_lines(np.flatnonzero(eligible), np.flatnonzero(nonblank), n_lines,
                             min_lines)
        # SPACE: before the indentation's last byte, or before the previous line's "\n".
        shift = indent[lines] - 1 if rule is SplitRule.SPACE else 0
        splits = starts[lines] + shift
        bounds = np.concatenate(([0], splits, [len(source)])).astype(np.int64)
        return cls(source=source, starts=starts, bounds=bounds, nonblank=nonblank,
                   cut_lines=cut_lines)

    def line_of(self, byte: int) -> int:
        # The sentinel and an empty last line share the value len(source): clamp.
        return min(int(np.searchsorted(self.starts, byte, side="right")) - 1, self.n_lines - 1)

    def chunk_of(self, byte: int) -> int:
        return min(int(np.searchsorted(self.bounds, byte, side="right")) - 1, self.n_chunks - 1)

    def cut_range(self, lo: int, hi: int) -> list[int]:
        """Cut lines in [lo, hi], ascending."""
        a = int(np.searchsorted(self.cuts, lo, side="left"))
        b = int(np.searchsorted(self.cuts, hi, side="right"))
        return self.cuts[a:b].tolist()


def _line_heads(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    if not len(data):
        return np.full((len(starts), _PROBE_BYTES), 10, dtype=np.uint8)
    index = starts[:, None] + np.arange(_PROBE_BYTES)
    head = data[np.minimum(index, len(data) - 1)]
    head[index >= len(data)] = 10
    return head


def _chunk_lines(eligible: np.ndarray, nonblank: np.ndarray, n_lines: int,
                 min_lines: int) -> np.ndarray:
    """Chunk start lines (after line 0): an eligible line at least `min_lines` after the
    previous start, or a non-blank line CHUNK_MAX_LINES after it when none came."""
    out: list[int] = []
    last = 0
    nb = nonblank.tolist()

    def force(until: int) -> None:
        nonlocal last
        while until - last > CHUNK_MAX_LINES:
            k = int(np.searchsorted(nonblank, last + CHUNK_MAX_LINES))
            if k >= len(nb) or nb[k] >= until:
                return
            last = nb[k]
            out.append(last)

    for line in eligible.tolist():
        force(line)
        if line - last >= min_lines:
            out.append(line)
            last = line
    force(n_lines)
    return np.asarray(out, dtype=np.int64)
