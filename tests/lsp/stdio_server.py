"""`sparkedit lsp` as a subprocess over stdio, driven the way the storm and fault tests need:
requests by id without waiting (answers kept by id), notifications kept in order, stderr
drained (a full pipe would block the server) and returned at the end, the process group
killed when a test fails."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from test_disconnect import frame, read_message

from engine.models import untrained_model_dir

LSP = [sys.executable, "-m", "lsp_server.cli", "lsp"]


def rss_kb(pid: int) -> int:
    """Resident memory of `pid`, in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class StdioServer:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.answers: dict[Any, dict] = {}
        self.notifications: list[dict] = []
        self._log: list[bytes] = []
        self._next_id = 0
        self._reader = asyncio.create_task(self._read())
        self._drain = asyncio.create_task(self._drain_log())

    @classmethod
    async def start(cls, *, prefix: Sequence[str] = (), args: Sequence[str] = (),
                    init_options: dict | None = None, root_uri: str | None = None,
                    model: str | None = None) -> StdioServer:
        """Started and initialized (`statsFile` off unless `init_options` says otherwise)."""
        process = await asyncio.create_subprocess_exec(
            *prefix, *LSP, "--model", model or str(untrained_model_dir()), *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=2 ** 27)
        server = cls(process)
        try:
            await server.request("initialize", {
                "capabilities": {}, "rootUri": root_uri,
                "initializationOptions": {"statsFile": "off", **(init_options or {})}}, 60)
            server.notify("initialized", {})
        except BaseException:
            await server.kill()
            raise
        return server

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while True:
            try:
                message = await read_message(self.process.stdout)
            except (asyncio.IncompleteReadError, ValueError):
                if self.process.stdout.at_eof():  # the server exited
                    return
                raise
            if "method" in message:
                self.notifications.append(message)
            else:
                self.answers[message.get("id")] = message

    async def _drain_log(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self._log.append(chunk)

    def send(self, message: dict) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(frame({"jsonrpc": "2.0", **message}))

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def request_nowait(self, method: str, params: Any) -> int:
        self._next_id += 1
        self.send({"id": self._next_id, "method": method, "params": params})
        return self._next_id

    async def answer(self, msg_id: int, timeout: float = 30) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while msg_id not in self.answers:
            if self._reader.done():
                self._reader.result()
                raise AssertionError("the server's output ended")
            if loop.time() > deadline:
                raise AssertionError(f"request {msg_id} unanswered after {timeout} s")
            await asyncio.sleep(0.01)
        return self.answers.pop(msg_id)

    async def request(self, method: str, params: Any, timeout: float = 30) -> dict:
        msg_id = self.request_nowait(method, params)
        assert self.process.stdin is not None
        await self.process.stdin.drain()
        return await self.answer(msg_id, timeout)

    async def notification(self, method: str, timeout: float = 30, containing: str = ""
                           ) -> dict:
        """The first notification of `method` (whose params contain `containing`) not yet
        taken; it is removed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, message in enumerate(self.notifications):
                if message["method"] == method and containing in json.dumps(message["params"]):
                    return self.notifications.pop(i)
            if loop.time() > deadline:
                raise AssertionError(f"no {method} notification in {timeout} s")
            await asyncio.sleep(0.02)

    def engine_pid(self) -> int | None:
        for message in reversed(self.notifications):
            if message["method"] == "sparkedit/status" and message["params"].get("enginePid"):
                return message["params"]["enginePid"]
        return None

    async def shutdown(self) -> str:
        """Shut down and exit cleanly; the server's log."""
        await self.request("shutdown", None)
        self.notify("exit", None)
        assert self.process.stdin is not None
        await self.process.stdin.drain()
        await asyncio.wait_for(self.process.wait(), 30)
        return await self.log()

    async def kill(self) -> None:
        if self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            await asyncio.wait_for(self.process.wait(), 10)

    async def log(self) -> str:
        self._reader.cancel()
        await asyncio.wait_for(self._drain, 10)
        return b"".join(self._log).decode(errors="replace")
