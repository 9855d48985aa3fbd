"""A FIFO of generate jobs run one at a time on a single worker thread.

The model (and its KV and prefix caches) is one object, so jobs never overlap; what the
scheduler adds is ordering, `timing.queue_ms`, and cancellation: a queued job is answered
at once, a running one is stopped by `should_stop` within one forward pass. A job submitted
with a `group` (a generate's `document`) supersedes the same client's older jobs of that
group: after a keystroke only the newest suggestion for a document is worth decoding. Results go
back to the event loop with `call_soon_threadsafe`, after every token callback the job
made, so a client always sees its token notifications before the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from engine.request import ContextOverflowError
from engine.rpc import EngineError
from engine.targets.base import OnText, ShouldStop, Target, TargetError

log = logging.getLogger("sparkedit.engine.scheduler")

JobKey = tuple[Hashable, int]  # (owner, request id): request ids are per connection


@dataclass(eq=False)
class Job:
    key: JobKey
    params: Any  # engine.request.GenerateParams
    on_text: OnText | None
    future: asyncio.Future[dict[str, Any]]
    enqueued_at: float = field(default_factory=time.perf_counter)
    stop: threading.Event = field(default_factory=threading.Event)
    group: Hashable | None = None
    # Another exclusive use of the target (`score`): run on the worker instead of
    # generate, and its dict answered as it is.
    work: Callable[[ShouldStop], dict[str, Any]] | None = None
    # Background work (a warm-up prefill): runs only when no other job waits, yields to any
    # job that arrives, and resumes afterwards until its answer says "complete".
    low: bool = False
    resumed: int = 0

    @property
    def owner(self) -> Hashable:
        return self.key[0]


def plain(obj: Any) -> Any:
    """Wire-safe copy: dataclasses to maps, numpy scalars and arrays to Python values
    (msgpack cannot pack numpy types)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return plain(obj.tolist())
    return obj


def result_to_wire(result: Any) -> dict[str, Any]:
    """GenerateResult -> {text, tokens, finish_reason, stats, timing}."""
    wire = plain(result)
    assert isinstance(wire, dict), f"unexpected generate result {type(result).__name__}"
    wire.setdefault("stats", {})
    wire["timing"] = dict(wire.get("timing") or {})
    wire["timing"].setdefault("simulated", None)
    return wire


def cancelled_before_start(queue_ms: float) -> dict[str, Any]:
    """The answer for a job cancelled while it waited: nothing decoded, nothing spent."""
    return {
        "text": "", "tokens": [], "finish_reason": "cancelled",
        "stats": {"prompt_tokens": 0, "cached_prompt_tokens": 0, "output_tokens": 0,
                  "forward_passes": 0, "accepted_draft_tokens": 0},
        "timing": {"context_ms": None, "queue_ms": queue_ms, "prefill_ms": 0.0,
                   "ttft_ms": None, "decode_ms": 0.0, "total_ms": queue_ms, "simulated": None},
    }


def _elapsed_ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


