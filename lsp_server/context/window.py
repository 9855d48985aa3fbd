"""The current file around the cursor: a prefix and a suffix within a token limit, cut at
syntax boundaries, with cuts that stay put from one keystroke to the next.

Pieces are byte ranges of the file tokenized through the `TokenCounter` cache: whole chunks
(`chunks.py`), the part of the cursor's chunk before and after the cursor, and the partial
chunks at the two ends. Because chunks meet at clean split points, the ids of the prefix
are the ids of its whole text, and likewise for the suffix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

from lsp_server.context.chunks import FileLines
from lsp_server.context.tokens import Ids, TokenCounter

Redact = Callable[[str], tuple[str, int]]  # text -> (redacted text, redactions)
_PREFETCH = 16  # chunks tokenized per batch on a cold walk (doubling up to 256)

@dataclass(frozen=True)
class Cut:
    """Where one end of the current file was cut: `line` is the prefix's first line or the
    number of lines after the suffix (counted from the end, so that typing a newline above
    it does not move it); None for a cut inside the cursor's line. `tokens` and `limit`
    are the prefix's (or suffix's) size and limit when the cut was chosen."""

    line: int | None
    tokens: int
    limit: int


@dataclass(frozen=True)
class CutState:
    """The cuts of the previous build of a document."""

    prefix: Cut
    suffix: Cut


@dataclass(frozen=True)
class Piece:
    text: str
    ids: Ids
    redactions: int = 0


_EMPTY = Piece("", ())


@dataclass(frozen=True)
class WindowFit:
    prefix: tuple[Piece, ...]
    suffix: tuple[Piece, ...]
    state: CutState
    first_line: int  # lines [first_line, end_line) are shown, whole or in part
    end_line: int

    def prefix_ids(self) -> list[int]:
        return list(chain.from_iterable(p.ids for p in self.prefix))

    def suffix_ids(self) -> list[int]:
        return list(chain.from_iterable(p.ids for p in self.suffix))


def _size(pieces: Sequence[Piece]) -> int:
    return sum(len(p.ids) for p in pieces)


class CurrentWindow:
    """The current file at one cursor position, tokenized piece by piece."""

    def __init__(self, lines: FileLines, cursor_byte: int, counter: TokenCounter,
                 redact: Redact | None = None) -> None:
        self.lines = lines
        self.cb = cursor_byte
        self.counter = counter
        self.redact = redact
        self.line = lines.line_of(cursor_byte)  # the cursor's line, L
        self.chunk = lines.chunk_of(cursor_byte)  # the cursor's chunk, K
        self._chunks: dict[int, Piece] = {}

    # -- pieces ------------------------------------------------------------------------

    def _decode(self, b0: int, b1: int) -> tuple[str, int]:
        text = self.lines.source[b0:b1].decode("utf-8", "surrogatepass")
        return self.redact(text) if self.redact is not None else (text, 0)

    def _piece(self, b0: int, b1: int) -> Piece:
        if b1 <= b0:
            return _EMPTY
        text, n = self._decode(b0, b1)
        return Piece(text, self.counter.ids(text), n)

    def _start(self, line: int) -> int:
        return int(self.lines.starts[line])

    def _bound(self, j: int) -> int:
        return int(self.lines.bounds[j])

    def _chunk(self, j: int) -> Piece:
        found = self._chunks.get(j)
        if found is None:
            found = self._chunks[j] = self._piece(self._bound(j), self._bound(j + 1))
        return found

    def _prefetch(self, js: Sequence[int]) -> None:
        """Tokenize these chunks in one batch (the cold path of a large window)."""
        todo = [j for j in js if j not in self._chunks]
        if not todo:
            return
        decoded = [self._decode(self._bound(j), self._bound(j + 1)) for j in todo]
        ids = self.counter.ids_many([text for text, _ in decoded])
        for j, (text, n), piece_ids in zip(todo, decoded, ids, strict=True):
            self._chunks[j] = Piece(text, piece_ids, n)

    def _head(self) -> Piece:
        """The cursor's chunk up to the cursor."""
        return self._piece(self._bound(self.chunk), self.cb)

    def _tail(self) -> Piece:
        """The cursor's chunk from the cursor on."""
        return self._piece(self.cb, self._bound(self.chunk + 1))

    def _walk(self, step: int, cap: int, used: int) -> tuple[int, int]:
        """Add whole chunks outward from the cursor's while the total stays <= cap:
        (tokens used, the first chunk that did not fit: -1 or n_chunks when all did)."""
        n_chunks = self.lines.n_chunks
        j, batch = self.chunk + step, _PREFETCH
        if used > cap:
            return used, j
        while 0 <= j < n_chunks:
            if j not in self._chunks:
                end = max(j - batch, -1) if step < 0 else min(j + batch, n_chunks)
                self._prefetch(range(j, end, step))
                batch = min(batch * 2, 256)
            n = len(self._chunk(j).ids)
            if used + n > cap:
                break
            used += n
            j += step
        return used, j

    # -- sizes -------------------------------------------------------------------------

    def prefix_total(self, cap: int) -> int:
        """Tokens from the file's start to the cursor, or cap + 1 when more."""
        used, j = self._walk(-1, cap, len(self._head().ids))
        return used if j < 0 and used <= cap else cap + 1

    def suffix_total(self, cap: int) -> int:
        """Tokens from the cursor to the file's end, or cap + 1 when more."""
        used, j = self._walk(+1, cap, len(self._tail().ids))
        return used if j >= self.lines.n_chunks and used <= cap else cap + 1

    # -- prefix ------------------------------------------------------------------------

    def prefix_from(self, line: int) -> tuple[Piece, ...]:
        """The prefix pieces when it begins at `line` (<= the cursor's line)."""
        ps = self._start(line)
        j = self.lines.chunk_of(ps)
        if j >= self.chunk:
            return (self._piece(ps, self.cb),)
        first = self._chunk(j) if ps == self._bound(j) else self._piece(ps, self._bound(j + 1))
        return (first, *(self._chunk(i) for i in range(j + 1, self.chunk)), self._head())

    def fit_prefix(self, limit: int) -> tuple[int | None, tuple[Piece, ...]]:
        """The earliest start within `limit` tokens: (its line, or None for a start inside
        the cursor's line; the pieces). Cut lines first, then any line, then characters."""
        used, j = self._walk(-1, limit, len(self._head().ids))
        if j < 0 and used <= limit:
            return 0, self.prefix_from(0)
        lo = self.lines.line_of(self._bound(max(j, 0)))
        cuts = self.lines.cut_range(lo, self.line)
        start = self._earliest(cuts, limit)
        if start is None:
            plain = list(range((cuts[-1] + 1) if cuts else lo, self.line + 1))
            start = self._earliest(plain, limit)
        if start is not None:
            return start, self.prefix_from(start)
        return None, (self._line_end(limit),)

    def _earliest(self, candidates: list[int], limit: int) -> int | None:
        def fits(i: int) -> bool:
            return _size(self.prefix_from(candidates[i])) <= limit

        lo, hi = 0, len(candidates)
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(mid):
                hi = mid
            else:
                lo = mid + 1
        while hi < len(candidates) and not fits(hi):  # ids are not strictly monotone
            hi += 1
        return candidates[hi] if hi < len(candidates) else None

    def _line_end(self, limit: int) -> Piece:
        """The longest end of the cursor's line, up to the cursor, within `limit`."""
        line = self._piece(self._start(self.line), self.cb)
        text = line.text
        lo, hi = 0, len(text)  # invariant: text[hi:] fits
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self.counter.ids(text[mid:])) <= limit:
                hi = mid
            else:
                lo = mid + 1
        return Piece(text[hi:], self.counter.ids(text[hi:]), line.redactions)

    # -- suffix ------------------------------------------------------------------------

    def suffix_to(self, line: int) -> tuple[Piece, ...]:
        """The suffix pieces when it ends before `line` (> the cursor's line)."""
        pe = self._start(line)
        if pe <= self.cb:
            return (_EMPTY,)
        j = self.lines.chunk_of(pe - 1)
        if j <= self.chunk:
            return (self._piece(self.cb, pe),)
        last = self._chunk(j) if pe == self._bound(j + 1) else self._piece(self._bound(j), pe)
        return (self._tail(), *(self._chunk(i) for i in range(self.chunk + 1, j)), last)

    def fit_suffix(self, limit: int) -> tuple[int | None, tuple[Piece, ...]]:
        """The latest end within `limit` tokens: (its line, or None for an end inside the
        cursor's line; the pieces)."""
        n_lines, n_chunks = self.lines.n_lines, self.lines.n_chunks
        used, j = self._walk(+1, limit, len(self._tail().ids))
        if j >= n_chunks and used <= limit:
            return n_lines, self.suffix_to(n_lines)
        hi = self.lines.line_of(self._bound(min(j, n_chunks - 1) + 1) - 1) + 1
        cuts = self.lines.cut_range(self.line + 1, min(hi, n_lines - 1))
        end = self._latest(cuts, limit)
        if end is None:
            plain = list(range(self.line + 1, cuts[0] if cuts else min(hi, n_lines - 1) + 1))
            end = self._latest(plain, limit)
        if end is not None:
            return end, self.suffix_to(end)
        return None, (self._line_start(limit),)

    def _latest(self, candidates: list[int], limit: int) -> int | None:
        def fits(i: int) -> bool:
            return _size(self.suffix_to(candidates[i])) <= limit

        lo, hi = -1, len(candidates) - 1  # invariant: lo fits (-1: none known)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        while lo >= 0 and not fits(lo):
            lo -= 1
        return candidates[lo] if lo >= 0 else None

    def _line_start(self, limit: int) -> Piece:
        """The longest start of the rest of the cursor's line within `limit`."""
        line = self._piece(self.cb, self._start(min(self.line + 1, self.lines.n_lines)))
        text = line.text
        lo, hi = 0, len(text)  # invariant: text[:lo] fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(self.counter.ids(text[:mid])) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return Piece(text[:lo], self.counter.ids(text[:lo]), line.redactions)

    # -- the stable fit ------------------------------------------------------------------

    def fit(self, limit: int, prefix_share: float, prev: CutState | None) -> WindowFit:
        """Prefix and suffix within `limit` tokens in all. A previous cut is kept while it
        fits, has not lost half its tokens (the cursor moved towards it) and its limit has
        not doubled; a cut that no longer fits moves by a quarter of its limit; a new cut
        leaves an eighth of its limit free, so typing does not move it at once."""
        n_lines = self.lines.n_lines
        p_total = self.prefix_total(limit)
        s_total = self.suffix_total(limit)
        if p_total + s_total <= limit:  # the whole file
            return WindowFit(prefix=self.prefix_from(0), suffix=self.suffix_to(n_lines),
                             state=CutState(Cut(0, p_total, limit), Cut(0, s_total, limit)),
                             first_line=0, end_line=n_lines)
        p_lim = int(limit * prefix_share)
        s_lim = limit - p_lim
        if s_total < s_lim:
            p_lim = limit - s_total
        elif p_total < p_lim:
            s_lim = limit - p_total
        p_cut, prefix = self._stable(p_lim, prev.prefix if prev else None, self._prefix_side)
        s_cut, suffix = self._stable(s_lim, prev.suffix if prev else None, self._suffix_side)
        return WindowFit(prefix=prefix, suffix=suffix, state=CutState(p_cut, s_cut),
                         first_line=self.line if p_cut.line is None else p_cut.line,
                         end_line=self.line + 1 if s_cut.line is None
                         else n_lines - s_cut.line)

    def _stable(self, limit: int, prev: Cut | None, side: _Side
                ) -> tuple[Cut, tuple[Piece, ...]]:
        edge, pieces_at, total, fit = side
        if prev is not None and prev.line is not None:
            pieces = pieces_at(prev.line)
            used = _size(pieces) if pieces is not None else limit + 1
            if pieces is not None and used <= limit and (
                    prev.line == edge or (used >= prev.tokens // 2 and limit < 2 * prev.limit)):
                return prev, pieces
            if pieces is not None and used > limit:
                line, pieces = fit(limit - limit // 4)
                return Cut(line, _size(pieces), limit), pieces
        if total(limit) <= limit:
            pieces = pieces_at(edge)
            assert pieces is not None
            return Cut(edge, _size(pieces), limit), pieces
        line, pieces = fit(limit - limit // 8)
        return Cut(line, _size(pieces), limit), pieces

    # Each side as (its edge, pieces for a cut or None when the cut no longer lies on
    # this side of the cursor, the side's total, the fresh fit), in the cut's own units.

    @property
    def _prefix_side(self) -> _Side:
        def at(line: int) -> tuple[Piece, ...] | None:
            return self.prefix_from(line) if 0 <= line <= self.line else None

        return 0, at, self.prefix_total, self.fit_prefix

    @property
    def _suffix_side(self) -> _Side:
        n_lines = self.lines.n_lines

        def at(after: int) -> tuple[Piece, ...] | None:
            end = n_lines - after
            return self.suffix_to(end) if self.line < end <= n_lines else None

        def fit(limit: int) -> tuple[int | None, tuple[Piece, ...]]:
            end, pieces = self.fit_suffix(limit)
            return (None if end is None else n_lines - end), pieces

        return 0, at, self.suffix_total, fit


_Side = tuple[int, Callable[[int], "tuple[Piece, ...] | None"], Callable[[int], int],
              Callable[[int], "tuple[int | None, tuple[Piece, ...]]"]]
