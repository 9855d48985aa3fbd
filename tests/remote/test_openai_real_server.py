"""The `openai` target against a real third-party OpenAI-compatible server: llama-cpp-python's
own server (`python -m llama_cpp.server`, the `server` extra of the ggml dependency) on
127.0.0.1, serving the embedded model converted to GGUF. Through `sparkedit suggest`, the
engine's RPC (streaming, cancellation) and the language server; and the failures a user
meets: a wrong model name, a stopped server.

What differs from the fake server (tests/remote/fake_server.py), checked here:
- the prompt's special markers (`<|fim_prefix|>` ...) are read as the model's special
  tokens, exactly as the embedded tokenizer counts them (the server's prompt token count
  equals the context's);
- with one model loaded the server answers whatever `model` a request names: the target
  refuses a name the server's `/v1/models` does not list, so a typo is an error, not a
  silent answer from another model;
- its stream carries no `usage`, so token counts are null (not measured), never invented.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.models import default_model_dir
from engine.rpc import EngineClient
from engine.tokenizer import Tokenizer
from lsp_server.context.assemble import ContextOptions

ROOT = Path(__file__).resolve().parents[2]
ALIAS = "sparkedit-coder"
READY = re.compile(r"engine ready on (\S+)")
SOURCE = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"

if importlib.util.find_spec("llama_cpp") is None or \
        importlib.util.find_spec("llama_cpp.server") is None:
    pytestmark = pytest.mark.skip(
        reason="llama-cpp-python's server is not installed: pip install -e '.[ggml]'")


@dataclass
class LlamaServer:
    proc: subprocess.Popen
    base_url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)

    def prompt_tokens(self) -> list[int]:
        """The prompt sizes llama.cpp reports, request by request."""
        found = re.findall(r"prompt eval time = .*?/\s+(\d+) tokens", self.log.read_text())
        return [int(n) for n in found]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(folder: Path) -> LlamaServer:
    from engine.ggml.gguf_cache import converted_gguf

    gguf = converted_gguf(default_model_dir(), "f32")
    port = free_port()
    log = folder / f"llama-server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
             "127.0.0.1", "--port", str(port), "--model_alias", ALIAS, "--n_ctx", "2048"],
            stdout=out, stderr=subprocess.STDOUT)
    server = LlamaServer(proc, f"http://127.0.0.1:{port}/v1", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"llama_cpp.server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/models", timeout=2) as answer:
                if ALIAS in answer.read().decode():
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise AssertionError(f"llama_cpp.server did not answer: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Iterator[LlamaServer]:
    server = start_llama_server(tmp_path_factory.mktemp("llama"))
    yield server
    server.stop()


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPARKEDIT_REMOTE_")}
    clean.pop("OPENAI_API_KEY", None)
    return {**clean, "SPARKEDIT_REMOTE_READ_TIMEOUT": "10", "SPARKEDIT_REMOTE_BACKOFF": "0.02"}


def suggest(base_url: str, source: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "suggest", str(source), "--at", "2:5",
         "--target", "openai", "--base-url", base_url, *extra],
        capture_output=True, text=True, cwd=ROOT, env=env(), timeout=120)


def workspace(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    source = tmp_path / "calc.py"
    source.write_text(SOURCE)
    return source


def test_suggest_gets_a_completion_from_the_real_server(llama, tmp_path):
    source = workspace(tmp_path)
    before = len(llama.prompt_tokens())
    done = suggest(llama.base_url, source, "--model", ALIAS, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["mode"] == "complete" and out["model"]["name"] == ALIAS
    assert out["text"], "the embedded model on llama.cpp wrote something"
    assert out["timing"]["ttft_ms"] > 0 and out["timing"]["simulated"] is None
    # The special markers in the prompt text became the model's special tokens: llama.cpp
    # counted exactly the tokens of the context sparkedit built.
    from lsp_server.headless import model_tokenizer, open_workspace

    workspace_, doc = open_workspace(model_tokenizer(None), SOURCE, uri=source.as_uri(),
                                     root=tmp_path)
    context = workspace_.context(doc, SOURCE.index("return"), ContextOptions(budget=2048))
    assert llama.prompt_tokens()[before:] == [context.total_tokens]


def test_a_wrong_model_name_is_one_line_naming_what_is_served(llama, tmp_path):
    done = suggest(llama.base_url, workspace(tmp_path), "--model", "no-such-model")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-model" in lines[0] and ALIAS in lines[0], lines


def test_a_stopped_server_is_one_line(tmp_path):
    server = start_llama_server(tmp_path)
    server.stop()
    done = suggest(server.base_url, workspace(tmp_path), "--model", ALIAS)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    port = server.base_url.split(":")[2].split("/")[0]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], lines
    assert "Traceback" not in done.stderr


@pytest.fixture
def engine(llama, tmp_path) -> Iterator[str]:
    log = tmp_path / "engine.err"
    cmd = [sys.executable, "-m", "lsp_server.cli", "engine", "--socket",
           str(tmp_path / "e.sock"), "--target", "openai", "--base-url", llama.base_url,
           "--model", ALIAS]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env(),
                                cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not READY.search(log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield READY.search(log.read_text())[1]
    finally:
        proc.terminate()
        proc.wait(15)


async def test_the_engine_streams_and_cancels_on_the_real_server(engine):
    tokenizer = Tokenizer.from_dir(default_model_dir())
    # A plain prompt the embedded model goes on with for hundreds of tokens.
    request = {"tokens": tokenizer.encode("def f("), "max_tokens": 600}
    async with await EngineClient.connect(engine) as client:
        info = await client.info()
        assert info["target"] == "openai" and info["model"] == ALIAS
        deltas: list[str] = []
        whole = await client.generate(request, on_token=lambda text, ids: deltas.append(text))
        assert len(deltas) > 10 and "".join(deltas) == whole["text"]
        assert whole["stats"]["prompt_tokens"] is None  # no usage in this server's stream

        started: list[int] = []
        first = asyncio.Event()
        job = asyncio.create_task(client.generate(
            request, on_token=lambda text, ids: first.set(), on_start=started.append))
        await asyncio.wait_for(first.wait(), 30)
        t0 = time.perf_counter()
        assert (await client.cancel(started[0]))["cancelled"] is True
        cut = await asyncio.wait_for(job, 5)
        assert time.perf_counter() - t0 < 2.0
        assert cut["finish_reason"] == "cancelled"
        assert whole["text"].startswith(cut["text"]) and len(cut["text"]) < len(whole["text"])
        assert (await client.health())["ok"] is True


async def test_the_language_server_on_the_openai_target(llama, tmp_path):
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient
    from test_remote_lsp import inline_items, open_python, plain

    source = workspace(tmp_path)
    client = LanguageClient("openai-test", "0")
    await client.start_io(sys.executable, "-m", "lsp_server.cli", "lsp", "--target", "openai",
                          "--base-url", llama.base_url, "--model", ALIAS, env=env())
    try:
        await asyncio.wait_for(client.initialize_async(types.InitializeParams(
            root_uri=tmp_path.as_uri(), capabilities=types.ClientCapabilities(),
            initialization_options={"statsFile": "off"})), 30)
        client.initialized(types.InitializedParams())
        open_python(client, source, SOURCE)
        items = await inline_items(client, source.as_uri(), 1, 4)
        assert items and items[0].insert_text, "ghost text from the real server"
        status = await asyncio.wait_for(client.protocol.send_request_async(
            "sparkedit/status", None), 10)
        assert plain(status)["target"] == "openai"
    finally:
        await asyncio.wait_for(client.shutdown_async(None), 20)
        client.exit(None)
        await asyncio.wait_for(client.stop(), 30)
