"""The context builder: what goes into the prompt, exact to the token budget, stable from one
keystroke to the next.

Segments come in a fixed order — repository, recent files, definitions near the cursor,
edit history, current file (see `layout.py`) — and everything before the current file is
kept identical while one types inside a function, so the engine's KV cache covers all but
the last few tokens:

- allotments depend on the budget and the current file's size in whole quanta only;
- the repository segment depends on the index generation and the files in focus (the
  current file and the recent ones), never on the identifiers at the cursor;
- history shows closed bursts only, which do not change while one types;
- the definitions are looked up again only when the cursor has moved away from where they
  were looked up, when the history changed, or when their allotment did;
- the current file's cuts stay put while they fit (`window.py`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from lsp_server.context.chunks import FileLines, probe_split_rule
from lsp_server.context.healing import healable_text
from lsp_server.context.layout import (
    FIM_MARKERS,
    Allotments,
    Context,
    ContextOptions,
    ContextRefused,
    CursorFile,
    Markers,
    Segment,
    context_json,
    current_reserve,
    fill_allotment,
    fim_segments,
    join,
    shared_prefix,
)
from lsp_server.context.privacy import ExclusionRules, redact_secrets
from lsp_server.context.ranking import rank_files
from lsp_server.context.related import (
    MIN_ROOM,
    Selection,
    Sources,
    nearby_names,
    select_definitions,
    select_history,
    select_recent,
    select_repository,
    select_scopes,
)
from lsp_server.context.syntax import cut_lines
from lsp_server.context.text_cache import TextCache
from lsp_server.context.tokens import TokenCounter
from lsp_server.context.window import CurrentWindow, CutState, WindowFit

if TYPE_CHECKING:
    from lsp_server.context.files import WorkspaceFiles
    from lsp_server.context.history_entry import HistoryEntry
    from lsp_server.context.index import WorkspaceIndex
    from lsp_server.context.languages import LanguageRegistry
    from lsp_server.context.ranking import RankedFile, RankingCache

__all__ = ["Context", "ContextBuilder", "ContextOptions", "ContextRefused", "CursorFile",
           "Segment", "context_json", "shared_prefix"]

MAX_DOCUMENTS = 64
MAX_FILL_CANDIDATES = 5000  # ranked files the trailing repository segment may try
MAX_FILE_TEXT_CHARS = 64_000_000
MAX_REDACTED_CHARS = 16_000_000


@dataclass
class _Memo:
    """The last value of one computation and the key it was computed for."""

    key: Any = None
    value: Any = None


@dataclass
class _Document:
    """What the builder remembers about one document between builds."""

    source: bytes | None = None
    cut_key: tuple[Any, ...] = ()  # the FileLines' inputs
    lines: FileLines | None = None
    cut: CutState | None = None
    reserve: int | None = None
    fill: int | None = None  # the trailing repository segment's allotment
    fill_used: int = 0  # and the tokens it held
    definitions: _Memo = field(default_factory=_Memo)
    anchor_line: int = -1  # cursor line the definitions were looked up for


class ContextBuilder:
    """Builds `Context`s for one workspace and one tokenizer.

    Caches: per document (key: its path; at most MAX_DOCUMENTS, least recently built
    dropped) the last line table, cuts, current-file reserve and definitions segment;
    the repository, recent-file and history segments (one entry each, keyed by all their
    inputs); file texts and redactions (`_TextCache`); token ids (the `TokenCounter`).
    Not thread-safe: one thread builds.
    """

    def __init__(self, *, counter: TokenCounter, special_ids: Mapping[str, int],
                 registry: LanguageRegistry, index: WorkspaceIndex | None = None,
                 ranking: RankingCache | None = None, files: WorkspaceFiles | None = None,
                 rules: ExclusionRules | None = None) -> None:
        """`files`: the index's `WorkspaceFiles` (read and `allowed`); by default
        `index.files`. `rules`: the exclusions for paths outside the workspace; by default
        those of `files`, else the default list."""
        self.counter = counter
        self.markers = Markers.from_special_ids(special_ids)
        self.registry = registry
        self.index = index
        self.ranking = ranking
        if files is None and index is not None:
            files = index.files
        self.files = files
        self._rules = rules or (files.rules if files is not None else ExclusionRules.create())
        self._split_rule = probe_split_rule(counter)
        self._documents: OrderedDict[str, _Document] = OrderedDict()
        self._ranked = _Memo()
        self._repository = _Memo()
        self._fill = _Memo()
        self._recent = _Memo()
        self._history = _Memo()
        self._texts = TextCache(MAX_FILE_TEXT_CHARS)
        self._redacted = TextCache(MAX_REDACTED_CHARS)

    # -- privacy and files -------------------------------------------------------------

    def allowed(self, rel: str) -> bool:
        """Whether a workspace-relative path may enter a context (not excluded, not
        ignored by git; outside the workspace only the exclusion rules apply)."""
        if self.files is not None and not PurePosixPath(rel).is_absolute() \
                and not rel.startswith("../") and "://" not in rel:
            return self.files.allowed(self.files.root / rel)
        parts = PurePosixPath(rel).parts
        return not any(self._rules.excluded("/".join(parts[:i + 1]), i < len(parts) - 1)
                       for i in range(len(parts)))

    def _read(self, rel: str) -> str | None:
        if self.index is None:
            return None
        entry = self.index.get(rel)
        key = (rel, entry.size, entry.mtime_ns) if entry is not None else None
        held = self._texts.get(key) if key is not None else None
        if held is not None:
            return held[0]
        source = self.files.read(self.files.root / rel) if self.files is not None else None
        if source is None:
            return None
        if key is not None:
            self._texts.put(key, (source.text, 0))
        return source.text

    def _redact(self, text: str) -> tuple[str, int]:
        held = self._redacted.get(text)
        if held is None:
            held = redact_secrets(text)
            self._redacted.put(text, held)
        return held

    def _sources(self, remote: bool) -> Sources:
        return Sources(counter=self.counter, markers=self.markers, allowed=self.allowed,
                       read=self._read, redact=self._redact if remote else None)

    # -- the build ---------------------------------------------------------------------

    def build(self, current: CursorFile, options: ContextOptions, *,
              history: Sequence[HistoryEntry] = (),
              recent: Sequence[tuple[str, str]] = ()) -> Context:
        """The context for the cursor in `current`. `history`: edit history entries,
        oldest first (closed ones are shown); `recent`: (path, text) of recently edited or
        visited files, most recent first.

        Raises ValueError when the budget cannot hold the FIM markers, ContextRefused when
        a remote context would contain an excluded current file."""
        started = time.perf_counter()
        available = options.budget - FIM_MARKERS
        if available < 0:
            raise ValueError(f"a budget of {options.budget} tokens cannot hold the "
                             f"{FIM_MARKERS} FIM markers")
        if options.remote and not self.allowed(current.path):
            raise ContextRefused(f"{current.path} is excluded from remote contexts")
        assert 0 <= current.offset <= len(current.text), "the cursor lies in the text"
        src = self._sources(options.remote)
        doc = self._document(current.path)
        lines = self._lines(doc, current)
        if current.tree is not None:
            cursor_byte = current.tree.byte_offset(current.offset)
        else:
            cursor_byte = len(current.text[:current.offset].encode("utf-8", "surrogatepass"))
        window = CurrentWindow(lines, cursor_byte, self.counter, src.redact)

        share = int(available * options.current_file_share)
        need = window.prefix_total(share) + window.suffix_total(share)
        doc.reserve = current_reserve(available, options, need, doc.reserve)
        allot = Allotments.split(available, options, doc.reserve)

        recent_paths = tuple(dict.fromkeys(p for p, _ in recent if p != current.path))
        repository = self._select_repository(src, current.path, recent_paths, allot,
                                             options.remote)
        recent_sel = self._select_recent(src, current.path, recent, history,
                                         repository.whole, allot.recent, options.remote)
        closed = tuple(e for e in history if e.closed)
        history_sel = self._select_history(src, closed, allot.history, options.remote)

        limit = available - repository.used - recent_sel.used - history_sel.used \
            - allot.definitions
        fit = window.fit(limit, options.prefix_share, doc.cut)
        doc.cut = fit.state
        definitions = self._select_definitions(
            src, doc, current, lines, window.line, cursor_byte, (fit.first_line, fit.end_line),
            repository.whole | recent_sel.whole, allot.definitions, options,
            tuple(e.seq for e in closed))

        current_segments, heal, window_red = self._current_segments(
            current, options, lines, cursor_byte, fit, remote=src.redact is not None)
        used = sum(len(seg.tokens) for sel in (repository, recent_sel, definitions,
                                               history_sel) for seg in sel.segments)
        used += sum(len(seg.tokens) for seg in current_segments)
        fill = self._select_fill(src, doc, current.path, recent_paths,
                                 (repository, recent_sel, definitions, history_sel),
                                 options.budget - used, available, options)
        selections = (repository, recent_sel, definitions, fill, history_sel)
        segments = [seg for sel in selections for seg in sel.segments] + [*current_segments]
        redactions = sum(sel.redactions for sel in selections) + window_red
        return join(segments, budget=options.budget,
                    build_ms=(time.perf_counter() - started) * 1000, heal=heal,
                    redactions=redactions)

    # -- parts -------------------------------------------------------------------------

    def _document(self, path: str) -> _Document:
        doc = self._documents.pop(path, None) or _Document()
        self._documents[path] = doc
        while len(self._documents) > MAX_DOCUMENTS:
            self._documents.popitem(last=False)
        return doc

    def _lines(self, doc: _Document, current: CursorFile) -> FileLines:
        if current.tree is not None:
            source = current.tree.source
        else:
            source = current.text.encode("utf-8", "surrogatepass")
        key = (current.spec.name if current.spec else None, current.tree is not None)
        if doc.lines is not None and doc.cut_key == key and (
                doc.source is source or doc.source == source):
            return doc.lines
        cuts = None
        if current.tree is not None and current.spec is not None:
            spec, tree = current.spec, current.tree.tree
            cuts = partial(cut_lines, spec, tree)
        doc.source, doc.cut_key = source, key
        doc.lines = FileLines.build(source, cuts, self._split_rule)
        return doc.lines

    def _select_repository(self, src: Sources, path: str, recent_paths: tuple[str, ...],
                           allot: Allotments, remote: bool) -> Selection:
        if self.index is None or allot.repository <= 0:
            return Selection()
        focus = (path, *recent_paths)
        key = (self.index.generation, focus, allot.repository, remote)
        if self._repository.key != key:
            self._repository.key = key
            self._repository.value = select_repository(src, self.index, self._rank(focus),
                                                       frozenset(focus), allot.repository)
        return self._repository.value

    def _rank(self, focus: tuple[str, ...]) -> Sequence[RankedFile]:
        assert self.index is not None
        key = (self.index.generation, focus)
        if self._ranked.key != key:
            self._ranked.key = key
            if self.ranking is not None:
                self._ranked.value = self.ranking.rank(self.index, focus_files=focus)
            else:
                self._ranked.value = rank_files(self.index, focus_files=focus)
        return self._ranked.value

    def _select_fill(self, src: Sources, doc: _Document, path: str,
                     recent_paths: tuple[str, ...], shown: Sequence[Selection], room: int,
                     available: int, options: ContextOptions) -> Selection:
        """The room the other segments leave, filled with more of the repository: files
        ranked after those already shown. It changes only when the room crosses a step
        (`fill_allotment`), so typing keeps the prompt's front."""
        if not options.fill or self.index is None:
            return Selection()
        focus = (path, *recent_paths)
        skip = frozenset(seg.path for sel in shown for seg in sel.segments
                         if seg.path is not None) | frozenset(focus)
        allotment = fill_allotment(room, available, doc.fill, doc.fill_used)
        selection = self._fill_with(src, focus, skip, allotment, options.remote)
        if selection.used > room:  # a kept allotment, filled anew, no longer fits
            allotment = fill_allotment(room, available, None)
            selection = self._fill_with(src, focus, skip, allotment, options.remote)
        doc.fill, doc.fill_used = allotment, selection.used
        return selection

    def _fill_with(self, src: Sources, focus: tuple[str, ...], skip: frozenset[str],
                   allotment: int, remote: bool) -> Selection:
        assert self.index is not None
        if allotment < MIN_ROOM:
            return Selection()
        key = (self.index.generation, focus, skip, allotment, remote)
        if self._fill.key != key:
            self._fill.key = key
            self._fill.value = select_repository(src, self.index, self._rank(focus), skip,
                                                 allotment, kind="repository_fill",
                                                 candidates=MAX_FILL_CANDIDATES)
        return self._fill.value

    def _select_recent(self, src: Sources, path: str, recent: Sequence[tuple[str, str]],
                       history: Sequence[HistoryEntry], shown: frozenset[str], allotment: int,
                       remote: bool) -> Selection:
        if not recent or allotment <= 0:
            return Selection()
        # str hashes are cached on the object: this key costs nothing for unchanged texts.
        last_change = {e.path: e.seq for e in history}
        key = (path, tuple((p, len(t), hash(t), last_change.get(p)) for p, t in recent),
               shown, allotment, remote)
        if self._recent.key != key:
            self._recent.key = key
            self._recent.value = select_recent(src, recent, history, shown | {path},
                                               allotment)
        return self._recent.value

    def _select_history(self, src: Sources, closed: Sequence[HistoryEntry], allotment: int,
                        remote: bool) -> Selection:
        key = (tuple((e.seq, e.path, hash(e.diff)) for e in closed), allotment, remote)
        if self._history.key != key:
            self._history.key = key
            self._history.value = select_history(src, closed, allotment)
        return self._history.value

    def _select_definitions(self, src: Sources, doc: _Document, current: CursorFile,
                            lines: FileLines, cursor_line: int, cursor_byte: int,
                            visible: tuple[int, int], shown: frozenset[str], allotment: int,
                            options: ContextOptions, history_key: tuple[int, ...]) -> Selection:
        """The headers of enclosing scopes cut off above the prefix, then definitions."""
        if current.tree is None or current.spec is None or allotment <= 0:
            return Selection()
        key = (history_key, shown, allotment, options.remote, options.max_definition_lines,
               options.nearby_lines, visible[0])
        moved = abs(cursor_line - doc.anchor_line) > options.nearby_lines // 2
        if doc.definitions.key == key and not moved:
            return doc.definitions.value
        lo = max(0, cursor_line - options.nearby_lines)
        hi = min(lines.n_lines, cursor_line + options.nearby_lines + 1)
        names = nearby_names(current, cursor_line, (int(lines.starts[lo]),
                                                    int(lines.starts[hi])))

        def current_lines(first: int, end: int) -> str:
            first, end = min(first, lines.n_lines), min(end, lines.n_lines)
            return lines.source[int(lines.starts[first]):int(lines.starts[end])].decode(
                "utf-8", "surrogatepass")

        scopes = select_scopes(src, current, cursor_byte, visible[0], allotment)
        found = select_definitions(src, self.index, current, current_lines, names, visible,
                                   shown, allotment - scopes.used, options.max_definition_lines)
        value = Selection(segments=scopes.segments + found.segments,
                          used=scopes.used + found.used, whole=found.whole,
                          redactions=scopes.redactions + found.redactions)
        doc.definitions.key, doc.definitions.value = key, value
        doc.anchor_line = cursor_line
        return value

    def _current_segments(self, current: CursorFile, options: ContextOptions,
                          lines: FileLines, cursor_byte: int, fit: WindowFit, *, remote: bool
                          ) -> tuple[tuple[Segment, Segment], str, int]:
        """The current file's two segments, the healed text and the redactions."""
        prefix_ids = fit.prefix_ids()
        prefix_text = "".join(p.text for p in fit.prefix)
        suffix_ids = fit.suffix_ids()
        suffix_text = "".join(p.text for p in fit.suffix)
        redactions = sum(p.redactions for p in (*fit.prefix, *fit.suffix))
        if remote:
            # Pieces are redacted one by one; a secret across two pieces (a PEM block
            # over a chunk boundary) is only caught on the whole side.
            prefix_raw = lines.source[int(lines.starts[fit.first_line]):cursor_byte]
            suffix_raw = lines.source[cursor_byte:int(lines.starts[fit.end_line])]
            prefix_ids, prefix_text, n_pre = self._redact_side(
                prefix_ids, prefix_text, prefix_raw, fit.state.prefix.line is not None,
                keep_end=True)
            suffix_ids, suffix_text, n_suf = self._redact_side(
                suffix_ids, suffix_text, suffix_raw, fit.state.suffix.line is not None,
                keep_end=False)
            redactions = max(redactions, n_pre + n_suf)
        heal = self._heal(prefix_ids, prefix_text) if options.heal else ""
        if heal:
            prefix_ids.pop()
            prefix_text = prefix_text[:-len(heal)]
        segments = fim_segments(self.markers, options.fim_order, current.path, prefix_text,
                                prefix_ids, suffix_text, suffix_ids)
        return segments, heal, redactions

    def _redact_side(self, ids: list[int], text: str, raw: bytes, whole_lines: bool,
                     keep_end: bool) -> tuple[list[int], str, int]:
        """The side as redacted whole: its pieces when they agree, else the whole redacted
        text, trimmed to the pieces' token count at its far end (prefix: its start)."""
        if not whole_lines:
            return ids, text, 0
        # not cached: the prefix changes with every keystroke
        whole, n = redact_secrets(raw.decode("utf-8", "surrogatepass"))
        if whole == text:
            return ids, text, n
        redacted = list(self.counter.ids(whole))
        if len(redacted) > len(ids):
            redacted = redacted[len(redacted) - len(ids):] if keep_end else redacted[:len(ids)]
            whole = self.counter.decode(redacted) or ""
        return redacted, whole, n

    def _heal(self, prefix_ids: list[int], prefix_text: str) -> str:
        """The prefix's last token's text when the engine should re-choose it: a piece of
        a word or of punctuation on the cursor's line (see prompts.healable_tail)."""
        if len(prefix_ids) < 2:
            return ""
        text = self.counter.decode([prefix_ids[-1]])
        return text if text and healable_text(text) and prefix_text.endswith(text) else ""

