"""The engine as a child process: started on demand, health-checked, restarted, stopped.

One `EngineProcess` owns one `sparkedit engine --socket PATH` child and one connected
`EngineClient`. The socket lives in a private folder (mode 0700, made by `mkdtemp`)
under `$XDG_RUNTIME_DIR`, or the temp folder when that is unset, so no other user can
connect to it. The engine's stdout and stderr both go to our stderr: in the language
server stdout belongs to the protocol, and an inherited descriptor never fills up and
blocks the engine the way an unread pipe would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.rpc import EngineClient, EngineConnectionError, EngineError

log = logging.getLogger(__name__)


class EngineStartError(Exception):
    """The engine could not be started or did not become healthy in time."""


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    model: str | None = None  # a model folder (wafer-sim) or the remote model id
    target: str = "wafer-sim"
    base_url: str | None = None  # a remote target's address (default: the target's own)
    backend: str = "auto"  # a local model's compute backend: auto, numpy or ggml
    quant: str | None = None  # ggml: the weights a model folder is converted to
    log_level: str = "INFO"  # the engine's own; the headless command asks for WARNING
    start_timeout_s: float = 120.0
    stop_timeout_s: float = 3.0


@dataclass(frozen=True, kw_only=True)
class EngineHandle:
    """A connected engine: its client, its `info` answer and its process id."""

    client: EngineClient
    info: dict[str, Any]
    pid: int
    generation: int  # how many times an engine was started, 1 for the first


StateCallback = Callable[[str, str], None]  # (state, message)
# What one running engine consists of: its connection, its process, its socket folder.
_Parts = tuple[EngineHandle | None, asyncio.subprocess.Process | None, str | None]


async def _relay(stream: asyncio.StreamReader | None, last: deque[str]) -> None:
    """The engine's stderr to ours, line by line, keeping the last lines in `last`."""
    while stream is not None and (line := await stream.readline()):
        last.append(line.decode(errors="replace").rstrip())
        # our stderr closed or in-memory (no .buffer): keep draining
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.buffer.write(line)
            sys.stderr.buffer.flush()


