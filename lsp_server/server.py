"""The language server: thin pygls handlers over `Assistant`.

Handlers fetch what the request names, call one `Assistant` method and convert the
answer with `lsp_types`; everything else lives in modules without pygls.

Custom methods:
- `sparkedit/status` (request, no params) -> the status payload below; also sent as a
  notification whenever the engine's state changes:
  `{state: "starting"|"ready"|"restarting"|"error"|"stopped", message, enginePid, model,
  untrained, lastLatencies: {context_ms, ttft_ms, total_ms}}`.
- `sparkedit/documentText` (request, `{uri}`) -> `{uri, version, text}` or null: the
  server's exact copy of a document, for tests and for debugging desynchronised edits.
- `sparkedit/context` (request, `{textDocument: {uri}, position, budget?}`) -> the context
  a completion there would send, as `sparkedit context --json` prints it, or null.
- `sparkedit/nextEdit` (request, `{textDocument: {uri, version}, position}`) ->
  `{edits: [{range, newText}], id, textDocument: {uri, version}}`, or `{edits: []}`.
- `workspace/executeCommand` `sparkedit.editSelection` `[uri, range, instruction]` -> a
  `WorkspaceEdit` (versioned document changes), or null with a `window/showMessage` saying
  why (no change proposed, the edit does not parse, ...); `sparkedit.accept` `[id]` (the
  command inline completion items carry) records an accept.
- `sparkedit/didShow` `{id}`, `sparkedit/didAccept` `{id, acceptedLength?}`,
  `sparkedit/didReject` `{id}` (notifications): feedback on a suggestion.
- `sparkedit/didFocus` `{textDocument: {uri}, position?}` (notification): the editor shows
  this document (with its cursor); the server warms the engine's prefix cache for it.
The status payload also carries `stats` (acceptance, latency percentiles, cache and
cancellation shares, prompt-prefix reuse), `target`, `indexReady`, `lastStats`
(`{prompt_tokens, cached_prompt_tokens}` of the last completion), `focus` (the document
being warmed) and `warm` (`[{uri, budget, complete, warming}]`: per document the prompt
budget its completions use now, whether its full-budget prompt is prefilled, the budget
being prefilled or null).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp_server import lsp_types, rpc_errors
from lsp_server.assistant import Assistant, AssistantCallbacks
from lsp_server.completion import CompletionOptions
from lsp_server.documents import PositionError
from lsp_server.engine_process import EngineOptions
from lsp_server.protocol import SparkeditProtocol
from lsp_server.usage import UsageError
from lsp_server.workspace import Workspace, WorkspaceSettings

log = logging.getLogger(__name__)

INDEX_PROGRESS_TOKEN = "sparkedit/index"
REFRESH_EVERY_S = 0.5  # how often edited open documents are checked for re-indexing
SAVE_STATS_EVERY_S = 60.0  # feedback statistics reach the stats file at least this often
FIRST_STATS_SAVE_S = 2.0
STATUS = "sparkedit/status"
DOCUMENT_TEXT = "sparkedit/documentText"
CONTEXT = "sparkedit/context"
NEXT_EDIT = "sparkedit/nextEdit"
DID_SHOW, DID_ACCEPT, DID_REJECT = "sparkedit/didShow", "sparkedit/didAccept", "sparkedit/didReject"
DID_FOCUS = "sparkedit/didFocus"
EDIT_SELECTION, ACCEPT = "sparkedit.editSelection", "sparkedit.accept"
VERSION = "0.1.0"


class SparkeditServer(LanguageServer):
    def __init__(self, engine: EngineOptions, completion: CompletionOptions) -> None:
        super().__init__("sparkedit", VERSION, protocol_cls=SparkeditProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.assistant = Assistant(engine=engine, completion=completion,
                                   callbacks=AssistantCallbacks(status=self._notify_status,
                                                                warn=self._warn))
        self._stopping = False
        self._index_runs = 0
        self._background: set[asyncio.Task] = set()

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
            # json.loads failed on the client's bytes
            self.protocol.parse_error(error)
            return
        super().report_server_error(error, source)

    @property
    def client_capabilities(self) -> types.ClientCapabilities | None:
        return getattr(self.protocol, "client_capabilities", None)

    @property
    def encoding(self) -> lsp_types.Encoding:
        return lsp_types.encoding(self.workspace.position_encoding)

    async def index_workspace(self, workspace: Workspace) -> None:
        """Build the index in a worker thread, with work-done progress when the client
        supports it, then keep edited open documents re-indexed."""
        loop = asyncio.get_running_loop()
        progress = None
        self._index_runs += 1
        token = INDEX_PROGRESS_TOKEN if self._index_runs == 1 else \
            f"{INDEX_PROGRESS_TOKEN}/{self._index_runs}"
        if lsp_types.supports_progress(self.client_capabilities):
            try:
                await self.work_done_progress.create_async(token)
                progress = self.work_done_progress
            except Exception as exc:  # the client refused the token: index without progress
                log.info("no index progress: %s", exc)
        if progress is not None:
            progress.begin(token, types.WorkDoneProgressBegin(
                title="sparkedit: indexing the workspace", percentage=0))

        def report(done: int, total: int) -> None:
            if progress is not None and total:
                value = types.WorkDoneProgressReport(message=f"{done}/{total} files",
                                                     percentage=int(100 * done / total))
                loop.call_soon_threadsafe(progress.report, token, value)

        try:
            await asyncio.to_thread(workspace.build_index, report, lambda: self._stopping)
        finally:
            if progress is not None:
                stats = workspace.index.stats() if workspace.index else {}
                progress.end(token, types.WorkDoneProgressEnd(
                    message=f"{stats.get('files', 0)} files indexed"))
        if self.assistant.workspace is workspace:
            self.assistant.warmup.context_changed()  # the repository context is complete now
        while not self._stopping and self.assistant.workspace is workspace:
            await asyncio.sleep(REFRESH_EVERY_S)
            if workspace.has_dirty():
                await asyncio.to_thread(workspace.refresh_dirty)

    def start_indexing(self, workspace: Workspace) -> None:
        self.keep(self.index_workspace(workspace))

    def keep(self, work: Any) -> None:
        """Run `work` in the background until it ends or the server shuts down."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def save_stats_periodically(self) -> None:
        await asyncio.sleep(FIRST_STATS_SAVE_S)  # a folder that cannot be written is said early
        while not self._stopping:
            self.assistant.save_stats()
            await asyncio.sleep(SAVE_STATS_EVERY_S)

    def _notify_status(self, status: dict[str, Any]) -> None:
        self.protocol.notify(STATUS, status)

    def _warn(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning,
                                                         message=message))


