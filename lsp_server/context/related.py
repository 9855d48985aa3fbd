"""What the prompt shows besides the current file: the repository's most related files,
recently edited files, and the definitions of names used near the cursor.

Each selector packs file pieces (`<|file_sep|>path\\n` text) into a token allotment and
returns them in a deterministic order. None of them looks at what is being typed at the
cursor, except the definitions, which the builder refreshes only now and then.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lsp_server.context.layout import (
    HistoryHead,
    Markers,
    Segment,
    file_piece,
    history_segment,
    piece_cost,
)
from lsp_server.context.syntax import enclosing_scopes
from lsp_server.context.tags import Tag, extract_tags
from lsp_server.context.tokens import TokenCounter

if TYPE_CHECKING:
    from lsp_server.context.history_entry import HistoryEntry
    from lsp_server.context.index import WorkspaceIndex
    from lsp_server.context.layout import CursorFile
    from lsp_server.context.ranking import RankedFile

# Pieces are tokenized only when their text could fit: no tokenizer averages more
# characters per token than this on source code.
MAX_CHARS_PER_TOKEN = 12
MIN_ROOM = 16  # tokens below which no further piece is tried
MAX_REPOSITORY_CANDIDATES = 400
MIN_MAP_TOKENS = 64
MAX_RECENT_FILES = 6
MAX_ANYWHERE_DEFINITIONS = 3  # a name defined in more files than this is too ambiguous

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Sources:
    """What the selectors read through: tokens, markers, privacy and file texts."""

    counter: TokenCounter
    markers: Markers
    allowed: Callable[[str], bool]  # may this workspace-relative path enter a context?
    read: Callable[[str], str | None]  # the text of a workspace file
    redact: Callable[[str], tuple[str, int]] | None  # None: a local target


@dataclass(frozen=True)
class Selection:
    segments: tuple[Segment, ...] = ()
    used: int = 0  # tokens
    whole: frozenset[str] = field(default_factory=frozenset)  # files shown in full
    redactions: int = 0


class _Packer:
    def __init__(self, src: Sources, kind: str, allotment: int) -> None:
        self.src, self.kind, self.allotment = src, kind, allotment
        self.segments: list[Segment] = []
        self.used = 0
        self.whole: set[str] = set()
        self.redactions = 0

    @property
    def room(self) -> int:
        return self.allotment - self.used

    def clean(self, text: str) -> tuple[str, int]:
        return self.src.redact(text) if self.src.redact is not None else (text, 0)

    def add(self, path: str, text: str, redactions: int, *, whole: bool = False) -> bool:
        """Add the piece when it fits; whether it did."""
        if len(text) > self.room * MAX_CHARS_PER_TOKEN:
            return False
        cost = piece_cost(self.src.counter, path, text)
        if cost > self.room:
            return False
        self.segments.append(file_piece(self.src.counter, self.src.markers, self.kind, path,
                                        text))
        self.used += cost
        self.redactions += redactions
        if whole:
            self.whole.add(path)
        return True

    def selection(self, order: Callable[[list[Segment]], list[Segment]] = list) -> Selection:
        return Selection(tuple(order(self.segments)), self.used, frozenset(self.whole),
                         self.redactions)


def _split(text: str) -> list[str]:
    """Lines with "\\n" kept; only "\\n" ends a line, as tree-sitter counts rows."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


# -- repository -----------------------------------------------------------------------------

def header_rows(lines: Sequence[str], definitions: Sequence[Tag], names: Sequence[str]
                ) -> list[int]:
    """First lines of a file's definitions, the most important first: those of `names` in
    that order (the ranking's), then the rest in file order."""
    by_name: dict[str, list[int]] = {}
    for tag in definitions:
        if tag.def_start_line < len(lines):
            by_name.setdefault(tag.name, []).append(tag.def_start_line)
    ordered = [row for name in names for row in by_name.get(name, ())]
    ordered += sorted(row for rows in by_name.values() for row in rows)
    return list(dict.fromkeys(ordered))


def header_map(counter: TokenCounter, path: str, text: str, definitions: Sequence[Tag],
               names: Sequence[str], room: int) -> str:
    """A compact map of the file: the first lines of as many of its most important
    definitions as fit in `room` tokens, in file order; "" when none fits."""
    lines = _split(text)
    rows = header_rows(lines, definitions, names)

    def render(k: int) -> str:
        return "".join(lines[r] if lines[r].endswith("\n") else lines[r] + "\n"
                       for r in sorted(rows[:k]))

    lo, hi = 0, len(rows)  # invariant: the first lo rows fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if piece_cost(counter, path, render(mid)) <= room:
            lo = mid
        else:
            hi = mid - 1
    return render(lo)


