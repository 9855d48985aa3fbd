"""Everything the context engine follows about a workspace, without the protocol.

`Workspace` owns, for one language-server session (or one headless command): a syntax tree
per open document (updated on every change), the edit history, the recently edited and
visited files, the workspace index (built in the background, refreshed on save, on watched
file events and, for open documents, after a short idle period) and the context builder.
The server calls it from its handlers; nothing here imports pygls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from engine.tokenizer import Tokenizer
from lsp_server.context.assemble import Context, ContextBuilder, ContextOptions, CursorFile
from lsp_server.context.files import WorkspaceFiles
from lsp_server.context.index import WorkspaceIndex
from lsp_server.context.languages import LanguageRegistry
from lsp_server.context.privacy import ExclusionRules
from lsp_server.context.ranking import RankingCache
from lsp_server.context.tokens import TokenCounter
from lsp_server.context.trees import DocumentTree
from lsp_server.documents import AppliedEdit, Document
from lsp_server.history import EditHistory

log = logging.getLogger(__name__)

RECENT_FILES = 8  # recently edited or visited documents offered to the context


@dataclass(frozen=True, kw_only=True)
class WorkspaceSettings:
    root: Path | None = None  # no root: no index, the current file and open documents only
    exclude: tuple[str, ...] = ()  # gitignore-style patterns added to the default exclusions
    use_default_excludes: bool = True
    max_file_bytes: int = 1_000_000
    index_idle_s: float = 1.0  # an edited open document is re-indexed after this much quiet


def path_of_uri(uri: str) -> Path | None:
    """The local path of a `file:` URI, or None for other schemes (untitled buffers)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def find_root(path: Path) -> Path:
    """The nearest folder above `path` holding `.git`, else the file's own folder."""
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def cursor_window(text: str, offset: int, size: int) -> tuple[str, int]:
    """At most `size` characters of `text` around `offset`, cut at line starts where a
    line break is near enough: (window, where it starts in `text`)."""
    if len(text) <= size:
        return text, 0
    start = max(0, min(offset - size // 2, len(text) - size))
    end = start + size
    if start > 0 and (brk := text.find("\n", start, offset)) != -1:
        start = brk + 1
    if end < len(text) and (brk := text.rfind("\n", offset, end)) != -1:
        end = brk + 1
    return text[start:end], start


class Workspace:
    def __init__(self, *, tokenizer: Tokenizer, settings: WorkspaceSettings,
                 history: EditHistory | None = None) -> None:
        self.settings = settings
        self.registry = LanguageRegistry()
        self.counter = TokenCounter.from_tokenizer(tokenizer)
        self.special_ids = dict(tokenizer.special_ids)
        self.history = history if history is not None else EditHistory()
        self.rules = ExclusionRules.create(settings.exclude,
                                           use_defaults=settings.use_default_excludes)
        # Resolved once: display_path runs several times per keystroke.
        self._real_root = settings.root.resolve() if settings.root is not None else None
        self.files: WorkspaceFiles | None = None
        self.index: WorkspaceIndex | None = None
        if settings.root is not None:
            self.files = WorkspaceFiles(settings.root, self.rules,
                                        max_file_bytes=settings.max_file_bytes)
            self.index = WorkspaceIndex(settings.root, files=self.files, registry=self.registry)
        self.builder = ContextBuilder(counter=self.counter, special_ids=self.special_ids,
                                      registry=self.registry, index=self.index,
                                      ranking=RankingCache(), files=self.files,
                                      rules=self.rules)
        self._trees: dict[str, DocumentTree] = {}
        self._texts: dict[str, str] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._dirty: dict[str, float] = {}  # uri -> time of the last change not yet indexed
        self._index_lock = threading.Lock()  # one index build or refresh at a time
        self.index_ready = settings.root is None

    # -- paths

    def display_path(self, uri: str) -> str:
        """Workspace-relative posix path when inside the root, else the file name or URI."""
        path = path_of_uri(uri)
        if path is None:
            return uri
        if self._real_root is not None:
            try:
                return path.resolve().relative_to(self._real_root).as_posix()
            except ValueError:
                pass
        return path.name

    def allowed(self, uri: str) -> bool:
        """Whether a document may be context for another one (not ignored, not excluded)."""
        path = path_of_uri(uri)
        if path is None:
            return True
        if self.files is not None:
            return self.files.allowed(path)
        return not self.rules.excluded(path.name)

    # -- documents

    def too_large(self, text: str) -> bool:
        """Over `max_file_bytes` (UTF-8): tracked exactly, but never parsed whole, indexed
        or used as context for other files; its context is a window around the cursor."""
        limit = self.settings.max_file_bytes
        if len(text) > limit or len(text) * 4 <= limit:
            return len(text) > limit  # a character is one to four bytes
        return len(text.encode("utf-8", "surrogatepass")) > limit

    def opened(self, doc: Document) -> None:
        self._texts[doc.uri] = doc.text
        self._touch(doc.uri)
        spec = self.registry.for_document(doc.uri, doc.language_id)
        if spec is None or self.too_large(doc.text):
            if spec is not None:
                log.info("no syntax tree for %s: larger than maxFileBytes (%d); its context "
                         "is the text around the cursor", doc.uri, self.settings.max_file_bytes)
            self._trees.pop(doc.uri, None)
            return
        try:
            self._trees[doc.uri] = DocumentTree(spec, doc.text, self.registry.parser(spec))
        except (ValueError, RuntimeError) as exc:  # degrade to plain text, keep serving
            log.warning("no syntax tree for %s: %s", doc.uri, exc)
            self._trees.pop(doc.uri, None)

    def changed(self, before: Document, after: Document, edits: Sequence[AppliedEdit],
                now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        path = self.display_path(after.uri)
        text = before.text
        tree = self._trees.get(after.uri)
        keep_history = self.allowed(after.uri)  # an excluded file's edits are never context
        for edit in edits:
            if keep_history:
                self.history.record(path, text, edit.start, edit.removed, edit.inserted, now)
            text = text[:edit.start] + edit.inserted + text[edit.start + len(edit.removed):]
            if tree is not None:
                try:
                    tree.apply_edit(edit.start, edit.removed, edit.inserted)
                except ValueError as exc:
                    log.warning("syntax tree of %s out of step (%s)", after.uri, exc)
                    tree = None
        # A length check per keystroke; comparing the texts would decode the tree's buffer.
        # A document without a tree (no grammar for it) has nothing to re-parse.
        if after.uri in self._trees and (tree is None or tree.char_count != len(after.text)):
            log.warning("syntax tree of %s parsed afresh", after.uri)
            self.opened(after)
        self._texts[after.uri] = after.text
        self._touch(after.uri)
        self._dirty[after.uri] = now

    def closed(self, uri: str) -> None:
        self._trees.pop(uri, None)
        self._texts.pop(uri, None)
        if self._dirty.pop(uri, None) is not None:
            self._reindex(uri, None)  # back to what is on disk

    def saved(self, uri: str) -> None:
        self._dirty.pop(uri, None)
        self._reindex(uri, self._texts.get(uri))

    def files_changed(self, changes: Sequence[tuple[str, bool]]) -> None:
        """Watched-file events: (uri, deleted). Open documents keep their buffer's text."""
        for uri, deleted in changes:
            path = path_of_uri(uri)
            if path is None or self.index is None:
                continue
            if deleted:
                self.index.remove_file(path)
            elif uri not in self._texts:
                self.index.update_file(path)

    def tree(self, uri: str) -> DocumentTree | None:
        return self._trees.get(uri)

    def _touch(self, uri: str) -> None:
        self._recent.pop(uri, None)
        self._recent[uri] = None
        while len(self._recent) > 4 * RECENT_FILES:
            self._recent.popitem(last=False)

    # -- index

    def build_index(self, progress: Callable[[int, int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> None:
        """Index the whole root (blocking: the server runs it in a worker thread)."""
        if self.index is None:
            return
        with self._index_lock:
            started = time.perf_counter()
            self.index.build(progress=progress, cancelled=cancelled)
            for uri, text in list(self._texts.items()):
                self._reindex(uri, text, locked=True)
            self.index_ready = True
            log.info("workspace index: %s in %.1f s", self.index.stats(),
                     time.perf_counter() - started)

    def has_dirty(self) -> bool:
        return bool(self._dirty)

    def refresh_dirty(self, now: float | None = None) -> int:
        """Re-index open documents edited and then left alone for `index_idle_s`."""
        now = time.monotonic() if now is None else now
        due = [uri for uri, at in list(self._dirty.items())
               if now - at >= self.settings.index_idle_s]
        for uri in due:
            self._dirty.pop(uri, None)
            self._reindex(uri, self._texts.get(uri))
        return len(due)

    def _reindex(self, uri: str, text: str | None, *, locked: bool = False) -> None:
        path = path_of_uri(uri)
        if path is None or self.index is None:
            return
        if locked:
            self.index.update_file(path, text)
            return
        with self._index_lock:
            self.index.update_file(path, text)

    # -- context

    def context(self, doc: Document, offset: int, options: ContextOptions) -> Context:
        """The context for the cursor at string offset `offset` of `doc` (of the text
        around it, for a document over `max_file_bytes`)."""
        self.history.close_open(time.monotonic())
        text, tree = doc.text, self._trees.get(doc.uri)
        if tree is None and self.too_large(text):
            text, start = cursor_window(text, offset, self.settings.max_file_bytes // 2)
            offset -= start
        current = CursorFile(path=self.display_path(doc.uri), text=text, offset=offset,
                             tree=tree,
                             spec=self.registry.for_document(doc.uri, doc.language_id))
        recent = [(self.display_path(uri), self._texts[uri])
                  for uri in reversed(self._recent)
                  if uri != doc.uri and uri in self._texts and self.allowed(uri)
                  and not self.too_large(self._texts[uri])][:RECENT_FILES]
        return self.builder.build(current, options, history=self.history.entries(),
                                  recent=recent)
