"""The warm-up through the real stdio server and engine: after didOpen and didFocus the
engine's prefix cache holds the document's full-budget prompt, so the first completion
there prefills only its last block; without the warm-up the same completion is cold."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_lsp_session import SAMPLE, as_dict, complete, items, open_doc, request

from engine.models import untrained_model_dir

ROOT = Path(__file__).resolve().parents[2]
# Files whose definitions make a repository context larger than the warm budget.
NEIGHBOURS = ("lsp_server/options.py", "lsp_server/feedback.py", "lsp_server/suggestions.py",
              "lsp_server/history.py")
BUDGET, WARM_BUDGET = 2048, 256
LINE, COL = 36, len(SAMPLE.splitlines()[36])  # the end of `return len(self.items) != before`


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "lsp_server.cli", "lsp", "--backend", "numpy",
                    "--model", str(untrained_model_dir())]))
async def client(lsp_client: LanguageClient):
    @lsp_client.feature("sparkedit/status")
    def on_status(params: Any) -> None:
        pass

    yield
    # bounded: a server that died in a failed test never answers (pytest-lsp would wait)
    await asyncio.wait_for(lsp_client.shutdown_session(), 30)


def workspace(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    for name in NEIGHBOURS:
        shutil.copyfile(ROOT / name, root / Path(name).name)
    (root / "sample.py").write_text(SAMPLE)
    return root, (root / "sample.py").as_uri()


async def start(client: LanguageClient, root: Path, options: dict[str, Any]) -> None:
    await client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities())),
        root_uri=root.as_uri(),
        initialization_options={"statsFile": "off", "budget": BUDGET, **options}))


async def status(client: LanguageClient) -> dict[str, Any]:
    return as_dict(await request(client, "sparkedit/status"))


async def until(client: LanguageClient, what: str, ok: Any, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        state = await status(client)
        if ok(state):
            return state
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {state}"
        await asyncio.sleep(0.1)


def warm(state: dict[str, Any], uri: str) -> dict[str, Any]:
    records = [as_dict(w) for w in state.get("warm") or []]
    return next((w for w in records if w["uri"] == uri), {})


async def test_focus_warms_the_full_prompt_and_the_first_completion_reuses_it(client, tmp_path):
    root, uri = workspace(tmp_path)
    await start(client, root, {"warmBudget": WARM_BUDGET})
    await until(client, "the index", lambda s: s["indexReady"])
    open_doc(client, SAMPLE, uri=uri)
    client.protocol.notify("sparkedit/didFocus", {
        "textDocument": {"uri": uri}, "position": {"line": LINE, "character": COL}})

    def settled(state: dict[str, Any]) -> bool:
        w = warm(state, uri)
        return state["focus"] == uri and w.get("complete") is True and w["warming"] is None

    await until(client, "the full prompt prefilled", settled)
    await asyncio.sleep(1.5)  # a re-warm the index may have scheduled has had its turn
    state = await until(client, "the full prompt prefilled", settled)
    assert warm(state, uri)["budget"] > WARM_BUDGET
    got = await complete(client, LINE, COL, uri=uri)
    assert isinstance(items(got), list)
    last = as_dict((await status(client))["lastStats"])
    # The full prompt (not the warm budget's), all of it cached but the last 64-token block.
    assert WARM_BUDGET < last["prompt_tokens"] <= BUDGET, last
    assert last["cached_prompt_tokens"] >= last["prompt_tokens"] - 64, last


async def test_without_the_warm_up_the_first_completion_is_cold(client, tmp_path):
    root, uri = workspace(tmp_path)
    await start(client, root, {"warmUp": False})
    await until(client, "the index", lambda s: s["indexReady"])
    open_doc(client, SAMPLE, uri=uri)
    client.protocol.notify("sparkedit/didFocus", {"textDocument": {"uri": uri}})
    await asyncio.sleep(0.5)
    assert (await status(client))["enginePid"] is None  # nothing started the engine
    await complete(client, LINE, COL, uri=uri)
    last = as_dict((await status(client))["lastStats"])
    assert last["prompt_tokens"] > WARM_BUDGET and last["cached_prompt_tokens"] == 0, last
