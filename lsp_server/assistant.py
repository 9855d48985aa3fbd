"""What the language server does, without the protocol: documents, the engine, status.

`Assistant` is the one object the pygls handlers call. It owns the document store, the
workspace (context engine), the engine process and the ghost-text service; it turns
engine failures into "no suggestion" plus a status message and keeps the feedback
statistics for `sparkedit/status`. It never imports pygls; the server passes callbacks
for the two things it must say to the client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from engine.models import default_model_dir
from engine.rpc import EngineConnectionError, EngineError
from engine.tokenizer import load_tokenizer
from lsp_server.completion import (
    CompletionError,
    CompletionOptions,
    Suggestion,
    complete_in_workspace,
    completion_context,
    context_fits_engine,
    effective_budget,
    fim_order,
)
from lsp_server.context.assemble import Context, ContextOptions, ContextRefused, context_json
from lsp_server.documents import (
    Document,
    DocumentStore,
    Encoding,
    Position,
    PositionError,
    TextChange,
)
from lsp_server.edit_flow import EditSuggestion, predict_edit, why_no_edit
from lsp_server.edit_gates import MESSAGES
from lsp_server.engine_process import EngineHandle, EngineOptions, EngineProcess, EngineStartError
from lsp_server.feedback import Feedback
from lsp_server.inline import InlineAnswer, InlineService
from lsp_server.options import (
    MAX_BUDGET,
    ServerOptions,
    enabled_for,
    nulls_to_startup,
    parse_options,
    restart_needed,
    stats_path,
)
from lsp_server.suggestions import AdaptiveDebounce
from lsp_server.warmup import WarmUp, WarmUpHooks
from lsp_server.workspace import Workspace, WorkspaceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

UNTRAINED_WARNING = ("sparkedit: suggestions come from an untrained model (random weights); "
                     "they are not meaningful code until a trained model is installed.")


TOO_LARGE_TO_EDIT = ("the document is larger than maxFileBytes (edits are checked by parsing "
                     "the whole file; completions still work)")


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


def _checked_model(old: ServerOptions, new: ServerOptions, problems: list[str]) -> ServerOptions:
    """`new`, or `new` with the old model settings when the new local model cannot load: a
    bad model setting never costs the engine that is serving (checked without loading)."""
    if new.target != "wafer-sim" or (old.model, old.backend, old.quant) == \
            (new.model, new.backend, new.quant):
        return new
    from engine.backend_choice import ModelLoadError, ModelSpec, preflight

    path = Path(new.model).expanduser() if new.model else default_model_dir()
    try:
        preflight(ModelSpec(path=path, backend=new.backend, quant=new.quant))
    except (ModelLoadError, ValueError) as exc:
        problems.append(f"the engine keeps serving {old.model or 'the embedded model'}: {exc}")
        return replace(new, model=old.model, backend=old.backend, quant=old.quant)
    return new


class Assistant:
    def __init__(self, *, engine: EngineOptions, completion: CompletionOptions,
                 callbacks: AssistantCallbacks, options: ServerOptions | None = None) -> None:
        self.documents = DocumentStore()
        self.options = options or ServerOptions(model=engine.model, target=engine.target,
                                                base_url=engine.base_url,
                                                backend=engine.backend, quant=engine.quant,
                                                budget=completion.budget,
                                                max_tokens=completion.max_tokens)
        self._startup = self.options  # what a setting cleared to null returns to
        self.completion_options = completion
        self._callbacks = callbacks
        self._engine_options = engine
        self._engine = EngineProcess(engine, on_state=self._on_engine_state)
        self._state = "stopped"
        self._message = "the engine starts with the first request"
        self._last: dict[str, Any] = {}
        self._last_stats: dict[str, Any] = {}
        self._warned_untrained = False
        self._target_problem: str | None = None  # the kind of target failure said last
        self._start_problem: str | None = None  # why the engine could not start, said last
        self.workspace: Workspace | None = None
        self.inline = InlineService(
            complete=self._complete_or_none, feedback=Feedback(stats_path(self.options)),
            debounce=AdaptiveDebounce(self.options.debounce_min_ms, self.options.debounce_max_ms),
            workspace=self._workspace)
        self.warmup = WarmUp(WarmUpHooks(
            engine=self._engine_handle, document=self.documents.get,
            context=self._warm_context, budgets=self._budgets,
            enabled=lambda: self.options.warm_up and not self.remote,
            changed=lambda: self._callbacks.status(self.status())))

    # -- configuration

    def configure(self, raw: Any) -> tuple[list[str], bool]:
        """Apply `initializationOptions` or `didChangeConfiguration` settings.

        Returns (problems to show the user, whether the workspace must be re-indexed).
        Target or model changes restart the engine with the next request."""
        new, problems = parse_options(raw, self.options)
        new = nulls_to_startup(raw, new, self._startup)
        new = _checked_model(self.options, new, problems)
        old, self.options = self.options, new
        self.completion_options = replace(self.completion_options, budget=new.budget,
                                          max_tokens=new.max_tokens)
        self.inline.debounce = AdaptiveDebounce(new.debounce_min_ms, new.debounce_max_ms)
        self.inline.feedback.stats_path = stats_path(new)
        restart = restart_needed(old, new)
        if restart:
            self._engine_options = replace(self._engine_options, model=new.model,
                                           target=new.target, base_url=new.base_url,
                                           backend=new.backend, quant=new.quant)
            old_engine = self._engine
            self._engine = EngineProcess(self._engine_options, on_state=self._on_engine_state)
            old_engine.kill_now()
            self._state, self._message = "stopped", "the engine restarts with the new settings"
        reindex = (old.exclude, old.max_file_bytes, old.model, old.target) != \
            (new.exclude, new.max_file_bytes, new.model, new.target)
        if reindex and self.workspace is not None:
            try:
                self.start_workspace(replace(self.workspace.settings, exclude=new.exclude,
                                             max_file_bytes=new.max_file_bytes))
            except (OSError, ValueError) as exc:  # e.g. a model folder without a tokenizer
                problems.append(f"the workspace context keeps its settings: {exc}")
                reindex = False
        warm = (old.budget, old.max_tokens, old.warm_budget, old.warm_up)
        if restart or reindex or warm != (new.budget, new.max_tokens, new.warm_budget,
                                          new.warm_up):
            self.warmup.settings_changed()
        return problems, reindex

    # -- workspace and documents

    def start_workspace(self, settings: WorkspaceSettings) -> Workspace:
        """The context engine for `settings.root`, counting with the engine model's tokenizer.

        Documents already open and the edit history are carried over, so a late root or
        new exclusions lose nothing."""
        # A remote target's `model` is a remote id: it counts with the embedded tokenizer,
        # as the remote target itself does.
        local = self._engine_options.target == "wafer-sim" and self._engine_options.model
        folder = Path(self._engine_options.model) if local else default_model_dir()
        try:
            tokenizer = load_tokenizer(folder)
        except (OSError, ValueError) as exc:
            # A missing or broken model folder: documents are still tracked (counted with
            # the embedded tokenizer); the engine's start fails and says so once.
            log.error("cannot load the model's tokenizer from %s: %s", folder, exc)
            tokenizer = load_tokenizer(default_model_dir())
        previous = self.workspace
        workspace = Workspace(tokenizer=tokenizer, settings=settings,
                              history=previous.history if previous else None)
        for doc in self.documents.all():
            workspace.opened(doc)
        self.workspace = workspace
        return workspace

    def _workspace(self) -> Workspace:
        return self.workspace or self.start_workspace(WorkspaceSettings())

    def did_open(self, uri: str, text: str, version: int | None, language_id: str) -> None:
        doc = self.documents.open(uri, text, version, language_id)
        self._workspace().opened(doc)
        if self._enabled(doc):
            self.warmup.opened(uri)

    def did_focus(self, uri: str, position: Position | None, encoding: Encoding) -> None:
        """The editor shows `uri` (the cursor at `position` when it said): warm it up."""
        doc = self.documents.get(uri)
        if doc is not None and not self._enabled(doc):
            return
        offset = doc.offset_at(position, encoding, clamp=True) \
            if doc is not None and position is not None else None
        self.warmup.focused(uri, offset if isinstance(offset, int) else None)

    def did_change(self, uri: str, changes: list[TextChange], version: int | None,
                   encoding: Encoding) -> PositionError | None:
        self.inline.keystroke(uri)
        result = self.documents.change_with_edits(uri, changes, version, encoding)
        if isinstance(result, PositionError):
            return result
        before, after, edits = result
        self._workspace().changed(before, after, edits)
        return None

    def did_close(self, uri: str) -> None:
        self.inline.forget(uri)
        self.warmup.forget(uri)
        self.documents.close(uri)
        if self.workspace is not None:
            self.workspace.closed(uri)

    def did_save(self, uri: str) -> None:
        if self.workspace is not None:
            self.workspace.saved(uri)
            self.warmup.context_changed()

    def files_changed(self, changes: list[tuple[str, bool]]) -> None:
        """Watched-file events: (uri, deleted)."""
        if self.workspace is not None:
            self.workspace.files_changed(changes)
            self.warmup.context_changed()

    def _enabled(self, doc: Document) -> bool:
        spec = self._workspace().registry.for_document(doc.uri, doc.language_id)
        return enabled_for(self.options, doc.language_id, spec.name if spec else None)

    def document_at(self, uri: str, position: Position, encoding: Encoding,
                    what: str) -> tuple[Document, int] | None:
        """The open document and the offset of `position`, or None (logged)."""
        doc = self.documents.get(uri)
        if doc is None:
            log.info("%s for a document that is not open: %s", what, uri)
            return None
        offset = doc.offset_at(position, encoding)
        if isinstance(offset, PositionError):
            log.info("%s at a bad position in %s: %s", what, uri, offset.message)
            return None
        return doc, offset

    @property
    def remote(self) -> bool:
        """Whether prompts leave the machine: redact secrets, refuse excluded files."""
        return self.options.target != "wafer-sim"

    # -- status

    def status(self) -> dict[str, Any]:
        """The `sparkedit/status` payload (camelCase: it goes on the wire as is)."""
        handle = self._engine.current
        workspace = self.workspace
        return {
            "state": self._state,
            "message": self._message,
            "enginePid": self._engine.pid,
            "model": model_name(handle.info) if handle else None,
            "untrained": bool(handle.info.get("untrained")) if handle else None,
            "target": self.options.target,
            "lastLatencies": dict(self._last),
            "lastStats": dict(self._last_stats),
            "stats": self.inline.summary(),
            "statsFile": {"path": str(self.inline.feedback.stats_path or "") or None,
                          "problem": self.inline.feedback.save_problem},
            "indexReady": bool(workspace and workspace.index_ready),
            "focus": self.warmup.state.active,
            "warm": self.warmup.snapshot(),
        }

    def _on_engine_state(self, state: str, message: str) -> None:
        self._state, self._message = state, message
        self._callbacks.status(self.status())

    # -- the engine, with every failure turned into "no answer"

    async def _with_engine(self, what: str,
                           job: Callable[[EngineHandle], Awaitable[T]]) -> T | None:
        """Run `job` on a healthy engine; None (logged, status sent) when it cannot.
        Cancellation propagates: the engine client cancels the engine job on its way out."""
        if self._engine.died():
            # Answer this keystroke now rather than after a restart of several seconds;
            # the restart runs in the background and the next request uses it.
            self._engine.mark_broken("the engine process exited")
            return None
        handle = await self._engine_handle()
        if handle is None:
            return None
        try:
            answer = await job(handle)
        except EngineConnectionError as exc:
            self._engine.mark_broken(str(exc), generation=handle.generation)
        except EngineError as exc:
            if exc.code == "target":
                self._target_failed(what, exc.message)
            else:
                log.warning("the engine refused the %s: %s", what, exc)
        except CompletionError as exc:
            log.warning("no %s: %s", what, exc)
        else:
            if self._target_problem is not None:
                self._target_problem = None
                self._on_engine_state("ready", "the target answers again")
            return answer
        return None

    def _target_failed(self, what: str, message: str) -> None:
        """An expected failure of the target (a refused key, retries spent, an unreachable
        server, an unknown model, a prompt over its context): one line in the status and,
        once per kind until the target answers again, in a message to the user."""
        kind, _, line = message.partition(": ")
        if not line or not kind.endswith("Error"):
            kind, line = "", message
        log.info("no %s: %s", what, line)
        if self._target_problem != kind:
            self._target_problem = kind
            self._on_engine_state("error", line)
            self._callbacks.warn(f"sparkedit: {line}")

    async def _engine_handle(self) -> EngineHandle | None:
        try:
            handle = await self._engine.handle()
        except (EngineStartError, EngineConnectionError, EngineError, OSError) as exc:
            problem = f"the engine could not start: {exc}"
            log.error("%s", problem)
            self._on_engine_state("error", problem)
            if self._start_problem != problem:  # said once, not on every keystroke
                self._start_problem = problem
                self._callbacks.warn(f"sparkedit: {problem}")
            return None
        if handle.info.get("untrained") and not self._warned_untrained:
            self._warned_untrained = True
            self._callbacks.warn(UNTRAINED_WARNING)
        return handle

    # -- ghost text

    async def inline_completion(self, uri: str, position: Position,
                                encoding: Encoding) -> InlineAnswer | None:
        """Ghost text at `position` of `uri`, or None (logged) when there is none to give.
        CancelledError when the client cancels or a newer keystroke supersedes it."""
        found = self.document_at(uri, position, encoding, "inline completion")
        if found is None or not self._enabled(found[0]):
            return None
        self.warmup.requested(uri, found[1])
        return await self.inline.answer(*found)

    async def _complete_or_none(self, doc: Document, offset: int) -> Suggestion | None:
        async def job(handle: EngineHandle) -> Suggestion:
            # The small budget until the full one is warm: never a cold full-size prefill.
            options = replace(self.completion_options,
                              budget=self.warmup.budget(doc.uri, handle))
            return await complete_in_workspace(self._workspace(), doc, offset,
                                               engine=handle.client, info=handle.info,
                                               options=options, remote=self.remote)

        suggestion = await self._with_engine("completion", job)
        if suggestion is not None:
            self._last = {k: suggestion.timing.get(k)
                          for k in ("context_ms", "ttft_ms", "total_ms")}
            self._last_stats = {k: suggestion.stats.get(k)
                                for k in ("prompt_tokens", "cached_prompt_tokens")}
        return suggestion

    # -- warm-up (warmup.py)

    def _budgets(self, info: dict[str, Any]) -> tuple[int, int]:
        full = effective_budget(self.completion_options, info)
        return min(self.options.warm_budget, full), full

    def _warm_context(self, doc: Document, offset: int, budget: int,
                      info: dict[str, Any]) -> Context:
        workspace = self._workspace()
        if not context_fits_engine(workspace, info):
            raise CompletionError("the engine's model has other special tokens than the "
                                  "context tokenizer")
        return completion_context(workspace, doc, offset, info=info, remote=self.remote,
                                  options=replace(self.completion_options, budget=budget))

    # -- edits

    async def next_edit(self, uri: str, version: int | None, position: Position,
                        encoding: Encoding) -> tuple[Document, EditSuggestion] | None:
        """The predicted next change near the cursor, for the document version asked."""
        found = self.document_at(uri, position, encoding, "next edit")
        if found is None or not self.options.next_edit or not self._enabled(found[0]):
            return None
        doc, offset = found
        if version is not None and doc.version is not None and version != doc.version:
            log.info("next edit for version %s of %s, which is at %s: stale", version, uri,
                     doc.version)
            return None
        if self._workspace().too_large(doc.text):
            log.info("no next edit in %s: %s", uri, TOO_LARGE_TO_EDIT)
            return None
        return await self._edit(doc, offset, None, None)

    async def edit_selection(self, uri: str, start: Position, end: Position, instruction: str,
                             encoding: Encoding) -> tuple[Document, EditSuggestion] | str:
        """The instruction edit of the selection, or a sentence for the user saying why
        there is nothing to apply (the server shows it: "no change" is never silent)."""
        found = self.document_at(uri, start, encoding, "edit selection")
        found_end = self.document_at(uri, end, encoding, "edit selection")
        if found is None or found_end is None:
            return "no edit: the document is not open or the range is outside it"
        if found_end[1] < found[1]:
            return "no edit: the range ends before it starts"
        doc, offset = found
        if self._workspace().too_large(doc.text):
            return f"no edit: {TOO_LARGE_TO_EDIT}"
        answer = await self._edit(doc, offset, instruction, (offset, found_end[1]))
        if answer is None:
            return "no edit: the engine could not run it (see the server's log)"
        why = why_no_edit(answer[1])
        if why is not None:
            return why if why != "no change proposed" else f"{why} for the selection"
        return answer

    async def _edit(self, doc: Document, offset: int, instruction: str | None,
                    selection: tuple[int, int] | None) -> tuple[Document, EditSuggestion] | None:
        started = time.monotonic()

        async def job(handle: EngineHandle) -> EditSuggestion:
            return await predict_edit(self._workspace(), doc, offset, engine=handle.client,
                                      info=handle.info,
                                      budget=effective_budget(self.completion_options,
                                                              handle.info),
                                      instruction=instruction, selection=selection,
                                      remote=self.remote)

        edit = await self._with_engine("edit", job)
        if edit is None:
            return None
        if edit.suppressed:
            log.info("%s for %s not shown: %s", "edit" if instruction else "next edit",
                     doc.uri, MESSAGES[edit.suppressed])
            self.inline.feedback.suppressed(edit.suppressed)
        self.inline.feedback.request(
            answered_from_cache=False, cancelled=False,
            latency_ms=(time.monotonic() - started) * 1000,
            prompt_tokens=edit.stats.get("prompt_tokens"),
            cached_prompt_tokens=edit.stats.get("cached_prompt_tokens"))
        return doc, edit

    # -- what the model sees

    def context_view(self, uri: str, position: Position, encoding: Encoding,
                     budget: int | None) -> dict[str, Any] | None:
        """What a completion at `position` would send (`sparkedit context --json`), or None."""
        found = self.document_at(uri, position, encoding, "context")
        if found is None:
            return None
        doc, offset = found
        options = self.completion_options
        handle = self._engine.current
        info = handle.info if handle else {}
        # what a completion would send: within the model's window, when the engine is up
        budget = effective_budget(replace(options, budget=min(budget or options.budget,
                                                              MAX_BUDGET)), info)
        try:
            context = self._workspace().context(doc, offset, ContextOptions(
                budget=budget, heal=options.heal,
                fim_order=fim_order(info).value, prefix_share=options.prefix_share,
                remote=self.remote))
        except (ValueError, CompletionError, ContextRefused) as exc:
            log.info("no context for %s: %s", uri, exc)
            return None
        return context_json(context)

    # -- shutdown

    def save_stats(self) -> None:
        """Save the statistics file; a folder that cannot be written is said once."""
        problem = self.inline.feedback.save(time.time())
        if problem is not None:
            self._callbacks.warn(f"sparkedit: {problem}")

    async def stop(self) -> None:
        self.save_stats()
        await self.warmup.stop()
        await self._engine.stop()
        self._state, self._message = "stopped", "the engine was stopped"

    def kill_now(self) -> None:
        self._engine.kill_now()