def build_server(engine: EngineOptions | None = None,
                 completion: CompletionOptions | None = None) -> SparkeditServer:
    server = SparkeditServer(engine or EngineOptions(), completion or CompletionOptions())

    @server.feature(types.INITIALIZE)
    def initialize(ls: SparkeditServer, params: types.InitializeParams) -> None:
        problems, _ = ls.assistant.configure(params.initialization_options or {})
        for problem in problems:
            log.warning("initializationOptions: %s", problem)
        options = ls.assistant.options
        root = lsp_types.root_folder(params)
        ls.assistant.start_workspace(WorkspaceSettings(
            root=Path(root) if root else None, exclude=options.exclude,
            max_file_bytes=options.max_file_bytes))

    @server.feature(types.INITIALIZED)
    async def initialized(ls: SparkeditServer, params: types.InitializedParams) -> None:
        ls.keep(ls.save_stats_periodically())
        workspace = ls.assistant.workspace
        if workspace is None or workspace.index is None:
            return
        if lsp_types.supports_watched_files(ls.client_capabilities):
            await lsp_types.register_file_watchers(ls)
        ls.start_indexing(workspace)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: SparkeditServer,
                                 params: types.DidChangeConfigurationParams) -> None:
        problems, reindex = ls.assistant.configure(params.settings)
        if problems:
            ls._warn("sparkedit settings: " + "; ".join(problems))
        workspace = ls.assistant.workspace
        if reindex and workspace is not None and workspace.index is not None:
            ls.start_indexing(workspace)
        ls._notify_status(ls.assistant.status())

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SparkeditServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.assistant.did_open(doc.uri, doc.text, doc.version, doc.language_id)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SparkeditServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = params.text_document
        result = ls.assistant.did_change(
            doc.uri, lsp_types.changes(params.content_changes), doc.version, ls.encoding)
        if isinstance(result, PositionError):
            log.error("didChange not applied to %s (copy kept at the previous version): %s",
                      doc.uri, result.message)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SparkeditServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.assistant.did_save(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SparkeditServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.assistant.did_close(params.text_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: SparkeditServer,
                                 params: types.DidChangeWatchedFilesParams) -> None:
        ls.assistant.files_changed([(change.uri, change.type == types.FileChangeType.Deleted)
                                    for change in params.changes])

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: SparkeditServer, params: types.InlineCompletionParams
    ) -> list[types.InlineCompletionItem]:
        # Async so that $/cancelRequest cancels it; the engine client turns that
        # cancellation into an engine `cancel` and CancelledError propagates to pygls.
        answer = await ls.assistant.inline_completion(
            params.text_document.uri, lsp_types.position(params.position), ls.encoding)
        return lsp_types.inline_items(answer, params.position, ACCEPT)

    @server.feature(NEXT_EDIT)
    async def next_edit(ls: SparkeditServer, params: Any = None) -> dict[str, Any]:
        uri, version, position = _checked(rpc_errors.text_document_position, params)
        found = await ls.assistant.next_edit(uri, version, position, ls.encoding)
        if found is None:
            return {"edits": []}
        doc, edit = found
        return lsp_types.next_edit_result(doc, edit, ls.encoding,
                                          ls.assistant.inline.register_edit(uri, edit))

    @server.command(EDIT_SELECTION)
    async def edit_selection(ls: SparkeditServer, *args: Any) -> Any:
        request = lsp_types.edit_selection_args(args)
        if request is None:
            raise JsonRpcInvalidParams(
                f"{EDIT_SELECTION} takes [uri, range, instruction] (a string uri, an LSP "
                "range, a non-empty instruction)")
        uri, start, end, instruction = request
        found = await ls.assistant.edit_selection(uri, start, end, instruction, ls.encoding)
        if isinstance(found, str):
            ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info,
                                                           message=f"sparkedit: {found}"))
            return None
        doc, edit = found
        return lsp_types.workspace_edit(doc, edit, ls.encoding)

    @server.command(ACCEPT)
    def accept_command(ls: SparkeditServer, *args: Any) -> None:
        if args and isinstance(args[0], str):
            ls.assistant.inline.did_accept(args[0], None, ls.assistant.documents.get)

    @server.feature(DID_SHOW)
    def did_show(ls: SparkeditServer, params: Any = None) -> None:
        suggestion_id = lsp_types.param(params, "id")
        if isinstance(suggestion_id, str):
            ls.assistant.inline.did_show(suggestion_id)

    @server.feature(DID_ACCEPT)
    def did_accept(ls: SparkeditServer, params: Any = None) -> None:
        suggestion_id = lsp_types.param(params, "id")
        length = lsp_types.param(params, "acceptedLength")
        if not isinstance(suggestion_id, str) or not (length is None or (
                isinstance(length, int) and not isinstance(length, bool) and length >= 0)):
            log.info("sparkedit/didAccept needs {id: string, acceptedLength?: int >= 0}")
            return
        ls.assistant.inline.did_accept(suggestion_id, length, ls.assistant.documents.get)

    @server.feature(DID_REJECT)
    def did_reject(ls: SparkeditServer, params: Any = None) -> None:
        suggestion_id = lsp_types.param(params, "id")
        if isinstance(suggestion_id, str):
            ls.assistant.inline.did_reject(suggestion_id)

    @server.feature(DID_FOCUS)
    def did_focus(ls: SparkeditServer, params: Any = None) -> None:
        uri = lsp_types.param(lsp_types.param(params, "textDocument"), "uri")
        if not isinstance(uri, str):
            log.info("sparkedit/didFocus needs {textDocument: {uri}, position?}")
            return
        ls.assistant.did_focus(uri, lsp_types.param_position(params), ls.encoding)

    @server.feature(STATUS)
    def status(ls: SparkeditServer, params: Any = None) -> dict[str, Any]:
        return ls.assistant.status()

    @server.feature(DOCUMENT_TEXT)
    def document_text(ls: SparkeditServer, params: Any = None) -> dict[str, Any] | None:
        uri = _checked(rpc_errors.need_str, params, "uri")
        doc = ls.assistant.documents.get(uri)
        if doc is None:
            return None
        return {"uri": doc.uri, "version": doc.version, "text": doc.text}

    @server.feature(CONTEXT)
    def context(ls: SparkeditServer, params: Any = None) -> dict[str, Any] | None:
        uri, _, position = _checked(rpc_errors.text_document_position, params)
        budget = _checked(rpc_errors.optional_int, params, "budget", minimum=1)
        return ls.assistant.context_view(uri, position, ls.encoding, budget)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: SparkeditServer, params: Any = None) -> None:
        ls._stopping = True
        for task in list(ls._background):
            task.cancel()
        await ls.assistant.stop()

    @server.feature(types.EXIT)
    def exit_(ls: SparkeditServer, params: Any = None) -> None:
        ls.assistant.kill_now()

    return server


