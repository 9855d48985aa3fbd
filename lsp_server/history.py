"""The exact edit history of the workspace as unified diffs, one entry per burst of typing.

Every change the editor applies is recorded with the text it applied to. Consecutive
changes to one file that touch the same region within `burst_gap_s` of each other form one
*burst* (typing a word is one entry, not one per letter). A burst closes when a change
lands elsewhere, in another file, or after the gap; its diff is computed then, once, from
the text at the start of the burst and the text after its last change, restricted to the
lines the burst changed (so a keystroke in a 10k-line file never diffs the whole file).

Closed entries are append-only: the prompt shows them oldest first, so while one types
the history part of the prompt does not change and the engine's KV cache stays valid. The
open burst is left out of the prompt by default for the same reason.

Pure: time is passed in; no threads, no I/O.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass

from lsp_server.context.history_entry import HistoryEntry

MAX_RECENT_PATHS = 64


@dataclass
class _Burst:
    """An open burst. [start, end) is the region of the *current* text that holds every
    change of the burst; outside it the current text equals `snapshot`, shifted by `delta`
    after the region."""

    path: str
    snapshot: str  # the text before the burst's first change
    start: int
    end: int
    delta: int  # len(current text) - len(snapshot)
    last_at: float
    # The last change, kept so the text after it is built only when the burst closes.
    last_before: str
    last_start: int
    last_removed: int
    last_inserted: str

    def after_text(self) -> str:
        b = self.last_before
        return b[: self.last_start] + self.last_inserted + b[self.last_start + self.last_removed:]


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _back_lines(text: str, start: int, n: int) -> int:
    """Offset of the start of the line n lines above the line that starts at `start`."""
    for _ in range(n):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    return start


def _forward_lines(text: str, end: int, n: int) -> int:
    """Offset after n more lines following offset `end` (which is a line start or len)."""
    for _ in range(n):
        if end >= len(text):
            return len(text)
        nl = text.find("\n", end)
        end = len(text) if nl < 0 else nl + 1
    return end


def split_lines(text: str) -> list[str]:
    """Lines with their "\\n" kept; only "\\n" ends a line (form feeds in code do not)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _format_range(start: int, stop: int) -> str:
    """A unified-diff range, as difflib writes it (0-based start in, 1-based out)."""
    beginning, length = start + 1, stop - start
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1
    return f"{beginning},{length}"


def _diff_line(tag: str, line: str) -> str:
    if line.endswith("\n"):
        return tag + line
    return f"{tag}{line}\n\\ No newline at end of file\n"


