"""The workspace index: definitions, reference counts and imports of every source file.

Only tags and counts are kept, never file texts. `build` walks the workspace once (in a
worker thread, while the server reads); `update_file` and `remove_file` keep it current
file by file. Every change replaces a whole `FileEntry` under the lock and bumps
`generation`, which caches downstream (ranking) use as their key.
"""

from __future__ import annotations

import logging
import os
import posixpath
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Parser

from lsp_server.context.files import SourceFile, WorkspaceFiles
from lsp_server.context.imports import ImportQueries, resolve_import
from lsp_server.context.languages import LanguageRegistry, LanguageSpec
from lsp_server.context.tags import Tag, extract_tags

log = logging.getLogger(__name__)

_PROGRESS_EVERY = 50  # files between progress callbacks


@dataclass(frozen=True)
class FileEntry:
    """What the index keeps of one file: no text, only its tags and counts."""

    rel: str  # posix, relative to the workspace root
    language: str | None  # None: no grammar, indexed as plain text without tags
    size: int  # bytes
    mtime_ns: int  # 0 when indexed from an editor buffer
    definitions: tuple[Tag, ...]  # in source order
    references: tuple[tuple[str, int], ...]  # (referenced name, count), sorted by name
    imports: tuple[str, ...]  # modules as written: "os.path", "./util", "crate::foo"

    @property
    def tag_count(self) -> int:
        """What the entry costs against `max_tags`."""
        return len(self.definitions) + len(self.references)


@dataclass
class _BuildState:
    """What one `build` call owns: parsers (not shared with other threads) and which
    bounds it has already logged."""

    parsers: dict[str, Parser]
    logged: set[str]