def _checked(check: Any, *args: Any, **kwargs: Any) -> Any:
    """A custom request's params through an rpc_errors check; -32602 naming the field."""
    try:
        return check(*args, **kwargs)
    except rpc_errors.InvalidParams as exc:
        log.info("invalid params: %s", exc)
        raise JsonRpcInvalidParams(str(exc)) from None


def _configure_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pygls logs every message it sends at INFO; keep stderr readable.
    logging.getLogger("pygls").setLevel(logging.WARNING)


def run_server(args: argparse.Namespace) -> int:
    _configure_logging(getattr(args, "log_level", "INFO"))
    engine = EngineOptions(model=getattr(args, "model", None),
                           target=getattr(args, "target", None) or "wafer-sim",
                           base_url=getattr(args, "base_url", None),
                           backend=getattr(args, "backend", None) or "auto",
                           quant=getattr(args, "quant", None))
    server = build_server(engine)
    try:
        if args.tcp:
            host, _, port = args.tcp.rpartition(":")
            if not port.isdigit():
                raise UsageError(f"--tcp wants HOST:PORT, got {args.tcp!r}")
            server.start_tcp(host or "127.0.0.1", int(port))
        else:
            server.start_io()
    finally:
        # Whatever ended the session (exit, a closed pipe, an exception), no orphan engine.
        server.assistant.kill_now()
    return 0
