"""The real engine process over a real Unix socket (and TCP), with the embedded model.

One engine serves the whole module; tests that kill or restart an engine start their own.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from engine.models import untrained_model_dir
from engine.rpc import EngineClient, EngineConnectionError, EngineError, pack, request_frame

pytest.importorskip("engine.generate", reason="the engine core has not landed yet")

READY = re.compile(r"engine ready on (\S+)")
LONG = 20_000  # max_tokens for a job that would run for many seconds unless cancelled


@dataclass
class Engine:
    proc: subprocess.Popen
    address: str
    stderr: Path
    stdout: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def run_cli(*args: str, env: dict[str, str] | None = None,
            logs: Path | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lsp_server.cli", "engine", *args]
    env = {**os.environ, **(env or {})}
    if logs is None:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Files, not pipes: nobody drains a long-lived engine's output while tests run.
    with open(logs.with_suffix(".out"), "wb") as out, open(logs, "wb") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err, env=env)


def start_engine(folder: Path, *args: str, env: dict[str, str] | None = None) -> Engine:
    folder.mkdir(parents=True, exist_ok=True)
    logs = folder / f"engine-{time.monotonic_ns()}.err"
    proc = run_cli(*args, env=env, logs=logs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = READY.search(logs.read_text())
        if found:
            return Engine(proc, found[1], logs, logs.with_suffix(".out"))
        if proc.poll() is not None:
            raise AssertionError(f"engine exited {proc.returncode}: {logs.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"engine not ready in 60 s: {logs.read_text()}")


def untrained_engine(tmp_path_factory: pytest.TempPathFactory, name: str,
                     backend: str = "numpy") -> Iterator[Engine]:
    """A module's engine process on the untrained placeholder; stopped cleanly after.
    numpy by default: these tests hold the RPC answers to the numpy reference."""
    folder = tmp_path_factory.mktemp(name)
    eng = start_engine(folder, "--socket", str(folder / f"{name}.sock"),
                       "--model", str(untrained_model_dir()), "--backend", backend)
    yield eng
    assert eng.stop() == 0
    assert not os.path.exists(eng.address), "the socket file outlived the engine"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from untrained_engine(tmp_path_factory, "eng")


async def _client(engine: Engine) -> EngineClient:
    return await EngineClient.connect(engine.address)


# ---------------------------------------------------------------------------- basics


async def test_info_health_and_a_private_socket(engine: Engine) -> None:
    assert stat.S_IMODE(os.stat(engine.address).st_mode) == 0o600
    async with await _client(engine) as client:
        info = await client.info()
        assert info["model"] == "tiny-untrained" and info["target"] == "wafer-sim"
        assert info["context_limit"] > 0 and info["fim_order"] in ("spm", "psm")
        assert "<|fim_prefix|>" in info["special_tokens"]
        assert info["limits"]["max_tokens"] > 0
        assert await client.health() == {"ok": True, "queue_length": 0, "running": False}
    assert engine.stdout.read_bytes() == b"", "stdout belongs to nobody"


async def test_tokenize_with_and_without_offsets(engine: Engine) -> None:
    async with await _client(engine) as client:
        text = "def héllo():\n    return 1\n"
        plain = await client.tokenize(text)
        spans = await client.tokenize(text, offsets=True)
        assert plain["tokens"] == spans["tokens"] and len(plain["tokens"]) > 3
        assert len(spans["offsets"]) == len(spans["tokens"])
        assert spans["offsets"][0][0] == 0 and spans["offsets"][-1][1] == len(text)


async def test_tokens_stream_before_the_answer_and_add_up_to_it(engine: Engine) -> None:
    async with await _client(engine) as client:
        events: list[tuple[str, list[int]]] = []
        params = {"prompt": "def add(a, b):\n", "max_tokens": 24, "temperature": 0}
        answer = await client.generate(params, on_token=lambda t, ids: events.append((t, ids)))
        assert events, "no token notification arrived before the answer"
        assert "".join(t for t, _ in events) == answer["text"]
        assert [i for _, ids in events for i in ids] == answer["tokens"]
        assert answer["finish_reason"] in ("length", "eos", "stop")
        assert {"queue_ms", "ttft_ms", "total_ms"} <= answer["timing"].keys()
        simulated = answer["timing"]["simulated"]  # wafer-sim: the profile's wafer timing
        assert {"queue_time", "prompt_time", "completion_time", "total_time"} <= simulated.keys()
        assert answer["stats"]["output_tokens"] == len(answer["tokens"])
        # Greedy is deterministic, streamed or not.
        quiet = await client.generate(params)
        assert quiet["tokens"] == answer["tokens"]


# ---------------------------------------------------------------------------- errors


async def test_unknown_methods_and_bad_params_are_answered(engine: Engine) -> None:
    async with await _client(engine) as client:
        for method, params, code in [
            ("translate", {}, "unknown_method"),
            ("generate", {"prompt": "x", "max_tokens": -1}, "invalid_params"),
            ("generate", {"max_tokens": 4}, "invalid_params"),
            ("cancel", {"id": "seven"}, "invalid_params"),
            ("tokenize", {"text": 3}, "invalid_params"),
        ]:
            with pytest.raises(EngineError) as err:
                await client.call(method, params)
            assert err.value.code == code, (method, params)
            assert err.value.message
        assert (await client.health())["ok"]


async def test_a_prompt_beyond_the_context_is_context_overflow(engine: Engine) -> None:
    async with await _client(engine) as client:
        limit = (await client.info())["context_limit"]
        with pytest.raises(EngineError) as err:
            await client.generate({"tokens": [1] * (limit + 1), "max_tokens": 1})
        assert err.value.code == "context_overflow"
        with pytest.raises(EngineError) as err:
            await client.generate({"tokens": [10**6], "max_tokens": 1})
        assert err.value.code == "invalid_params"


def frame_reader(reader: asyncio.StreamReader, timeout_s: float
                 ) -> Callable[[], Awaitable[list]]:
    """Raw msgpack frames from a socket, one per call: for tests that bypass EngineClient."""
    unpacker = msgpack.Unpacker(raw=False)

    async def next_frame() -> list:
        while True:
            for frame in unpacker:
                return frame
            data = await asyncio.wait_for(reader.read(65536), timeout_s)
            assert data, "the engine hung up"
            unpacker.feed(data)

    return next_frame


async def test_malformed_frames_get_errors_and_the_connection_keeps_serving(
        engine: Engine) -> None:
    reader, writer = await asyncio.open_unix_connection(engine.address)
    next_frame = frame_reader(reader, timeout_s=10)

    async def answer_to(msgid: int) -> list:
        while (frame := await next_frame())[1] != msgid:
            assert frame[2]["code"] == "malformed_frame", frame
        return frame

    try:
        writer.write(b"\xc1\xc1 not msgpack at all")
        first = await next_frame()
        assert first[0] == 1 and first[1] is None and first[2]["code"] == "malformed_frame"
        writer.write(request_frame(1, "health", {}))
        assert (await answer_to(1))[3]["ok"] is True
        writer.write(pack({"jsonrpc": "2.0", "method": "health"}))  # msgpack, not a message
        assert (await next_frame())[2]["code"] == "malformed_frame"
        writer.write(pack([0, 2, "health", "not a map"]))  # readable id: answered with it
        assert (await next_frame())[1:3] == [2, {"code": "malformed_frame",
                                                  "message": "params must be a map"}]
        writer.write(request_frame(3, "tokenize", {"text": "x = 1"}))
        assert (await answer_to(3))[3]["tokens"]
    finally:
        writer.close()


# ---------------------------------------------------------------------------- cancellation


async def _first_token(client: EngineClient, params: dict) -> tuple[asyncio.Task, int]:
    got_token = asyncio.Event()
    ids: list[int] = []
    task = asyncio.create_task(client.generate(
        params, on_token=lambda t, i: got_token.set(), on_start=ids.append))
    await asyncio.wait_for(got_token.wait(), 30)
    return task, ids[0]


async def test_cancel_stops_a_long_generate_quickly(engine: Engine) -> None:
    async with await _client(engine) as client:
        task, job_id = await _first_token(client, {"prompt": "import os\n", "max_tokens": LONG})
        started = time.perf_counter()
        assert await client.cancel(job_id) == {"cancelled": True}
        answer = await asyncio.wait_for(task, 5)
        assert time.perf_counter() - started < 2.0
        assert answer["finish_reason"] == "cancelled"
        assert 0 < len(answer["tokens"]) < LONG
        assert await client.cancel(job_id) == {"cancelled": False}


async def test_a_cancelled_task_and_a_closed_client_free_the_worker(engine: Engine) -> None:
    async with await _client(engine) as watcher:
        for how in ("task", "disconnect"):
            client = await _client(engine)
            task, _ = await _first_token(client, {"prompt": "class A:\n", "max_tokens": LONG})
            assert (await watcher.health())["running"] is True
            if how == "task":
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            await client.close()
            deadline = time.monotonic() + 3
            while (await watcher.health())["running"]:
                assert time.monotonic() < deadline, f"job not cancelled ({how})"
                await asyncio.sleep(0.02)


async def test_two_clients_are_served_in_turn(engine: Engine) -> None:
    a_params = {"prompt": "def a():\n", "max_tokens": 300, "temperature": 0}
    b_params = {"prompt": "def b():\n", "max_tokens": 8, "temperature": 0}
    async with await _client(engine) as a, await _client(engine) as b:
        solo_b = await b.generate(b_params)
        a_task, _ = await _first_token(a, a_params)
        a_done: list[float] = []
        a_task.add_done_callback(lambda _t: a_done.append(time.perf_counter()))
        sent = time.perf_counter()
        b_answer = await b.generate(b_params)
        a_answer = await a_task
        await asyncio.sleep(0)  # done-callbacks run on the loop's next turn, not at the await
        assert a_answer["finish_reason"] == "length" and len(a_answer["tokens"]) == 300
        assert b_answer["tokens"] == solo_b["tokens"]
        # B sat in the queue until A's decode finished.
        a_left_ms = (a_done[0] - sent) * 1000
        assert b_answer["timing"]["queue_ms"] >= 0.5 * a_left_ms
        assert b_answer["timing"]["queue_ms"] > solo_b["timing"]["queue_ms"]


async def test_a_newer_generate_for_the_same_document_cancels_the_older(
        engine: Engine) -> None:
    doc = {"document": "file:///work/a.py"}
    async with await _client(engine) as client:
        old, _ = await _first_token(client, {"prompt": "import os\n", "max_tokens": LONG} | doc)
        other = asyncio.create_task(client.generate(
            {"prompt": "x = 1\n", "max_tokens": 4, "document": "file:///work/b.py"}))
        newer = await asyncio.wait_for(client.generate(
            {"prompt": "import sys\n", "max_tokens": 4} | doc), 30)
        assert (await asyncio.wait_for(old, 5))["finish_reason"] == "cancelled"
        assert newer["finish_reason"] != "cancelled" and newer["tokens"]
        assert (await asyncio.wait_for(other, 30))["finish_reason"] != "cancelled"


async def test_a_draft_changes_speed_not_output(engine: Engine) -> None:
    async with await _client(engine) as client:
        assert (await client.info())["kv_bytes_per_token"] > 0
        # 100 prompt tokens no other test sends: the first answer is cold.
        params = {"tokens": [13 + (i * 7919) % 8000 for i in range(100)], "max_tokens": 24}
        plain = await client.generate(params)
        assert plain["stats"]["cached_prompt_tokens"] == 0
        drafted = await client.generate(params | {"draft": plain["text"]})
        assert drafted["tokens"] == plain["tokens"]
        stats = drafted["stats"]
        assert stats["accepted_draft_tokens"] > 0 and "region" in stats["drafters"]
        assert stats["forward_passes"] <= plain["stats"]["forward_passes"]
        assert stats["cached_prompt_tokens"] == 64  # one whole block; the rest is prefilled


# ---------------------------------------------------------------------------- lifecycle


async def test_a_killed_engine_fails_pending_calls_and_a_stale_socket_is_replaced(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("kill")
    path = str(folder / "k.sock")
    first = start_engine(folder, "--socket", path)
    client = await EngineClient.connect(path)
    task, _ = await _first_token(client, {"prompt": "x", "max_tokens": LONG})
    first.proc.kill()
    first.proc.wait(10)
    with pytest.raises(EngineConnectionError):
        await asyncio.wait_for(task, 10)
    with pytest.raises(EngineConnectionError):
        await client.health()
    await client.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # SIGKILL leaves the file behind
    second = start_engine(folder, "--socket", path)
    async with await EngineClient.connect(path) as again:
        assert (await again.health())["ok"]
    assert second.stop() == 0
    assert not os.path.exists(path)


def test_a_live_engine_is_never_replaced(engine: Engine) -> None:
    proc = run_cli("--socket", engine.address)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and b"already serving" in err
    assert stat.S_ISSOCK(os.lstat(engine.address).st_mode)


def test_a_remote_target_without_its_key_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CEREBRAS_API_KEY"}
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server.cli", "engine", "--socket",
                             str(tmp_path / "r.sock"), "--target", "cerebras"],
                            stderr=subprocess.PIPE, env=env)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and b"CEREBRAS_API_KEY" in err


def test_tcp_without_a_token_is_refused() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SPARKEDIT_ENGINE_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server.cli", "engine", "--tcp",
                             "127.0.0.1:0"], stderr=subprocess.PIPE, env=env)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and b"SPARKEDIT_ENGINE_TOKEN" in err


async def test_tcp_needs_the_token(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("tcp")
    eng = start_engine(folder, "--tcp", "127.0.0.1:0", env={"SPARKEDIT_ENGINE_TOKEN": "s3cret"})
    try:
        assert eng.address.startswith("tcp:127.0.0.1:")
        with pytest.raises(EngineError) as err:
            await EngineClient.connect(eng.address, token="wrong")
        assert err.value.code == "unauthorized"
        # Without hello every request is refused, but answered.
        with socket.create_connection(("127.0.0.1", int(eng.address.rsplit(":", 1)[1]))) as s:
            s.sendall(request_frame(1, "health", {}))
            frame = msgpack.unpackb(s.recv(65536), raw=False)
            assert frame[1] == 1 and frame[2]["code"] == "unauthorized"
        async with await EngineClient.connect(eng.address, token="s3cret") as client:
            assert (await client.health())["ok"]
    finally:
        assert eng.stop() == 0


@pytest.mark.parametrize("mode, refused", [(0o777, True), (0o770, True), (0o1777, False)])
def test_a_socket_folder_others_could_write_into_is_refused(tmp_path: Path, mode: int,
                                                            refused: bool) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)  # sticky (1777, like /tmp): others cannot replace the socket
    proc = run_cli("--socket", str(folder / "engine.sock"), "--model",
                   str(untrained_model_dir()), "--backend", "numpy")
    try:
        if refused:
            _, err = proc.communicate(timeout=60)
            lines = err.decode().strip().splitlines()
            assert proc.returncode != 0 and len(lines) == 1, lines
            assert "can be written by others" in lines[0] and "Traceback" not in lines[0]
            assert not (folder / "engine.sock").exists()
        else:
            deadline = time.monotonic() + 60
            while not (folder / "engine.sock").exists() and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            assert (folder / "engine.sock").exists()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=30)
