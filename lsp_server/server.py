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
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server import lsp_types
from lsp_server.assistant import Assistant, AssistantCallbacks
from lsp_server.cli import UsageError
from lsp_server.completion import CompletionOptions
from lsp_server.documents import PositionError
from lsp_server.engine_process import EngineOptions

log = logging.getLogger(__name__)

STATUS = "sparkedit/status"
DOCUMENT_TEXT = "sparkedit/documentText"
VERSION = "0.1.0"


class SparkeditServer(LanguageServer):
    def __init__(self, engine: EngineOptions, completion: CompletionOptions) -> None:
        super().__init__("sparkedit", VERSION,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.assistant = Assistant(engine=engine, completion=completion,
                                   callbacks=AssistantCallbacks(status=self._notify_status,
                                                                warn=self._warn))

    @property
    def encoding(self) -> lsp_types.Encoding:
        return lsp_types.encoding(self.workspace.position_encoding)

    def _notify_status(self, status: dict[str, Any]) -> None:
        self.protocol.notify(STATUS, status)

    def _warn(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning,
                                                         message=message))


def build_server(engine: EngineOptions | None = None,
                 completion: CompletionOptions | None = None) -> SparkeditServer:
    server = SparkeditServer(engine or EngineOptions(), completion or CompletionOptions())

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SparkeditServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.assistant.documents.open(doc.uri, doc.text, doc.version, doc.language_id)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SparkeditServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = params.text_document
        result = ls.assistant.documents.change(
            doc.uri, lsp_types.changes(params.content_changes), doc.version, ls.encoding)
        if isinstance(result, PositionError):
            log.error("didChange not applied to %s (copy kept at the previous version): %s",
                      doc.uri, result.message)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SparkeditServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.assistant.documents.close(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: SparkeditServer, params: types.InlineCompletionParams
    ) -> list[types.InlineCompletionItem]:
        # Async so that $/cancelRequest cancels it; the engine client turns that
        # cancellation into an engine `cancel` and CancelledError propagates to pygls.
        suggestion = await ls.assistant.inline_completion(
            params.text_document.uri, lsp_types.position(params.position), ls.encoding)
        return lsp_types.inline_items(suggestion, params.position)

    @server.feature(STATUS)
    def status(ls: SparkeditServer, params: Any = None) -> dict[str, Any]:
        return ls.assistant.status()

    @server.feature(DOCUMENT_TEXT)
    def document_text(ls: SparkeditServer, params: Any = None) -> dict[str, Any] | None:
        # Validated here, not by pygls: a request pygls cannot deserialise is never
        # answered (see the field notes), so this one takes anything.
        uri = lsp_types.param(params, "uri")
        doc = ls.assistant.documents.get(uri) if isinstance(uri, str) else None
        if doc is None:
            return None
        return {"uri": doc.uri, "version": doc.version, "text": doc.text}

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: SparkeditServer, params: Any = None) -> None:
        await ls.assistant.stop()

    @server.feature(types.EXIT)
    def exit_(ls: SparkeditServer, params: Any = None) -> None:
        ls.assistant.kill_now()

    return server


def _configure_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pygls logs every message it sends at INFO; keep stderr readable.
    logging.getLogger("pygls").setLevel(logging.WARNING)


def run_server(args: argparse.Namespace) -> int:
    _configure_logging(getattr(args, "log_level", "INFO"))
    engine = EngineOptions(model=getattr(args, "model", None),
                           target=getattr(args, "target", None) or "wafer-sim")
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
