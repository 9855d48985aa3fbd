"""Warm-up: prefill the active document's completion prompt in the engine ahead of typing.

When a document is opened or focused (`sparkedit/didFocus`), or the stable part of its
context changes (the workspace index finished, a save, a watched file), the server builds
the completion prompt at the document's known cursor and sends it to the engine's
`prefill` RPC: first at the small warm budget, then at the full budget. The engine runs a
prefill only while no request waits, so a keystroke never waits for one; nothing on the
request path awaits a warm-up either. `WarmState` (warm_state.py) keeps what is warm and
picks the budget each completion asks with.

One warm-up runs at a time, for the active document; a newer trigger replaces it (the
engine keeps what the replaced one had computed in its prefix cache). Local targets only:
a remote target's cache is the remote's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine.rpc import EngineConnectionError, EngineError
from lsp_server.completion import CompletionError
from lsp_server.context.assemble import Context
from lsp_server.context.layout import FIM_MARKERS
from lsp_server.documents import Document
from lsp_server.engine_process import EngineHandle
from lsp_server.warm_state import WarmState, stable_head

log = logging.getLogger(__name__)

FOCUS_DELAY_S = 0.1  # coalesces didOpen + didFocus, and tabbing through several files
CONTEXT_DELAY_S = 1.0  # the index and watched files change in bursts


@dataclass(frozen=True, kw_only=True)
class WarmUpHooks:
    """What the warm-up needs from the server, without knowing the server."""

    engine: Callable[[], Awaitable[EngineHandle | None]]  # a started engine, or None
    document: Callable[[str], Document | None]
    # (document, cursor offset, budget, engine info) -> the completion prompt; raises
    # CompletionError when there is none (no context, other tokenizer, excluded file)
    context: Callable[[Document, int, int, dict[str, Any]], Context]
    budgets: Callable[[dict[str, Any]], tuple[int, int]]  # engine info -> (small, full)
    enabled: Callable[[], bool]  # warm-up on, and the target local
    changed: Callable[[], None] = lambda: None  # the warm state changed (for the status)


class WarmUp:
    def __init__(self, hooks: WarmUpHooks) -> None:
        self._hooks = hooks
        self.state = WarmState()
        self._task: asyncio.Task[None] | None = None
        self._generation: int | None = None  # the engine whose cache the state describes
        self._info: dict[str, Any] = {}
        self._focus_known = False  # the client sends didFocus: didOpen alone does not focus

    # -- triggers

    def opened(self, uri: str) -> None:
        if not self._focus_known or self.state.active in (None, uri):
            self._warm(uri, FOCUS_DELAY_S)

    def focused(self, uri: str, offset: int | None) -> None:
        self._focus_known = True
        self.state.focused(uri, offset)
        self._warm(uri, FOCUS_DELAY_S)

    def requested(self, uri: str, offset: int) -> None:
        """A completion was asked for (the request path: never waits)."""
        self.state.requested(uri, offset)
        if uri != self.state.active:
            self._warm(uri, FOCUS_DELAY_S)

    def context_changed(self) -> None:
        """The stable part of the context may have changed (index, save, watched files)."""
        if self.state.active is not None:
            self._warm(self.state.active, CONTEXT_DELAY_S)

    def settings_changed(self) -> None:
        """Budgets, target or model changed: nothing is warm any more."""
        self.state.reset()
        self._generation = None
        if self._task is not None:
            self._task.cancel()
        if self.state.active is not None:
            self._warm(self.state.active, FOCUS_DELAY_S)

    def forget(self, uri: str) -> None:
        if self.state.active == uri and self._task is not None:
            self._task.cancel()
        self.state.forget(uri)

    # -- the request path

    def budget(self, uri: str, handle: EngineHandle) -> int:
        """The budget a completion for `uri` asks with on this engine now."""
        small, full = self._hooks.budgets(handle.info)
        self._info = handle.info
        if not self._hooks.enabled():
            return full
        if self._generation is not None and handle.generation != self._generation:
            # A new engine: its prefix cache is empty. Warm the active document again.
            self._new_engine(handle)
            if self.state.active is not None:
                self._warm(self.state.active, FOCUS_DELAY_S)
        return self.state.budget(uri, small=small, full=full)

    def snapshot(self) -> list[dict[str, Any]]:
        """`sparkedit/status`'s `warm` (budgets in tokens; empty before an engine answered)."""
        if not self._info or not self._hooks.enabled():
            return []
        small, full = self._hooks.budgets(self._info)
        return self.state.snapshot(small=small, full=full)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the warm-up itself

    def _warm(self, uri: str, delay_s: float) -> None:
        if not self._hooks.enabled():
            return
        self.state.activate(uri)
        if self._task is not None and not self._task.done():
            self._task.cancel()  # its engine job too; what it computed stays cached
        self._task = asyncio.ensure_future(self._run(uri, delay_s))

    def _new_engine(self, handle: EngineHandle) -> None:
        if handle.generation != self._generation:
            self.state.reset()
            self._generation = handle.generation
        self._info = handle.info

    async def _run(self, uri: str, delay_s: float) -> None:
        try:
            await asyncio.sleep(delay_s)
            handle = await self._hooks.engine()
            if handle is None:
                return
            self._new_engine(handle)
            await self._stages(uri, handle)
        except asyncio.CancelledError:
            raise
        except (EngineConnectionError, EngineError, CompletionError, OSError) as exc:
            log.info("warm-up of %s stopped: %s", uri, exc)
        finally:
            if self.state.stopped(uri):
                self._hooks.changed()

    async def _stages(self, uri: str, handle: EngineHandle) -> None:
        small, full = self._hooks.budgets(handle.info)
        first = self._context(uri, full, handle.info)
        if first is None:
            return
        self.state.refresh(uri, _head(first))
        # A full prompt still warm is only confirmed (the engine finds it cached).
        budgets = [full] if small >= full or self.state.use_full(uri) else [small, full]
        for stage, budget in enumerate(budgets):
            # Built again after an await: the document may have changed meanwhile.
            context = first if stage == 0 and budget == full else \
                self._context(uri, budget, handle.info)
            if context is None:
                return
            self.state.begin(uri, budget)
            self._hooks.changed()
            answer = await handle.client.prefill({"tokens": list(context.tokens),
                                                  "document": uri})
            complete = answer.get("complete") is True  # absent when replaced before it ran
            self.state.done(uri, budget, complete=complete, full=budget == full,
                            head=_head(context))
            self._hooks.changed()
            log.info("warm-up of %s at %d tokens: %s (%s cached, %s prefilled, %.0f ms)",
                     uri, budget, "complete" if complete else "stopped",
                     answer.get("cached_tokens"), answer.get("prefilled_tokens"),
                     answer.get("total_ms") or 0.0)
            if not complete:
                return

    def _context(self, uri: str, budget: int, info: dict[str, Any]) -> Context | None:
        doc = self._hooks.document(uri)
        if doc is None:
            return None
        return self._hooks.context(doc, self.state.cursor(uri, doc.text), budget, info)


def _head(context: Context) -> tuple[int, ...]:
    current = sum(len(s.tokens) for s in context.segments if s.kind.startswith("current_"))
    return stable_head(context.tokens, current + FIM_MARKERS)
