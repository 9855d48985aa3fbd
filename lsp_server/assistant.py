"""What the language server does, without the protocol: documents, the engine, status.

`Assistant` is the one object the pygls handlers call. It owns the document store and
the engine process, turns engine failures into "no suggestion" plus a status message,
and remembers the last latencies for `sparkedit/status`. It never imports pygls; the
server passes callbacks for the two things it must say to the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.models import default_model_dir
from engine.rpc import EngineConnectionError, EngineError
from engine.tokenizer import Tokenizer
from lsp_server.completion import (
    CompletionError,
    CompletionOptions,
    Suggestion,
    complete_in_workspace,
    effective_budget,
    fim_order,
)
from lsp_server.context.assemble import ContextOptions, context_json
from lsp_server.documents import (
    Document,
    DocumentStore,
    Encoding,
    Position,
    PositionError,
    TextChange,
)
from lsp_server.engine_process import EngineHandle, EngineOptions, EngineProcess, EngineStartError
from lsp_server.workspace import Workspace, WorkspaceSettings

log = logging.getLogger(__name__)

UNTRAINED_WARNING = ("sparkedit: suggestions come from an untrained model (random weights); "
                     "they are not meaningful code until a trained model is installed.")


@dataclass(frozen=True, kw_only=True)
class AssistantCallbacks:
    status: Callable[[dict[str, Any]], None]  # -> `sparkedit/status` notification
    warn: Callable[[str], None]  # -> window/showMessage (Warning)


def model_name(info: dict[str, Any]) -> str | None:
    """The model's name from `info`, which may give a string or a `{name: ...}` map."""
    model = info.get("model")
    if isinstance(model, dict):
        return model.get("name")
    return model if isinstance(model, str) else None


class Assistant:
    def __init__(self, *, engine: EngineOptions, completion: CompletionOptions,
                 callbacks: AssistantCallbacks) -> None:
        self.documents = DocumentStore()
        self.completion_options = completion
        self._callbacks = callbacks
        self._engine = EngineProcess(engine, on_state=self._on_engine_state)
        self._state = "stopped"
        self._message = "the engine starts with the first request"
        self._last: dict[str, Any] = {}
        self._warned_untrained = False
        self._engine_options = engine
        self.workspace: Workspace | None = None

    # -- workspace and documents

    def start_workspace(self, settings: WorkspaceSettings) -> Workspace:
        """The context engine for `settings.root`, counting with the engine model's tokenizer.

        Documents already open are carried over, so a late root loses nothing."""
        folder = Path(self._engine_options.model) if self._engine_options.model \
            else default_model_dir()
        workspace = Workspace(tokenizer=Tokenizer.from_dir(folder), settings=settings)
        for doc in self.documents.all():
            workspace.opened(doc)
        self.workspace = workspace
        return workspace

    def _workspace(self) -> Workspace:
        return self.workspace or self.start_workspace(WorkspaceSettings())

    def did_open(self, uri: str, text: str, version: int | None, language_id: str) -> None:
        doc = self.documents.open(uri, text, version, language_id)
        self._workspace().opened(doc)

    def did_change(self, uri: str, changes: list[TextChange], version: int | None,
                   encoding: Encoding) -> PositionError | None:
        result = self.documents.change_with_edits(uri, changes, version, encoding)
        if isinstance(result, PositionError):
            return result
        before, after, edits = result
        self._workspace().changed(before, after, edits)
        return None

    def did_close(self, uri: str) -> None:
        self.documents.close(uri)
        if self.workspace is not None:
            self.workspace.closed(uri)

    def did_save(self, uri: str) -> None:
        if self.workspace is not None:
            self.workspace.saved(uri)

    # -- status

    def status(self) -> dict[str, Any]:
        """The `sparkedit/status` payload (camelCase: it goes on the wire as is)."""
        handle = self._engine.current
        return {
            "state": self._state,
            "message": self._message,
            "enginePid": self._engine.pid,
            "model": model_name(handle.info) if handle else None,
            "untrained": bool(handle.info.get("untrained")) if handle else None,
            "lastLatencies": dict(self._last),
        }

    def _on_engine_state(self, state: str, message: str) -> None:
        self._state, self._message = state, message
        self._callbacks.status(self.status())

    # -- completion

    async def inline_completion(self, uri: str, position: Position,
                                encoding: Encoding) -> Suggestion | None:
        """A suggestion at `position` of `uri`, or None (logged) when there is none to give.

        Cancellation (the client's `$/cancelRequest`) propagates as CancelledError; the
        engine client cancels the engine job on its way out.
        """
        doc = self.documents.get(uri)
        if doc is None:
            log.info("inline completion for a document that is not open: %s", uri)
            return None
        offset = doc.offset_at(position, encoding)
        if isinstance(offset, PositionError):
            log.info("inline completion at a bad position in %s: %s", uri, offset.message)
            return None
        if self._engine.died():
            # Answer this keystroke now rather than after a restart of several seconds;
            # the restart runs in the background and the next request uses it.
            self._engine.mark_broken("the engine process exited")
            return None
        handle = await self._engine_handle()
        if handle is None:
            return None
        try:
            suggestion = await self._complete(doc, offset, handle)
        except asyncio.CancelledError:
            # The client cancelled (a newer keystroke): EngineClient.generate has already
            # sent the engine `cancel` for this job; pygls answers -32800.
            log.debug("inline completion for %s cancelled", uri)
            raise
        except EngineConnectionError as exc:
            self._engine.mark_broken(str(exc), generation=handle.generation)
            return None
        except EngineError as exc:
            log.warning("the engine refused the completion: %s", exc)
            return None
        except CompletionError as exc:
            log.warning("no completion: %s", exc)
            return None
        self._last = {k: suggestion.timing.get(k) for k in ("context_ms", "ttft_ms", "total_ms")}
        return suggestion

    def context_view(self, uri: str, position: Position, encoding: Encoding,
                     budget: int | None) -> dict[str, Any] | None:
        """What a completion at `position` would send (`sparkedit context --json`), or None."""
        doc = self.documents.get(uri)
        offset = doc.offset_at(position, encoding) if doc else None
        if doc is None or isinstance(offset, PositionError) or offset is None:
            log.info("no context for %s at %s: %s", uri, position,
                     offset.message if isinstance(offset, PositionError) else "not open")
            return None
        options = self.completion_options
        handle = self._engine.current
        info = handle.info if handle else {}
        try:
            context = self._workspace().context(doc, offset, ContextOptions(
                budget=budget or effective_budget(options, info), heal=options.heal,
                fim_order=fim_order(info).value, prefix_share=options.prefix_share))
        except (ValueError, CompletionError) as exc:
            log.info("no context for %s: %s", uri, exc)
            return None
        return context_json(context)

    async def _complete(self, doc: Document, offset: int, handle: EngineHandle) -> Suggestion:
        return await complete_in_workspace(self._workspace(), doc, offset, engine=handle.client,
                                           info=handle.info, options=self.completion_options)

    async def _engine_handle(self) -> EngineHandle | None:
        try:
            handle = await self._engine.handle()
        except (EngineStartError, EngineConnectionError, EngineError, OSError) as exc:
            log.error("the engine could not start: %s", exc)
            self._on_engine_state("error", f"the engine could not start: {exc}")
            return None
        if handle.info.get("untrained") and not self._warned_untrained:
            self._warned_untrained = True
            self._callbacks.warn(UNTRAINED_WARNING)
        return handle

    async def stop(self) -> None:
        await self._engine.stop()
        self._state, self._message = "stopped", "the engine was stopped"

    def kill_now(self) -> None:
        self._engine.kill_now()

