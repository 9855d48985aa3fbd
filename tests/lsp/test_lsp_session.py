"""The language server as a real subprocess over stdio, with its real engine."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient

from engine.models import untrained_model_dir

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "examples" / "sample.py").read_text()
URI = "file:///work/sample.py"


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "lsp_server.cli", "lsp",
                    "--model", str(untrained_model_dir())]))
async def client(lsp_client: LanguageClient):
    lsp_client.statuses = []  # every sparkedit/status notification, in order

    @lsp_client.feature("sparkedit/status")
    def on_status(params: Any) -> None:
        lsp_client.statuses.append(as_dict(params))

    yield
    # bounded: a server that died in a failed test never answers (pytest-lsp would wait)
    await asyncio.wait_for(lsp_client.shutdown_session(), 30)


def as_dict(value: Any) -> Any:
    """Custom methods arrive as dicts or attribute objects, depending on pygls' path."""
    if isinstance(value, dict):
        return value
    if hasattr(value, "_asdict"):
        return {k: as_dict(v) for k, v in value._asdict().items()}
    return value


async def initialize(client: LanguageClient, encodings: list[str] | None = None,
                     options: dict[str, Any] | None = None):
    general = (types.GeneralClientCapabilities(position_encodings=encodings)
               if encodings else None)
    return await client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(
            general=general,
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities())),
        initialization_options=options))


def open_doc(client: LanguageClient, text: str, uri: str = URI) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                             text=text)))


async def complete(client: LanguageClient, line: int, character: int, uri: str = URI):
    return await asyncio.wait_for(client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic))), 60)


async def request(client: LanguageClient, method: str, params: Any = None) -> Any:
    return as_dict(await asyncio.wait_for(
        client.protocol.send_request_async(method, params), 10))


def items(result: Any) -> list[types.InlineCompletionItem]:
    return list(result.items) if isinstance(result, types.InlineCompletionList) else result


async def test_initialize_advertises_inline_completion_and_incremental_sync(client):
    result = await initialize(client)
    caps = result.capabilities
    assert caps.inline_completion_provider is not None
    sync = caps.text_document_sync
    kind = sync.change if isinstance(sync, types.TextDocumentSyncOptions) else sync
    assert kind == types.TextDocumentSyncKind.Incremental


async def test_incremental_change_then_a_real_completion(client):
    await initialize(client)
    open_doc(client, SAMPLE)
    # Type "        total = " on a new line 30 (0-based) of the sample, in two changes.
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=30, character=0),
                              end=types.Position(line=30, character=0)),
            text="        total = \n")]))
    answer = items(await complete(client, 30, 16))
    assert len(answer) == 1 and answer[0].insert_text
    assert answer[0].range.start == types.Position(line=30, character=16)
    text = (await request(client, "sparkedit/documentText", {"uri": URI}))["text"]
    lines = SAMPLE.splitlines(keepends=True)
    assert text == "".join(lines[:30]) + "        total = \n" + "".join(lines[30:])
    # The embedded model is untrained: the server says so once, as a warning.
    warnings = [m for m in client.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 1 and "untrained" in warnings[0].message
    status = await request(client, "sparkedit/status")
    assert status["state"] == "ready" and status["enginePid"]
    assert status["lastLatencies"]["context_ms"] is not None


async def test_unknown_document_and_out_of_range_positions_answer_empty(client):
    await initialize(client, options={"warmUp": False})  # opening would start the engine
    open_doc(client, "x = 'é😀'\ny\n")
    assert items(await complete(client, 0, 0, uri="file:///never/opened.py")) == []
    assert items(await complete(client, 7, 0)) == []  # past the last line
    assert items(await complete(client, 0, 99)) == []  # past the end of the line
    assert items(await complete(client, 0, 7)) == []  # inside the emoji's surrogate pair
    # None of these needed (or started) the engine.
    assert (await request(client, "sparkedit/status"))["enginePid"] is None


ALPHABET = ["a", "b", "_", " ", "(", ")", "é", "中", "😀", "\n", "\r\n", "    "]


def unit_len(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    return len(text.encode("utf-16-le")) // 2


def random_range(rng: random.Random, text: str, encoding: str):
    """A random valid range of `text` as (LSP range, start offset, end offset)."""
    line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def pick() -> tuple[types.Position, int]:
        line = rng.randrange(len(line_starts))
        start = line_starts[line]
        end = line_starts[line + 1] - 1 if line + 1 < len(line_starts) else len(text)
        if text[start:end].endswith("\r"):
            end -= 1
        offset = rng.randint(start, end)
        return types.Position(line=line, character=unit_len(text[start:offset], encoding)), offset

    (p1, o1), (p2, o2) = pick(), pick()
    if o2 < o1:
        (p1, o1), (p2, o2) = (p2, o2), (p1, o1)
    return types.Range(start=p1, end=p2), o1, o2


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
async def test_random_incremental_edits_keep_the_servers_copy_exact(client, encoding):
    result = await initialize(client, encodings=[encoding])
    assert result.capabilities.position_encoding == encoding
    rng = random.Random(20240917)
    text = "def f(x):\n    return 'é😀'\n"
    open_doc(client, text)
    for version in range(2, 302):
        changes = []
        for _ in range(rng.choice([1, 1, 2, 3])):  # several changes per notification
            lsp_range, start, end = random_range(rng, text, encoding)
            new = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 5)))
            text = text[:start] + new + text[end:]
            changes.append(types.TextDocumentContentChangePartial(range=lsp_range, text=new))
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=changes))
        if version % 50 == 0:
            copy = await request(client, "sparkedit/documentText", {"uri": URI})
            assert copy["text"] == text and copy["version"] == version
    assert any(ord(ch) > 0xFFFF for ch in text), "astral characters were exercised"


async def test_a_killed_engine_answers_empty_then_restarts(client):
    await initialize(client)
    open_doc(client, SAMPLE)
    assert items(await complete(client, 30, 8))
    old_pid = (await request(client, "sparkedit/status"))["enginePid"]
    os.kill(old_pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    client.statuses.clear()
    # New positions each time: a repeated request would be answered from the cache.
    assert items(await complete(client, 44, 33)) == []
    for _ in range(100):  # the notification may trail the response by a moment
        if any(s["state"] == "restarting" for s in client.statuses):
            break
        await asyncio.sleep(0.05)
    assert any(s["state"] == "restarting" for s in client.statuses), client.statuses
    assert items(await complete(client, 30, 31))
    new_pid = (await request(client, "sparkedit/status"))["enginePid"]
    assert new_pid and new_pid != old_pid


async def test_a_cancelled_request_answers_cancelled_and_the_next_one_works(client):
    await initialize(client)
    open_doc(client, SAMPLE)
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=30, character=8),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic))
    # Cancelled while the engine is still starting (the first request starts it):
    # the start is shared and must survive the cancellation of the request that began it.
    pending = asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="first"))
    await asyncio.sleep(0.05)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="first"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(pending, 30)
    assert items(await complete(client, 30, 8))