def _stderr_fd() -> int:
    """Our stderr's descriptor for the engine's stdout; never our stdout (the protocol)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced by an in-memory stream
        return subprocess.DEVNULL


def _socket_parent() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return runtime
    return tempfile.gettempdir()


class EngineProcess:
    """Starts the engine on the first `handle()`, restarts it after `mark_broken()`
    or when the child has exited, and stops it in `stop()`.

    Concurrent callers share one start: the start runs in a task that every caller
    awaits, so a burst of requests after a crash starts one engine, not several.
    """

    def __init__(self, options: EngineOptions, on_state: StateCallback | None = None) -> None:
        self._options = options
        self._on_state = on_state or (lambda state, message: None)
        self._proc: asyncio.subprocess.Process | None = None
        self._relay: asyncio.Task | None = None
        self._engine_lines: deque[str] = deque(maxlen=20)  # the engine's last stderr lines
        self._handle: EngineHandle | None = None
        self._starting: asyncio.Task[EngineHandle] | None = None
        self._socket_dir: str | None = None
        self._generation = 0
        self._stopping: set[int] = set()  # pids signalled to stop and not yet reaped

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def current(self) -> EngineHandle | None:
        """The live handle, if an engine is up (does not start one)."""
        if self._handle is not None and self._alive():
            return self._handle
        return None

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def died(self) -> bool:
        """An engine was up and is now gone (process exited or connection closed)."""
        if self._handle is None:
            return False
        return not self._alive() or self._handle.client.closed

    async def handle(self) -> EngineHandle:
        """A connected engine, starting or restarting it first if needed."""
        if self._handle is not None and not self.died():
            return self._handle
        if self._handle is not None:
            self.mark_broken("the engine process exited")
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._start())
        # shield: a cancelled completion request must not abort a start others await.
        return await asyncio.shield(self._starting)

    def mark_broken(self, reason: str, generation: int | None = None) -> None:
        """The engine failed: drop it now and start a new one in the background, so the
        next request finds it ready (or already starting).

        `generation` names the engine the failure was seen on: a late failure from a
        request on an engine already replaced must not kill its successor.
        """
        if self._handle is None:
            return  # nothing is up: a (re)start is already under way, or none was made
        if generation is not None and self._handle.generation != generation:
            return
        log.warning("engine failed (%s); restarting it", reason)
        self._on_state("restarting", f"the engine failed ({reason}); restarting it")
        # Detached synchronously so that no request uses the dead engine from here on.
        old = self._detach()
        self._starting = asyncio.create_task(self._restart(old))
        # Retrieve a failure here so asyncio does not log "exception never retrieved";
        # the next `handle()` starts again and reports it.
        self._starting.add_done_callback(
            lambda t: t.cancelled() or t.exception() is None
            or log.error("engine restart failed: %s", t.exception()))

    async def _restart(self, old: _Parts) -> EngineHandle:
        await self._discard(old)
        return await self._start()

    async def _start(self) -> EngineHandle:
        self._generation += 1
        self._socket_dir = tempfile.mkdtemp(prefix="sparkedit-", dir=_socket_parent())
        socket_path = os.path.join(self._socket_dir, "engine.sock")
        cmd = [sys.executable, "-m", "lsp_server.cli", "engine", "--socket", socket_path,
               "--target", self._options.target, "--log-level", self._options.log_level,
               "--backend", self._options.backend, "--parent-pid", str(os.getpid())]
        if self._options.quant:
            cmd += ["--quant", self._options.quant]
        if self._options.model:
            cmd += ["--model", self._options.model]
        if self._options.base_url:
            cmd += ["--base-url", self._options.base_url]
        log.info("starting the engine: %s", " ".join(cmd))
        self._on_state("starting", "starting the engine")
        started = time.monotonic()
        # stderr through us: relayed line by line, the last lines kept to say why a start
        # failed (an editor shows the message, not the log).
        self._proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=subprocess.DEVNULL, stdout=_stderr_fd(), stderr=subprocess.PIPE)
        self._engine_lines.clear()
        self._relay = asyncio.create_task(_relay(self._proc.stderr, self._engine_lines))
        try:
            client = await self._wait_healthy(socket_path, started)
            info = await client.info()
        except BaseException:
            await self._discard()
            raise
        self._handle = EngineHandle(client=client, info=info, pid=self._proc.pid,
                                    generation=self._generation)
        log.info("engine %s ready in %.0f ms (model %s)", self._proc.pid,
                 (time.monotonic() - started) * 1000, info.get("model"))
        self._on_state("ready", f"engine ready (model {info.get('model')})")
        return self._handle

    async def _wait_healthy(self, socket_path: str, started: float) -> EngineClient:
        deadline = started + self._options.start_timeout_s
        last_error = "the socket never appeared"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.returncode is not None:
                with contextlib.suppress(TimeoutError):  # its last words, still in the pipe
                    await asyncio.wait_for(asyncio.shield(self._relay), 2)
                said = [line for line in self._engine_lines if line.startswith("sparkedit")]
                reason = said[-1] if said else "its messages are in the log"
                raise EngineStartError(f"the engine exited with code {self._proc.returncode} "
                                       f"while starting: {reason}")
            if os.path.exists(socket_path):
                client: EngineClient | None = None
                try:
                    client = await EngineClient.connect(socket_path)
                    await client.health()
                    return client
                except (OSError, EngineConnectionError, EngineError) as exc:
                    last_error = str(exc)
                    if client is not None:
                        await client.close()
            await asyncio.sleep(0.05)
        raise EngineStartError(f"the engine did not answer `health` within "
                               f"{self._options.start_timeout_s:.0f} s ({last_error})")

    def _detach(self) -> _Parts:
        parts = (self._handle, self._proc, self._socket_dir)
        self._handle = self._proc = self._socket_dir = None
        return parts

    async def _discard(self, parts: _Parts | None = None) -> None:
        """Close the connection and stop the process (terminate, then kill); `parts` are
        an engine already detached, else the current one is."""
        handle, proc, folder = parts if parts is not None else self._detach()
        if proc is not None and proc.returncode is None:
            # Signal first: if the client hangs up meanwhile, the loop may end at the next
            # await, and `kill_now` no longer sees a detached process.
            self._stopping.add(proc.pid)
            proc.terminate()
        if handle is not None:
            try:
                await handle.client.close()
            except (OSError, EngineConnectionError) as exc:
                log.debug("closing the engine connection: %s", exc)
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), self._options.stop_timeout_s)
            except TimeoutError:
                log.warning("engine %s ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                await proc.wait()
        elif proc is not None:
            await proc.wait()
        if proc is not None:
            self._stopping.discard(proc.pid)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    async def stop(self) -> None:
        """Stop the engine (and any start in progress)."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, EngineStartError, OSError):
                await self._starting
        self._starting = None
        await self._discard()

    def kill_now(self) -> None:
        """Synchronous last resort for interpreter exit: never leave an orphan engine."""
        # os.kill, not Process.kill: the event loop may already be closed here.
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGKILL)
        for pid in list(self._stopping):  # detached, signalled, maybe not yet gone
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