def select_repository(src: Sources, index: WorkspaceIndex, ranked: Sequence[RankedFile],
                      skip: frozenset[str], allotment: int, *, kind: str = "repository",
                      candidates: int = MAX_REPOSITORY_CANDIDATES) -> Selection:
    """Whole files in rank order while they fit; a file too large for the room left shows
    the headers of its most important definitions instead, as many as fit. Only the first
    `candidates` ranked files are tried."""
    pack = _Packer(src, kind, allotment)
    for rank in ranked[:candidates]:
        if pack.room < MIN_ROOM:
            break
        if rank.rel in skip or not src.allowed(rank.rel):
            continue
        raw = src.read(rank.rel)
        if raw is None:
            continue
        text, n = pack.clean(raw)
        if pack.add(rank.rel, text, n, whole=True):
            continue
        entry = index.get(rank.rel)
        if entry is not None and entry.definitions:
            # One file's map takes at most a quarter of the room, so others get theirs.
            room = max(pack.room // 4, min(pack.room, MIN_MAP_TOKENS))
            headers = header_map(src.counter, rank.rel, raw, entry.definitions, rank.names,
                                 room)
            if headers:
                headers, n = pack.clean(headers)
                pack.add(rank.rel, headers, n)
    return pack.selection()


# -- recent files ---------------------------------------------------------------------------

def changed_line(path: str, history: Sequence[HistoryEntry]) -> int:
    """0-based line of the newest recorded change to `path`, or 0."""
    for entry in reversed(history):
        if entry.path == path:
            found = _HUNK.search(entry.diff)
            if found:
                return max(0, int(found.group(1)) - 1)
    return 0


def region(counter: TokenCounter, path: str, text: str, center: int, room: int) -> str:
    """The widest run of lines around line `center` whose piece fits `room` tokens."""
    lines = _split(text)
    center = min(center, max(0, len(lines) - 1))

    def window(r: int) -> str:
        return "".join(lines[max(0, center - r):center + r + 1])

    # Every line costs a token at least, so no radius past room / 2 can fit.
    lo, hi = -1, min(len(lines), room // 2 + 1)  # invariant: radius lo fits (-1: none)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if piece_cost(counter, path, window(mid)) <= room:
            lo = mid
        else:
            hi = mid - 1
    return window(lo) if lo >= 0 else ""


def select_recent(src: Sources, recent: Sequence[tuple[str, str]],
                  history: Sequence[HistoryEntry], skip: frozenset[str], allotment: int
                  ) -> Selection:
    """Recently edited or visited files, most recent first while choosing (each takes at
    most half the room left), laid out oldest first so the newest sits nearest the cursor."""
    pack = _Packer(src, "recent_file", allotment)
    seen: set[str] = set()
    chosen = []
    for path, text in recent:
        if path in skip or path in seen or not src.allowed(path):
            continue
        seen.add(path)
        chosen.append((path, text))
    chosen = chosen[:MAX_RECENT_FILES]
    for i, (path, raw) in enumerate(chosen):
        if pack.room < MIN_ROOM:
            break
        text, n = pack.clean(raw)
        limit = pack.room if i == len(chosen) - 1 else pack.room // 2
        if len(text) <= limit * MAX_CHARS_PER_TOKEN and \
                piece_cost(src.counter, path, text) <= limit and pack.add(path, text, n,
                                                                           whole=True):
            continue
        part = region(src.counter, path, text, changed_line(path, history), limit)
        if part:
            pack.add(path, part, n)
    return pack.selection(lambda segments: segments[::-1])


# -- edit history ---------------------------------------------------------------------------

def select_history(src: Sources, closed: Sequence[HistoryEntry], allotment: int) -> Selection:
    """The history's head (`<|edit_history|>` or a file piece's, see `HistoryHead`) and
    the newest closed entries' diffs that fit, oldest first."""
    kept: list[tuple[str, tuple[int, ...], int]] = []
    head = HistoryHead.create(src.counter, src.markers)
    room = allotment - len(head.tokens)
    for entry in reversed(closed):
        if not src.allowed(entry.path):
            continue
        diff, n = src.redact(entry.diff) if src.redact is not None else (entry.diff, 0)
        ids = src.counter.ids(diff)
        if len(ids) > room:
            break
        room -= len(ids)
        kept.append((diff, ids, n))
    if not kept:
        return Selection()
    kept.reverse()
    segment = history_segment(head, [d for d, _, _ in kept], [i for _, i, _ in kept])
    return Selection((segment,), len(segment.tokens), frozenset(), sum(n for *_, n in kept))


# -- definitions near the cursor ------------------------------------------------------------

@dataclass(frozen=True)
class _Found:
    tier: int  # 0 the current file, 1 a file it imports, 2 anywhere
    distance: int  # rank of the name by its distance from the cursor
    rel: str
    tag: Tag


def nearby_names(current: CursorFile, cursor_line: int, byte_range: tuple[int, int]
                 ) -> list[str]:
    """Names referenced in `byte_range` of the current file, nearest the cursor first."""
    assert current.tree is not None and current.spec is not None
    tags = extract_tags(current.spec, current.tree.tree, current.tree.source, byte_range)
    refs = sorted((abs(t.line - cursor_line), t.line, t.name) for t in tags
                  if not t.is_definition)
    return list(dict.fromkeys(name for _, _, name in refs))


def _candidates(index: WorkspaceIndex | None, current: CursorFile, names: Sequence[str],
                local: dict[str, list[Tag]]) -> list[_Found]:
    imported: dict[str, list[tuple[str, Tag]]] = {}
    entry = index.get(current.path) if index is not None else None
    if index is not None and entry is not None:
        for module in entry.imports:
            target = index.resolve_import(current.path, module)
            held = index.get(target) if target and target != current.path else None
            for tag in held.definitions if held is not None else ():
                imported.setdefault(tag.name, []).append((held.rel, tag))
    found: list[_Found] = []
    for distance, name in enumerate(names):
        if name in local:
            found += [_Found(0, distance, current.path, t) for t in local[name]]
        elif name in imported:
            found += [_Found(1, distance, rel, t) for rel, t in sorted(
                imported[name], key=lambda p: (p[0], p[1].def_start_line))]
        elif index is not None:
            anywhere = [(rel, t) for rel, t in index.definitions_of(name)
                        if rel != current.path]
            if 0 < len(anywhere) <= MAX_ANYWHERE_DEFINITIONS:
                found += [_Found(2, distance, rel, t) for rel, t in anywhere]
    return found


def select_scopes(src: Sources, current: CursorFile, cursor_byte: int, first_visible: int,
                  allotment: int) -> Selection:
    """The header lines of the scopes around the cursor that start above the first line of
    the current file that is shown (a long function or class cut off by the budget), so
    the model still knows which method of which class it is in."""
    if current.tree is None or current.spec is None or allotment <= 0:
        return Selection()
    scopes = enclosing_scopes(current.spec, current.tree.tree, cursor_byte)
    hidden = [s for s in scopes if s.start_line < first_visible and s.header]
    if not hidden:
        return Selection()
    source = current.tree.source

    def indent(start: int) -> str:
        line_start = source.rfind(b"\n", 0, start) + 1
        lead = source[line_start:start]
        return lead.decode("utf-8", "replace") if not lead.strip() else ""

    text = "".join(f"{indent(s.start_byte)}{s.header}\n" for s in hidden)
    redactions = 0
    if src.redact is not None:
        text, redactions = src.redact(text)
    piece = file_piece(src.counter, src.markers, "scopes", current.path, text)
    if len(piece.tokens) > allotment:
        return Selection()
    return Selection(segments=(piece,), used=len(piece.tokens), redactions=redactions)


def select_definitions(src: Sources, index: WorkspaceIndex | None, current: CursorFile,
                       current_lines: Callable[[int, int], str], names: Sequence[str],
                       visible: tuple[int, int],
                       skip: frozenset[str], allotment: int, max_lines: int) -> Selection:
    """Definitions of `names` (nearest first): in the current file, else in a file it
    imports, else anywhere when unambiguous. Skipped: those shown already (inside the
    visible lines of the current file, or files shown whole). Laid out by (path, line)."""
    assert current.tree is not None and current.spec is not None
    local: dict[str, list[Tag]] = {}
    for tag in extract_tags(current.spec, current.tree.tree, current.tree.source):
        if tag.is_definition:
            local.setdefault(tag.name, []).append(tag)
    pack = _Packer(src, "definitions", allotment)
    spans: dict[str, list[tuple[int, int]]] = {}
    places: list[tuple[str, int]] = []  # (path, first line) of each piece added
    texts: dict[str, list[str] | None] = {}
    found = _candidates(index, current, names, local)
    for item in sorted(found, key=lambda f: (f.tier, f.distance, f.rel, f.tag.def_start_line)):
        if pack.room < MIN_ROOM:
            break
        tag, rel = item.tag, item.rel
        first, last = tag.def_start_line, min(tag.def_end_line,
                                              tag.def_start_line + max_lines - 1)
        if rel == current.path:
            if visible[0] <= tag.def_start_line and tag.def_end_line < visible[1]:
                continue
        elif rel in skip or not src.allowed(rel):
            continue
        if any(a <= first and last <= b for a, b in spans.get(rel, ())):
            continue
        if rel == current.path:
            snippet = current_lines(first, last + 1)
        else:
            if rel not in texts:
                raw = src.read(rel)
                texts[rel] = None if raw is None else _split(raw)
            lines = texts[rel]
            if lines is None:
                continue
            snippet = "".join(lines[first:last + 1])
        text, n = pack.clean(snippet)
        if text and pack.add(rel, text, n):
            spans.setdefault(rel, []).append((first, last))
            places.append((rel, first))

    def by_place(segments: list[Segment]) -> list[Segment]:
        order = sorted(range(len(segments)), key=lambda k: places[k])
        return [segments[k] for k in order]

    return pack.selection(by_place)