class WorkspaceIndex:
    """Tags of every allowed file under `root`, bounded by `max_files` and `max_tags`.

    Thread-safety: any method may be called from any thread, and a build in a worker
    thread may overlap `update_file` calls from the server thread. Parsing happens
    outside the lock with parsers owned by the call; each mutation swaps one entry and
    its name maps under the lock, and the later store of a file wins.
    """

    def __init__(
        self,
        root: Path,
        *,
        files: WorkspaceFiles,
        registry: LanguageRegistry,
        max_files: int = 50_000,
        max_tags: int = 5_000_000,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.max_files = max_files
        self.max_tags = max_tags
        self._files = files
        self._registry = registry
        self._imports = ImportQueries()
        self._lock = threading.Lock()
        self._entries: dict[str, FileEntry] = {}
        # name -> the files defining it, unordered (a list: most names have one)
        self._definers: dict[str, list[str]] = {}
        # directory -> names of its indexed files (for resolving imports)
        self._dirs: dict[str, set[str]] = {}
        self._tags = 0
        self._bytes = 0
        self._skipped: Counter[str] = Counter()
        self._generation = 0

    @property
    def files(self) -> WorkspaceFiles:
        """The walker and reader this index follows (its gitignore and exclusion rules)."""
        return self._files

    @property
    def generation(self) -> int:
        """Bumped by every change to the entries; a cache key for derived data."""
        return self._generation

    # --- building --------------------------------------------------------------------

    def build(
        self,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        """Index every allowed file; files unchanged since they were indexed are kept.

        `progress(done, total)` is called every few dozen files and at the end. When
        `cancelled()` turns true the build stops, keeping what it has indexed so far.
        A complete build also forgets files that are gone or no longer allowed.
        """
        state = _BuildState(parsers={}, logged=set())
        with self._lock:
            self._skipped.clear()
        paths: list[Path] = []
        for path in self._files.walk():
            if cancelled is not None and cancelled():
                log.info("index build cancelled while walking %s", self.root)
                return
            if len(paths) >= self.max_files:
                self._skip("max_files", path, state)
                continue
            paths.append(path)
        total = len(paths)
        seen: set[str] = set()
        for done, path in enumerate(paths):
            if cancelled is not None and cancelled():
                log.info("index build cancelled after %d of %d files", done, total)
                return
            if progress is not None and done % _PROGRESS_EVERY == 0:
                progress(done, total)
            rel = self._files.rel(path)
            seen.add(rel)
            self._index_from_disk(path, rel, state)
        with self._lock:
            gone = [rel for rel in self._entries if rel not in seen]
        for rel in gone:
            self._remove(rel)
        if progress is not None:
            progress(total, total)
        log.info("indexed %s: %s", self.root, self.stats())

    def update_file(self, path: Path, text: str | None = None) -> None:
        """Re-index one file from disk, or from `text` (an open editor buffer). A file
        that is no longer allowed or readable leaves the index."""
        if not self._files.allowed(path):
            self.remove_file(path)
            return
        rel = self._files.rel(path)
        # A full index refuses edits quietly: the build has said so once already.
        state = _BuildState(parsers={}, logged={"max_tags"})
        if text is None:
            self._index_from_disk(path, rel, state, force=True)
            return
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self._files.max_file_bytes:
            log.debug("not indexing %s: %d bytes > %d", rel, size, self._files.max_file_bytes)
            self._remove(rel)
            return
        source = SourceFile(Path(path), rel, text, size, 0)
        self._store(self._parse(source, state), state)

    def remove_file(self, path: Path) -> None:
        try:
            rel = self._files.rel(path)
        except ValueError:
            return
        self._remove(rel)

    def _index_from_disk(
        self, path: Path, rel: str, state: _BuildState, force: bool = False
    ) -> None:
        held = None if force else self.get(rel)
        if held is not None:
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is not None and (held.mtime_ns, held.size) == (st.st_mtime_ns, st.st_size):
                return
        loaded = self._files.load(path)
        if isinstance(loaded, str):
            self._skip(loaded, path, state, quiet=True)
            self._remove(rel)
            return
        self._store(self._parse(loaded, state), state)

    def _parse(self, source: SourceFile, state: _BuildState) -> FileEntry:
        spec = self._registry.for_path(source.rel)
        if spec is None:
            return FileEntry(source.rel, None, source.size, source.mtime_ns, (), (), ())
        data = source.text.encode("utf-8", "surrogatepass")
        tree = self._parser(spec, state).parse(data)
        # The trees are error tolerant: a file with syntax errors still gives the tags of
        # the parts that parse.
        tags = extract_tags(spec, tree, data)
        definitions = tuple(tag for tag in tags if tag.is_definition)
        counts = Counter(sys.intern(tag.name) for tag in tags if not tag.is_definition)
        return FileEntry(
            rel=source.rel,
            language=spec.name,
            size=source.size,
            mtime_ns=source.mtime_ns,
            definitions=definitions,
            references=tuple(sorted(counts.items())),
            imports=self._imports.extract(spec, tree),
        )

    def _parser(self, spec: LanguageSpec, state: _BuildState) -> Parser:
        # Our own parsers, not `registry.parser`: that one is shared with the server
        # thread and a Parser must not be used by two threads at once.
        parser = state.parsers.get(spec.name)
        if parser is None:
            parser = state.parsers[spec.name] = Parser(spec.language)
        return parser

    def _skip(self, reason: str, path: Path, state: _BuildState, quiet: bool = False) -> None:
        with self._lock:
            self._skipped[reason] += 1
        if not quiet and reason not in state.logged:
            state.logged.add(reason)
            log.warning(
                "index of %s over its bound (%s): skipping %s and more", self.root, reason, path
            )

    # --- mutations (under the lock) --------------------------------------------------

    def _store(self, entry: FileEntry, state: _BuildState) -> None:
        with self._lock:
            old = self._entries.get(entry.rel)
            held_tags = 0 if old is None else old.tag_count
            over = self._tags - held_tags + entry.tag_count > self.max_tags
            self._unlink(old)  # an entry over the bound drops the stale one too
            if not over:
                self._link(entry)
        if over:
            self._skip("max_tags", Path(entry.rel), state)

    def _remove(self, rel: str) -> None:
        with self._lock:
            self._unlink(self._entries.get(rel))

    def _link(self, entry: FileEntry) -> None:
        self._entries[entry.rel] = entry
        for name in {tag.name for tag in entry.definitions}:
            self._definers.setdefault(sys.intern(name), []).append(entry.rel)
        parent, name = posixpath.split(entry.rel)
        self._dirs.setdefault(parent, set()).add(name)
        self._tags += entry.tag_count
        self._bytes += entry.size
        self._generation += 1

    def _unlink(self, entry: FileEntry | None) -> None:
        if entry is None:
            return
        del self._entries[entry.rel]
        for name in {tag.name for tag in entry.definitions}:
            rels = self._definers[name]
            rels.remove(entry.rel)
            if not rels:
                del self._definers[name]
        parent, name = posixpath.split(entry.rel)
        names = self._dirs.get(parent)
        if names is not None:
            names.discard(name)
            if not names:
                del self._dirs[parent]
        self._tags -= entry.tag_count
        self._bytes -= entry.size
        self._generation += 1

    # --- reading ---------------------------------------------------------------------

    def get(self, rel: str) -> FileEntry | None:
        with self._lock:
            return self._entries.get(rel)

    def entries(self) -> list[FileEntry]:
        """Every entry, sorted by path."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[int, list[FileEntry]]:
        """The generation and the entries of that generation, sorted by path."""
        with self._lock:
            return self._generation, sorted(self._entries.values(), key=lambda e: e.rel)

    def definitions_of(self, name: str) -> list[tuple[str, Tag]]:
        """(path, tag) of every definition of `name`, by path then position."""
        with self._lock:
            entries = [self._entries[rel] for rel in sorted(self._definers.get(name, ()))]
        return [(e.rel, tag) for e in entries for tag in e.definitions if tag.name == name]

    def resolve_import(self, from_rel: str, imported: str) -> str | None:
        """The indexed file an import in `from_rel` refers to (best effort), or None."""
        entry = self.get(from_rel)
        if entry is not None:
            language = entry.language
        else:
            spec = self._registry.for_path(from_rel)
            language = spec.name if spec is not None else None
        with self._lock:
            return resolve_import(language, from_rel, imported, self._dirs)

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {
                "files": len(self._entries),
                "definitions": sum(len(e.definitions) for e in self._entries.values()),
                "references": sum(
                    count for e in self._entries.values() for _, count in e.references
                ),
                "bytes_indexed": self._bytes,
                "tags": self._tags,
                "generation": self._generation,
                "skipped": dict(sorted(self._skipped.items())),
            }
