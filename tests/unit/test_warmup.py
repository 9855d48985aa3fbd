"""warmup.py: the background prefills, driven against a fake engine that records them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lsp_server import warmup
from lsp_server.completion import CompletionError
from lsp_server.context.assemble import Context
from lsp_server.context.layout import Segment
from lsp_server.documents import Document
from lsp_server.engine_process import EngineHandle
from lsp_server.warmup import WarmUp, WarmUpHooks

A, B = "file:///a.py", "file:///b.py"
SMALL, FULL = 256, 960


class FakeEngine:
    """`prefill` answers complete at once, or waits for `release` when `hold` is set."""

    def __init__(self) -> None:
        self.prefills: list[dict[str, Any]] = []
        self.cancelled: list[dict[str, Any]] = []
        self.hold = False
        self.release = asyncio.Event()
        self.answer: dict[str, Any] = {"complete": True}

    async def prefill(self, params: dict[str, Any]) -> dict[str, Any]:
        self.prefills.append(params)
        try:
            if self.hold:
                await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(params)
            raise
        return dict(self.answer)


def context(budget: int, head: int = 7) -> Context:
    """A prompt of `budget` tokens: a stable part of `head` repeated, then the file."""
    stable = [head] * (budget - 40)
    current = [1] * 37
    return Context(segments=(Segment("repository", "r.py", "", tuple(stable)),
                             Segment("current_prefix", None, "", tuple(current))),
                   tokens=tuple(stable + current + [2, 3, 4]), total_tokens=budget,
                   budget=budget, build_ms=0.0, heal="", redactions=0)


class Harness:
    def __init__(self, engine: FakeEngine, enabled: bool = True) -> None:
        self.engine = engine
        self.handle = EngineHandle(client=engine, info={"context_limit": 1024}, pid=1,  # type: ignore[arg-type]
                                   generation=1)
        self.docs = {uri: Document(uri=uri, text="x = 1\n" * 50, version=1)
                     for uri in (A, B)}
        self.head = 7
        self.built: list[tuple[str, int, int]] = []
        self.changes = 0
        self.on = enabled

        async def engine_handle() -> EngineHandle:
            return self.handle

        def build(doc: Document, offset: int, budget: int, info: dict[str, Any]) -> Context:
            self.built.append((doc.uri, offset, budget))
            return context(budget, self.head)

        def changed() -> None:
            self.changes += 1

        self.warm = WarmUp(WarmUpHooks(engine=engine_handle, document=self.docs.get,
                                       context=build, budgets=lambda info: (SMALL, FULL),
                                       enabled=lambda: self.on, changed=changed))

    async def settle(self) -> None:
        task = self.warm._task
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), 5)

    def budgets(self) -> list[int]:
        return [len(p["tokens"]) for p in self.engine.prefills]


@pytest.fixture(autouse=True)
def no_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warmup, "FOCUS_DELAY_S", 0.0)
    monkeypatch.setattr(warmup, "CONTEXT_DELAY_S", 0.0)


async def test_focus_prefills_small_then_full_and_completions_follow() -> None:
    h = Harness(FakeEngine())
    assert h.warm.budget(A, h.handle) == SMALL
    h.warm.focused(A, 42)
    await h.settle()
    assert h.budgets() == [SMALL, FULL]
    assert all(p["document"] == A for p in h.engine.prefills)
    assert {offset for _, offset, _ in h.built} == {42}  # at the focused cursor
    assert h.warm.budget(A, h.handle) == FULL
    assert h.warm.snapshot() == [{"uri": A, "budget": FULL, "complete": True, "warming": None}]
    assert h.changes >= 4  # each stage's start and end reach the status


async def test_a_request_never_waits_for_the_warm_up() -> None:
    engine = FakeEngine()
    engine.hold = True
    h = Harness(engine)
    h.warm.focused(A, None)
    await asyncio.sleep(0.01)
    assert h.budgets() == [SMALL] and h.warm.snapshot()[0]["warming"] == SMALL
    # the request path: a plain call, answered while the prefill still runs
    h.warm.requested(A, 10)
    assert h.warm.budget(A, h.handle) == SMALL
    engine.release.set()
    await h.settle()
    assert h.warm.budget(A, h.handle) == FULL


async def test_another_document_replaces_the_warm_up() -> None:
    engine = FakeEngine()
    engine.hold = True
    h = Harness(engine)
    h.warm.focused(A, None)
    await asyncio.sleep(0.01)
    h.warm.focused(B, None)
    await asyncio.sleep(0.01)
    assert [p["document"] for p in engine.cancelled] == [A]  # its engine job is cancelled
    engine.release.set()
    await h.settle()
    assert [p["document"] for p in engine.prefills] == [A, B, B]
    assert h.warm.state.active == B and h.warm.budget(B, h.handle) == FULL
    assert h.warm.snapshot()[0] == {"uri": A, "budget": SMALL, "complete": False,
                                    "warming": None}


async def test_opened_documents_are_warmed_until_the_client_says_what_has_focus() -> None:
    h = Harness(FakeEngine())
    h.warm.opened(A)
    await h.settle()
    assert h.warm.state.active == A
    h.warm.focused(A, None)
    await h.settle()
    h.warm.opened(B)  # opened in the background: the focused document stays warm
    await h.settle()
    assert h.warm.state.active == A


async def test_a_prefill_that_did_not_complete_ends_the_warm_up() -> None:
    engine = FakeEngine()
    engine.answer = {"finish_reason": "cancelled"}  # replaced before it ran: no `complete`
    h = Harness(engine)
    h.warm.focused(A, None)
    await h.settle()
    assert h.budgets() == [SMALL] and h.warm.budget(A, h.handle) == SMALL


async def test_the_stable_context_decides_what_is_prefilled_again() -> None:
    h = Harness(FakeEngine())
    h.warm.focused(A, None)
    await h.settle()
    h.warm.context_changed()  # nothing changed: the full prompt is only confirmed
    await h.settle()
    assert h.budgets() == [SMALL, FULL, FULL] and h.warm.budget(A, h.handle) == FULL
    h.head = 8  # the repository segment changed
    h.engine.hold = True
    h.warm.context_changed()
    await asyncio.sleep(0.01)
    assert h.warm.budget(A, h.handle) == SMALL  # while the new prompt warms up
    h.engine.release.set()
    await h.settle()
    assert h.budgets()[3:] == [SMALL, FULL] and h.warm.budget(A, h.handle) == FULL


async def test_a_new_engine_is_warmed_again() -> None:
    h = Harness(FakeEngine())
    h.warm.focused(A, None)
    await h.settle()
    h.handle = EngineHandle(client=h.engine, info=h.handle.info, pid=2,  # type: ignore[arg-type]
                            generation=2)
    assert h.warm.budget(A, h.handle) == SMALL  # its cache is empty
    await h.settle()
    assert h.budgets() == [SMALL, FULL, SMALL, FULL] and h.warm.budget(A, h.handle) == FULL


async def test_off_or_remote_means_no_prefill_and_the_full_budget() -> None:
    h = Harness(FakeEngine(), enabled=False)
    h.warm.focused(A, None)
    h.warm.opened(B)
    await asyncio.sleep(0.01)
    assert h.engine.prefills == [] and h.warm.budget(A, h.handle) == FULL
    assert h.warm.snapshot() == []


async def test_a_prompt_that_cannot_be_built_is_logged_not_raised() -> None:
    h = Harness(FakeEngine())

    def refuse(*args: Any) -> Context:
        raise CompletionError("excluded")

    h.warm._hooks = WarmUpHooks(**{**h.warm._hooks.__dict__, "context": refuse})
    h.warm.focused(A, None)
    await h.settle()
    assert h.engine.prefills == [] and h.warm.budget(A, h.handle) == SMALL


async def test_closing_the_document_stops_its_warm_up() -> None:
    engine = FakeEngine()
    engine.hold = True
    h = Harness(engine)
    h.warm.focused(A, None)
    await asyncio.sleep(0.01)
    h.warm.forget(A)
    await asyncio.sleep(0.01)
    assert engine.cancelled and h.warm.state.active is None and h.warm.snapshot() == []
    await h.warm.stop()
