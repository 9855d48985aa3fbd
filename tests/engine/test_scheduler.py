"""The FIFO scheduler with a stand-in target whose 'forward pass' is a short sleep."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.request import ContextOverflowError
from engine.rpc import EngineError
from engine.scheduler import Scheduler, result_to_wire
from engine.targets.base import TargetError

PASS_S = 0.01


@dataclass
class FakeResult:
    text: str
    tokens: list[int]
    finish_reason: str
    stats: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeTarget:
    name: str = "fake"
    started: list[str] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)

    def info(self) -> dict[str, Any]:
        return {}

    def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]:
        return {"tokens": [ord(c) for c in text]}

    def generate(self, params: dict, on_text=None, should_stop=None) -> FakeResult:
        self.started.append(params["name"])
        self.threads.add(threading.get_ident())
        if params.get("overflow"):
            raise ContextOverflowError("prompt of 99 tokens + 10 > 100")
        if params.get("refused"):
            raise TargetError("the key was refused")
        if params.get("crash"):
            raise RuntimeError("bug")
        out: list[int] = []
        for i in range(params["n"]):
            if should_stop is not None and should_stop():
                return FakeResult("x" * len(out), out, "cancelled")
            time.sleep(PASS_S)
            out.append(i)
            if on_text is not None:
                on_text("x", [i])
        return FakeResult("x" * len(out), out, "length", timing={"total_ms": 1.0})


@pytest.fixture
async def sched() -> AsyncIterator[tuple[Scheduler, FakeTarget]]:
    target = FakeTarget()
    scheduler = Scheduler(target, asyncio.get_running_loop())
    scheduler.start()
    yield scheduler, target
    scheduler.stop()
    await asyncio.get_running_loop().run_in_executor(None, scheduler.join)


async def test_jobs_run_in_order_on_one_thread_and_queue_time_is_measured(sched) -> None:
    scheduler, target = sched
    jobs = [scheduler.submit(("c", i), {"name": f"j{i}", "n": 5}, None) for i in range(3)]
    results = [await job.future for job in jobs]
    assert target.started == ["j0", "j1", "j2"]
    assert len(target.threads) == 1 and threading.get_ident() not in target.threads
    assert [r["tokens"] for r in results] == [[0, 1, 2, 3, 4]] * 3
    assert results[2]["timing"]["queue_ms"] >= 2 * 5 * PASS_S * 1000 * 0.8
    assert results[0]["timing"]["simulated"] is None


async def test_cancel_a_queued_job_answers_at_once(sched) -> None:
    scheduler, target = sched
    first = scheduler.submit(("c", 1), {"name": "long", "n": 50}, None)
    queued = scheduler.submit(("c", 2), {"name": "queued", "n": 5}, None)
    assert scheduler.cancel(queued)
    result = await asyncio.wait_for(queued.future, 0.1)
    assert result["finish_reason"] == "cancelled" and result["tokens"] == []
    assert scheduler.cancel(first)
    assert (await first.future)["finish_reason"] == "cancelled"
    assert "queued" not in target.started
    assert not scheduler.cancel(first)  # finished: nothing left to cancel


async def test_cancel_a_running_job_stops_within_a_pass(sched) -> None:
    scheduler, _ = sched
    tokens: list[int] = []
    job = scheduler.submit(("c", 1), {"name": "long", "n": 1000},
                           lambda text, ids: tokens.extend(ids))
    while not tokens:
        await asyncio.sleep(0.005)
    started = time.perf_counter()
    assert scheduler.find(("c", 1)) is job and scheduler.running
    assert scheduler.cancel(job)
    result = await job.future
    assert time.perf_counter() - started < 0.5
    assert result["finish_reason"] == "cancelled" and 0 < len(result["tokens"]) < 1000


async def test_cancel_owner_cancels_only_that_clients_jobs(sched) -> None:
    scheduler, _ = sched
    mine = [scheduler.submit(("gone", i), {"name": f"g{i}", "n": 100}, None) for i in range(3)]
    other = scheduler.submit(("stays", 1), {"name": "s", "n": 2}, None)
    await asyncio.sleep(0.03)
    assert scheduler.cancel_owner("gone") == 3
    for job in mine:
        assert (await job.future)["finish_reason"] == "cancelled"
    assert (await other.future)["finish_reason"] == "length"


async def test_failures_become_engine_errors_and_the_worker_survives(sched) -> None:
    scheduler, _ = sched
    with pytest.raises(EngineError) as err:
        await scheduler.submit(("c", 1), {"name": "o", "overflow": True}, None).future
    assert err.value.code == "context_overflow"
    with pytest.raises(EngineError) as err:
        await scheduler.submit(("c", 2), {"name": "b", "crash": True}, None).future
    assert err.value.code == "internal"
    with pytest.raises(EngineError) as err:
        await scheduler.submit(("c", 4), {"name": "r", "refused": True}, None).future
    assert err.value.code == "target" and "refused" in err.value.message
    assert (await scheduler.submit(("c", 3), {"name": "ok", "n": 1}, None).future)["tokens"] == [0]


async def test_a_request_id_cannot_be_reused_while_its_job_lives(sched) -> None:
    scheduler, _ = sched
    job = scheduler.submit(("c", 1), {"name": "a", "n": 20}, None)
    with pytest.raises(EngineError):
        scheduler.submit(("c", 1), {"name": "b", "n": 1}, None)
    scheduler.cancel(job)
    await job.future


def test_results_become_plain_wire_values() -> None:
    np = pytest.importorskip("numpy")
    wire = result_to_wire(FakeResult("a", list(np.array([1, 2], dtype=np.int64)), "eos",
                                     {"output_tokens": np.int64(2)}))
    assert wire == {"text": "a", "tokens": [1, 2], "finish_reason": "eos",
                    "stats": {"output_tokens": 2}, "timing": {"simulated": None}}
    assert all(type(t) is int for t in wire["tokens"])


async def test_stop_answers_queued_jobs_and_ends_the_running_one() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(FakeTarget(), loop)
    scheduler.start()
    running = scheduler.submit(("c", 1), {"name": "r", "n": 1000}, None)
    queued = scheduler.submit(("c", 2), {"name": "q", "n": 1}, None)
    await asyncio.sleep(0.03)
    scheduler.stop()
    assert (await queued.future)["finish_reason"] == "cancelled"
    await loop.run_in_executor(None, scheduler.join, 2.0)
    assert (await running.future)["finish_reason"] == "cancelled"
    with pytest.raises(EngineError):
        scheduler.submit(("c", 3), {"name": "late", "n": 1}, None)


async def test_a_newer_job_for_the_same_document_cancels_the_older(sched) -> None:
    scheduler, target = sched
    running = scheduler.submit(("c", 1), {"name": "running", "n": 1000}, None, group="a.py")
    while not scheduler.running:
        await asyncio.sleep(0.005)
    queued = scheduler.submit(("c", 2), {"name": "queued", "n": 1000}, None, group="a.py")
    other_doc = scheduler.submit(("c", 3), {"name": "other_doc", "n": 2}, None, group="b.py")
    other_client = scheduler.submit(("d", 1), {"name": "other_client", "n": 2}, None,
                                    group="a.py")
    ungrouped = scheduler.submit(("c", 5), {"name": "ungrouped", "n": 2}, None)
    newest = scheduler.submit(("c", 4), {"name": "newest", "n": 2}, None, group="a.py")
    assert (await asyncio.wait_for(queued.future, 0.1))["finish_reason"] == "cancelled"
    assert (await running.future)["finish_reason"] == "cancelled"
    for job in (other_doc, other_client, ungrouped, newest):
        assert (await job.future)["finish_reason"] == "length"
    assert "queued" not in target.started