class Scheduler:
    """Owns the worker thread. `submit`, `cancel`, `cancel_owner` and `stop` are called
    from the event-loop thread only (they resolve futures); the queue is shared with the
    worker under `_cond`."""

    def __init__(self, target: Target, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._jobs: dict[JobKey, Job] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="engine-worker", daemon=True)

    # -- event-loop side

    def start(self) -> None:
        self._thread.start()

    @property
    def queue_length(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def running(self) -> bool:
        with self._cond:
            return self._running is not None

    def submit(self, key: JobKey, params: Any, on_text: OnText | None, *,
               group: Hashable | None = None,
               work: Callable[[ShouldStop], dict[str, Any]] | None = None,
               low: bool = False) -> Job:
        """Queue a job; with a `group`, cancel the same owner's older jobs of that group
        (only the owner's: one client never cancels another's work). A `low` job is
        background work (see Job.low)."""
        job = Job(key, params, on_text, self._loop.create_future(), group=group, work=work,
                  low=low)
        if group is not None:
            with self._cond:
                older = [j for j in self._jobs.values()
                         if j.owner == job.owner and j.group == group and j.key != key]
            for old in older:
                self.cancel(old)
        with self._cond:
            if self._stopping:
                raise EngineError("internal", "the engine is shutting down")
            if key in self._jobs:
                raise EngineError("invalid_params", f"request id {key[1]} is already running")
            self._jobs[key] = job
            self._queue.append(job)
            self._cond.notify()
        return job

    def find(self, key: JobKey) -> Job | None:
        with self._cond:
            return self._jobs.get(key)

    def cancel(self, job: Job) -> bool:
        """True when the job was still queued or running (and is now being cancelled)."""
        with self._cond:
            if job in self._queue:
                self._queue.remove(job)
                self._jobs.pop(job.key, None)
                _resolve(job.future, cancelled_before_start(_elapsed_ms(job.enqueued_at)))
                return True
            if job is self._running and not job.stop.is_set():
                job.stop.set()
                return True
            return False

    def cancel_owner(self, owner: Hashable) -> int:
        """Cancel every job of a client that went away; returns how many."""
        with self._cond:
            mine = [job for key, job in self._jobs.items() if key[0] == owner]
        return sum(self.cancel(job) for job in mine)

    def stop(self) -> None:
        """Refuse new jobs, answer the queued ones, and ask the running one to stop."""
        with self._cond:
            self._stopping = True
            queued = list(self._queue)
            self._queue.clear()
            if self._running is not None:
                self._running.stop.set()
            self._cond.notify_all()
        for job in queued:
            self._jobs.pop(job.key, None)
            _resolve(job.future, cancelled_before_start(_elapsed_ms(job.enqueued_at)))

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the worker to leave (blocking: call it off the event loop)."""
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("worker still inside a forward pass after %.1f s", timeout)

    # -- worker thread

    def _urgent_waiting(self) -> bool:
        with self._cond:
            return any(not j.low for j in self._queue)

    def _next(self) -> Job:
        """The oldest job that is not background work, else the oldest background job."""
        for job in self._queue:
            if not job.low:
                self._queue.remove(job)
                return job
        return self._queue.popleft()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._next()
                self._running = job
            outcome = self._run(job, _elapsed_ms(job.enqueued_at))
            with self._cond:
                self._running = None
                if (job.low and isinstance(outcome, dict) and not outcome.get("complete", True)
                        and not job.stop.is_set() and not self._stopping):
                    job.resumed += 1  # pre-empted: resume after the jobs that cut in
                    self._queue.append(job)
                    self._cond.notify()
                    continue
                self._jobs.pop(job.key, None)
            if job.low and isinstance(outcome, dict):
                outcome["preempted"] = job.resumed
            try:
                self._loop.call_soon_threadsafe(_resolve, job.future, outcome)
            except RuntimeError:  # the loop closed during shutdown; nobody is waiting
                return

    def _run(self, job: Job, queue_ms: float) -> dict[str, Any] | EngineError:
        try:
            if job.work is not None and job.low:
                return job.work(lambda: job.stop.is_set() or self._urgent_waiting())
            if job.work is not None:
                return job.work(job.stop.is_set)
            result = self._target.generate(job.params, job.on_text, job.stop.is_set)
        except ContextOverflowError as exc:
            return EngineError("context_overflow", str(exc))
        except TargetError as exc:  # expected: one line, no traceback
            log.info("generate: %s: %s", type(exc).__name__, exc)  # the client says it
            return EngineError("target", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # keep the worker alive for the next job
            log.exception("generate failed")
            return EngineError("internal", f"{type(exc).__name__}: {exc}")
        wire = result_to_wire(result)
        timing = wire["timing"]
        timing["queue_ms"] = queue_ms
        # The target times from the start of its work; a client waited from arrival.
        for key in ("ttft_ms", "total_ms"):
            if isinstance(timing.get(key), int | float):
                timing[key] += queue_ms
        # Microseconds are the finest resolution worth reporting on the wire.
        for key, value in timing.items():
            if isinstance(value, float):
                timing[key] = round(value, 3)
        return wire


def _resolve(future: asyncio.Future[dict[str, Any]], outcome: dict[str, Any] | EngineError) -> None:
    # The awaiting handler may have been cancelled (client gone): then nobody reads this.
    if future.done():
        return
    if isinstance(outcome, EngineError):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