def unified_diff(path: str, before: str, after: str, *, first_line: int = 0,
                 context_lines: int = 2) -> str:
    """A unified diff of two excerpts that start at 0-based line `first_line` of their
    files (hunk headers count from the file's first line). "" when they are equal."""
    a, b = split_lines(before), split_lines(after)
    groups = list(difflib.SequenceMatcher(None, a, b, autojunk=False)
                  .get_grouped_opcodes(context_lines))
    if not groups or groups == [[("equal", 0, len(a), 0, len(b))]]:
        return ""
    out = [f"--- a/{path}\n", f"+++ b/{path}\n"]
    for group in groups:
        i1, i2 = group[0][1] + first_line, group[-1][2] + first_line
        j1, j2 = group[0][3] + first_line, group[-1][4] + first_line
        out.append(f"@@ -{_format_range(i1, i2)} +{_format_range(j1, j2)} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out.extend(_diff_line(" ", line) for line in a[a1:a2])
                continue
            if tag in ("replace", "delete"):
                out.extend(_diff_line("-", line) for line in a[a1:a2])
            if tag in ("replace", "insert"):
                out.extend(_diff_line("+", line) for line in b[b1:b2])
    return "".join(out)


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by binary search on slices (memcmp, not a char loop)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, min(len(a), len(b), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:len(a) - lo] == b[len(b) - mid:len(b) - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _burst_diff(burst: _Burst, after: str, context_lines: int) -> str:
    """The diff of a burst, computed on the lines around its region only."""
    snap = burst.snapshot
    if len(after) != len(snap) + burst.delta or not (0 <= burst.start <= burst.end <= len(after)):
        # The caller's texts were not consecutive; diff the texts as they are.
        start, old_end, new_end = 0, len(snap), len(after)
    else:
        start, old_end, new_end = burst.start, burst.end - burst.delta, burst.end
    old_mid, new_mid = snap[start:old_end], after[start:new_end]
    if old_mid == new_mid:
        return ""
    # Narrow the region to what really changed (typing "ab" then deleting "b" leaves "a").
    head = _common_prefix(old_mid, new_mid)
    tail = _common_suffix(old_mid, new_mid, min(len(old_mid), len(new_mid)) - head)
    a0 = start + head
    a1, b1 = old_end - tail, new_end - tail
    lo = _back_lines(snap, _line_start(snap, a0), context_lines)
    # Whole lines: from the changed span's first line to the end of its last line.
    old_hi = _forward_lines(snap, _line_start(snap, a1) if a1 > lo else lo, context_lines + 1)
    new_hi = old_hi + (b1 - a1)
    first_line = snap.count("\n", 0, lo)
    return unified_diff(burst.path, snap[lo:old_hi], after[lo:new_hi], first_line=first_line,
                        context_lines=context_lines)


class EditHistory:
    """Bursts of edits, closed into `HistoryEntry` diffs; bounded by entries per file and
    total characters (the oldest entries are dropped first)."""

    def __init__(self, *, max_entries_per_file: int = 32, max_total_chars: int = 64_000,
                 burst_gap_s: float = 1.5, context_lines: int = 2) -> None:
        self.max_entries_per_file = max_entries_per_file
        self.max_total_chars = max_total_chars
        self.burst_gap_s = burst_gap_s
        self.context_lines = context_lines
        self._closed: deque[HistoryEntry] = deque()
        self._chars = 0
        self._seq = 0
        self._open: _Burst | None = None
        self._recent: list[str] = []  # paths, most recent first

    def record(self, path: str, text_before: str, start: int, removed: str, inserted: str,
               now: float) -> None:
        """One applied change: `removed` at string offset `start` of `text_before` was
        replaced by `inserted`."""
        assert text_before[start:start + len(removed)] == removed, "removed text must match"
        if not removed and not inserted:
            return
        self._touch(path)
        end = start + len(removed)
        burst = self._open
        if (burst is not None and burst.path == path and now - burst.last_at <= self.burst_gap_s
                and start <= burst.end and end >= burst.start):
            growth = len(inserted) - len(removed)
            burst.start = min(burst.start, start)
            burst.end = max(burst.end, end) + growth
            burst.delta += growth
        else:
            if burst is not None:
                self._close()
            burst = _Burst(path=path, snapshot=text_before, start=start,
                           end=start + len(inserted), delta=len(inserted) - len(removed),
                           last_at=now, last_before=text_before, last_start=start,
                           last_removed=len(removed), last_inserted=inserted)
            self._open = burst
        burst.last_at = now
        burst.last_before, burst.last_start = text_before, start
        burst.last_removed, burst.last_inserted = len(removed), inserted

    def close_open(self, now: float) -> None:
        """Close the open burst if it has been idle longer than the gap."""
        if self._open is not None and now - self._open.last_at > self.burst_gap_s:
            self._close()

    def entries(self, include_open: bool = False) -> list[HistoryEntry]:
        """Closed entries oldest first; with `include_open`, the open burst last."""
        out = list(self._closed)
        if include_open and self._open is not None:
            diff = _burst_diff(self._open, self._open.after_text(), self.context_lines)
            if diff:
                out.append(HistoryEntry(path=self._open.path, diff=diff, seq=self._seq,
                                        closed=False))
        return out

    def recent_paths(self) -> list[str]:
        """Paths changed, most recent first, each once."""
        return list(self._recent)

    def _touch(self, path: str) -> None:
        if self._recent and self._recent[0] == path:
            return
        if path in self._recent:
            self._recent.remove(path)
        self._recent.insert(0, path)
        del self._recent[MAX_RECENT_PATHS:]

    def _close(self) -> None:
        burst, self._open = self._open, None
        assert burst is not None
        diff = _burst_diff(burst, burst.after_text(), self.context_lines)
        if not diff:
            return
        entry = HistoryEntry(path=burst.path, diff=diff, seq=self._seq, closed=True)
        self._seq += 1
        self._closed.append(entry)
        self._chars += len(diff)
        self._enforce_bounds(burst.path)

    def _enforce_bounds(self, path: str) -> None:
        same = [e for e in self._closed if e.path == path]
        drop = {id(e) for e in same[: max(0, len(same) - self.max_entries_per_file)]}
        if drop:
            kept = [e for e in self._closed if id(e) not in drop]
            self._chars = sum(len(e.diff) for e in kept)
            self._closed = deque(kept)
        while self._closed and self._chars > self.max_total_chars:
            self._chars -= len(self._closed.popleft().diff)
