"""`sparkedit engine --target cerebras` and `sparkedit suggest --target cerebras` as real
processes, against the fake server on 127.0.0.1. The API key is a dummy that must never
show up in any output or log."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_server import Failure, FakeServer, Script

from engine.models import default_model_dir
from engine.rpc import EngineClient, EngineError
from engine.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
KEY = "csk-E2E-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
READY = re.compile(r"engine ready on (\S+)")
TEXT = "def add(a, b):\n    return a + b\n"


def remote_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKEDIT_REMOTE_")}
    env.pop("OPENAI_API_KEY", None)
    return {**env, "CEREBRAS_API_KEY": KEY, "SPARKEDIT_REMOTE_READ_TIMEOUT": "10",
            "SPARKEDIT_REMOTE_BACKOFF": "0.02", **extra}


@dataclass
class Engine:
    proc: subprocess.Popen
    address: str
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def start_engine(folder: Path, base_url: str) -> Engine:
    log = folder / "engine.err"
    cmd = [sys.executable, "-m", "lsp_server.cli", "engine", "--socket",
           str(folder / "e.sock"), "--target", "cerebras", "--base-url", base_url,
           "--model", "fake-coder", "--log-level", "DEBUG"]
    with open(log, "wb") as err, open(folder / "engine.out", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=remote_env(), cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = READY.search(log.read_text())
        if found:
            return Engine(proc, found[1], log)
        if proc.poll() is not None:
            raise AssertionError(f"engine exited {proc.returncode}: {log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"engine not ready: {log.read_text()}")


@pytest.fixture
def engine(fake: FakeServer, tmp_path: Path) -> Iterator[Engine]:
    eng = start_engine(tmp_path, fake.base_url)
    yield eng
    assert eng.stop() == 0
    assert KEY not in eng.log.read_text(), "the key reached the engine's log"
    assert (tmp_path / "engine.out").read_bytes() == b""


def fim(tok: Tokenizer) -> list[int]:
    sp = tok.special_ids
    return [sp["<|fim_prefix|>"], *tok.encode("x = "), sp["<|fim_suffix|>"], *tok.encode("\n"),
            sp["<|fim_middle|>"]]


async def test_the_engine_streams_a_remote_answer(fake, engine, tokenizer):
    fake.scripts["fake-coder"] = Script()
    async with await EngineClient.connect(engine.address) as client:
        info = await client.info()
        assert info["target"] == "cerebras" and info["model"] == "fake-coder"
        assert info["remote"] is True and info["special_tokens"] == tokenizer.special_ids
        deltas: list[str] = []
        answer = await client.generate({"tokens": fim(tokenizer), "max_tokens": 16},
                                       on_token=lambda text, ids: deltas.append(text))
        assert answer["text"] == TEXT and "".join(deltas) == TEXT
        assert answer["finish_reason"] == "eos"
        assert answer["stats"]["prompt_tokens"] == 120
        assert answer["stats"]["forward_passes"] is None
        assert answer["timing"]["simulated"] is None
        assert answer["timing"]["remote"]["queue_time"] == 0.0002
        assert answer["timing"]["queue_ms"] >= 0 and answer["timing"]["ttft_ms"] > 0
        assert (await client.info())["rate_limits"]["requests_day"]["limit"] == 14400
    assert fake.posts()[0].headers["authorization"] == f"Bearer {KEY}"


async def test_a_remote_failure_is_an_rpc_error_and_the_engine_keeps_serving(fake, engine,
                                                                               tokenizer):
    fake.scripts["fake-coder"] = Script(always=Failure(401, f"bad key {KEY}"))
    async with await EngineClient.connect(engine.address) as client:
        with pytest.raises(EngineError) as caught:
            await client.generate({"tokens": fim(tokenizer), "max_tokens": 4})
        assert "RemoteAuthError" in caught.value.message and "HTTP 401" in caught.value.message
        assert caught.value.code == "target" and KEY not in caught.value.message
        fake.scripts["fake-coder"] = Script(
            always=Failure(400, "maximum context length is 8192 tokens"))
        with pytest.raises(EngineError) as caught:
            await client.generate({"tokens": fim(tokenizer), "max_tokens": 4})
        assert caught.value.code == "context_overflow"
        fake.scripts["fake-coder"] = Script()
        answer = await client.generate({"tokens": fim(tokenizer), "max_tokens": 4})
        assert answer["text"] == TEXT
        assert (await client.health())["ok"] is True


async def test_a_cancel_during_a_hung_stream_returns_promptly(fake, engine, tokenizer):
    fake.scripts["fake-coder"] = Script(hang="body")
    async with await EngineClient.connect(engine.address) as client:
        started: list[int] = []
        job = asyncio.create_task(client.generate(
            {"tokens": fim(tokenizer), "max_tokens": 64}, on_token=lambda text, ids: None,
            on_start=started.append))
        await asyncio.sleep(0.3)  # the first chunk arrived; the server now says nothing
        t0 = time.perf_counter()
        assert (await client.cancel(started[0]))["cancelled"] is True
        answer = await asyncio.wait_for(job, 2.0)
        assert time.perf_counter() - t0 < 1.0
        assert answer["finish_reason"] == "cancelled" and answer["text"] == "def add(a, b):"
        fake.scripts["fake-coder"] = Script()
        assert (await client.generate({"tokens": fim(tokenizer), "max_tokens": 4}))["text"] \
            == TEXT


def test_suggest_against_a_remote_target(fake, tmp_path):
    fake.scripts["fake-coder"] = Script()
    source = tmp_path / "calc.py"
    source.write_text("import math\n\n\nprint(add(1, 2))\n")
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "suggest", str(source), "--at", "2:1",
         "--target", "cerebras", "--base-url", fake.base_url, "--model", "fake-coder",
         "--json"], capture_output=True, text=True, cwd=ROOT, env=remote_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["text"] == TEXT and out["edit"] is None
    assert out["stats"]["prompt_tokens"] == 120 and out["stats"]["forward_passes"] is None
    assert out["timing"]["simulated"] is None and out["model"]["name"] == "fake-coder"
    assert KEY not in done.stdout and KEY not in done.stderr
    post = fake.posts()[0]
    assert post.headers["authorization"] == f"Bearer {KEY}"
    user = post.body["messages"][1]["content"]
    assert "import math\n<CURSOR>\n\nprint(add(1, 2))" in user


# Expected failures: each ends `suggest` with exit 1 and one line naming the cause, no
# traceback, no key. (kind, script for "fake-coder", extra arguments, words in the line)
EXPECTED_FAILURES = {
    "refused key": (Script(always=Failure(401, f"bad key {KEY}")), [], ["401",
                                                                     "CEREBRAS_API_KEY"]),
    "retries exhausted": (Script(always=Failure(429, "slow down")), [], ["429"]),
    "context overflow": (Script(always=Failure(400, "too long",
                                               code="context_length_exceeded")), [],
                         ["context"]),
    "unknown model": (Script(), ["--model", "no-such-model"], ["no-such-model"]),
    "unreachable server": (Script(), ["--base-url", "http://127.0.0.1:9/v1"], ["127.0.0.1:9"]),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_FAILURES))
def test_suggest_says_an_expected_failure_in_one_line(fake, tmp_path, kind):
    script, extra, words = EXPECTED_FAILURES[kind]
    fake.scripts["fake-coder"] = script
    source = tmp_path / "calc.py"
    source.write_text("import math\n\n\nprint(add(1, 2))\n")
    args = {"--base-url": fake.base_url, "--model": "fake-coder"}
    args.update(dict(zip(extra[::2], extra[1::2], strict=True)))
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "suggest", str(source), "--at", "2:1",
         "--target", "cerebras", *[x for pair in args.items() for x in pair]],
        capture_output=True, text=True, cwd=ROOT,
        env=remote_env(SPARKEDIT_REMOTE_READ_TIMEOUT="3"), timeout=120)
    assert done.returncode == 1
    assert KEY not in done.stderr and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines


def test_suggest_explains_a_missing_key(tmp_path):
    source = tmp_path / "a.py"
    source.write_text("x = 1\n")
    env = remote_env()
    env.pop("CEREBRAS_API_KEY")
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "suggest", str(source), "--at", "1:1",
         "--target", "cerebras", "--base-url", "http://127.0.0.1:9/v1"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert done.returncode == 1 and "CEREBRAS_API_KEY" in done.stderr


@pytest.fixture(scope="module", autouse=True)
def _embedded_model_present() -> None:
    if not (default_model_dir() / "tokenizer.json").exists():
        pytest.skip("the embedded model's tokenizer is missing")
