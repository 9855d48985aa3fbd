"""The editor protocol through the real stdio server and engine: suggestion ids and
feedback, type-through without the engine, a keystroke cancelling the stale request, next
edits, instruction edits, and configuration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.lsp.client import LanguageClient as PlainClient
from pytest_lsp import ClientServerConfig, LanguageClient
from test_lsp_session import SAMPLE, URI, as_dict, complete, items, open_doc, request

from engine.models import untrained_model_dir


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "lsp_server.cli", "lsp",
                    "--model", str(untrained_model_dir())]))
async def client(lsp_client: LanguageClient):
    @lsp_client.feature("sparkedit/status")
    def on_status(params: Any) -> None:
        pass  # window/showMessage lands in pytest-lsp's own `messages`

    yield
    # bounded: a server that died in a failed test never answers (pytest-lsp would wait)
    await asyncio.wait_for(lsp_client.shutdown_session(), 30)


async def start(client: LanguageClient, options: dict | None = None) -> None:
    await client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities())),
        initialization_options={"statsFile": "off", **(options or {})}))


async def stats(client: LanguageClient) -> dict:
    return as_dict((await request(client, "sparkedit/status"))["stats"])


@contextmanager
def engine_frozen(pid: int):
    """SIGSTOP the engine: anything that needs it now waits; what does not, answers."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def engine_idle(pid: int, quiet_s: float = 0.5, limit_s: float = 60) -> None:
    """Until the engine has used no CPU for `quiet_s` (its work in the background done)."""
    def cpu_ticks() -> int:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    last, quiet_since = cpu_ticks(), time.monotonic()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = cpu_ticks()
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return


def change(client: LanguageClient, version: int, line: int, character: int, text: str,
           uri: str = URI) -> None:
    at = types.Position(line=line, character=character)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=at, end=at), text=text)]))


async def first_suggestion(client: LanguageClient, min_length: int = 2, skip: tuple = ()
                           ) -> tuple[int, int, types.InlineCompletionItem]:
    """A position of the sample where the (untrained) model suggests something."""
    for line in (30, 36, 20, 44, 12, 50):
        if line in skip:
            continue
        text = SAMPLE.splitlines()[line]
        got = items(await complete(client, line, len(text)))
        if got and len(got[0].insert_text) >= min_length:
            return line, len(text), got[0]
    raise AssertionError("no suggestion anywhere in the sample")


async def test_items_carry_an_id_and_feedback_reaches_the_stats(client):
    await start(client)
    open_doc(client, SAMPLE)
    line, col, item = await first_suggestion(client)
    assert item.command is not None and item.command.command == "sparkedit.accept"
    (suggestion_id,) = item.command.arguments
    client.protocol.notify("sparkedit/didShow", {"id": suggestion_id})
    client.protocol.notify("sparkedit/didAccept", {"id": suggestion_id, "acceptedLength": 1})
    client.protocol.notify("sparkedit/didAccept", {"id": 5})  # malformed: ignored
    _, _, other = await first_suggestion(client, skip=(line,))
    assert other.command.arguments[0] != suggestion_id
    client.protocol.notify("sparkedit/didShow", {"id": other.command.arguments[0]})
    client.protocol.notify("sparkedit/didReject", {"id": other.command.arguments[0]})
    summary = await stats(client)
    assert summary["shown"] == 2 and summary["rejected"] == 1
    assert summary["partiallyAccepted"] == 1 and summary["acceptanceRate"] == 0.5
    assert summary["requests"] >= 2 and summary["latencyMs"]["count"] >= 2


async def test_typing_through_a_suggestion_answers_without_the_engine(client):
    await start(client)
    open_doc(client, SAMPLE)
    line, col, item = await first_suggestion(client)
    pid = (await request(client, "sparkedit/status"))["enginePid"]
    before = await stats(client)
    with engine_frozen(pid):
        change(client, 2, line, col, item.insert_text[0])
        got = items(await asyncio.wait_for(complete(client, line, col + 1), 5))
    assert got and got[0].insert_text == item.insert_text[1:]
    after = await stats(client)
    assert after["answeredFromCache"] == before["answeredFromCache"] + 1


async def test_a_keystroke_cancels_the_request_in_flight(client):
    await start(client, {"debounce": {"minMs": 0, "maxMs": 0}})
    open_doc(client, SAMPLE)
    await first_suggestion(client)  # the engine is up
    pid = (await request(client, "sparkedit/status"))["enginePid"]
    with engine_frozen(pid):
        stale = asyncio.ensure_future(complete(client, 30, 8))
        await asyncio.sleep(0.3)  # the request is now waiting for the frozen engine
        change(client, 2, 30, 8, "x")
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(stale, 5)
    assert (await stats(client))["cancelled"] >= 1
    assert isinstance(items(await complete(client, 30, 9)), list)  # still serving


async def test_next_edit_answers_versioned_edits_that_apply_cleanly(client):
    await start(client)
    text = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\nprint(area(4, 5))\n"
    open_doc(client, text)
    params = {"textDocument": {"uri": URI, "version": 1},
              "position": {"line": 4, "character": 6}}
    answer = await asyncio.wait_for(request(client, "sparkedit/nextEdit", params), 60)
    assert isinstance(answer["edits"], list)
    if answer["edits"]:  # an untrained model may well propose nothing
        assert answer["textDocument"] == {"uri": URI, "version": 1}
        assert isinstance(answer["id"], str)
        lines = text.splitlines(keepends=True)
        for edit in answer["edits"]:
            rng = as_dict(edit["range"])
            assert 0 <= as_dict(rng["start"])["line"] <= as_dict(rng["end"])["line"] \
                < len(lines) + 1
    stale = {**params, "textDocument": {"uri": URI, "version": 0}}
    assert (await request(client, "sparkedit/nextEdit", stale)) == {"edits": []}
    for bad, field in ((None, "textDocument.uri"), ({}, "textDocument.uri"),
                       ({"textDocument": {"uri": URI}}, "position"),
                       ({"textDocument": {"uri": URI, "version": "x"},
                         "position": params["position"]}, "textDocument.version")):
        with pytest.raises(JsonRpcInvalidParams, match=field):
            await request(client, "sparkedit/nextEdit", bad)
    unknown = {"textDocument": {"uri": "file:///nope.py"}, "position": params["position"]}
    assert (await request(client, "sparkedit/nextEdit", unknown)) == {"edits": []}


async def test_edit_selection_answers_a_versioned_workspace_edit(client):
    await start(client)
    text = "def area(w, h):\n    return w * h\n"
    open_doc(client, text)
    rng = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}}
    answer = await asyncio.wait_for(client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="sparkedit.editSelection",
                                   arguments=[URI, rng, "add type hints"])), 60)
    if answer is not None:
        change_set = as_dict(answer)
        (doc_change,) = change_set["documentChanges"] if "documentChanges" in change_set \
            else change_set["document_changes"]
        doc_change = as_dict(doc_change)
        identifier = as_dict(doc_change.get("textDocument") or doc_change["text_document"])
        assert identifier["uri"] == URI and identifier["version"] == 1
    else:  # nothing to apply is never silent: the server says why
        assert any(m.message.startswith("sparkedit: n") for m in client.messages)
    missing = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="sparkedit.editSelection", arguments=["file:///nope.py", rng, "add type hints"]))
    assert missing is None
    for _ in range(50):
        if any("not open" in m.message for m in client.messages):
            break
        await asyncio.sleep(0.05)
    assert any(m.message == "sparkedit: no edit: the document is not open or the range is "
               "outside it" for m in client.messages)
    with pytest.raises(JsonRpcException):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="sparkedit.editSelection", arguments=[URI, rng]))
    with pytest.raises(JsonRpcException):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="sparkedit.editSelection", arguments=[URI, {"start": 1}, "x"]))


async def test_configuration_turns_languages_off_and_on_and_reports_bad_settings(client):
    await start(client, {"languages": ["rust"], "budget": "lots"})
    open_doc(client, SAMPLE)
    assert items(await complete(client, 30, 8)) == []  # python is not enabled
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"sparkedit": {"languages": [], "maxTokens": 0}}))
    for _ in range(50):
        if any("maxTokens" in m.message for m in client.messages):
            break
        await asyncio.sleep(0.05)
    assert any("maxTokens" in m.message for m in client.messages), client.messages
    _, _, item = await first_suggestion(client, min_length=1)
    assert item.insert_text


def position_after(text: str, line: int, character: int, inserted: str) -> tuple[int, int]:
    """Where the cursor stands after `inserted` is typed at (line, character) (ASCII)."""
    lines = inserted.split("\n")
    if len(lines) == 1:
        return line, character + len(inserted)
    return line + len(lines) - 1, len(lines[-1])


async def test_after_an_accept_the_next_suggestion_is_ready_without_the_engine(client):
    await start(client)
    open_doc(client, SAMPLE)
    line, col, item = await first_suggestion(client)
    client.protocol.notify("sparkedit/didAccept", {"id": item.command.arguments[0]})
    pid = (await request(client, "sparkedit/status"))["enginePid"]
    await asyncio.sleep(0.3)
    await engine_idle(pid)  # the server computes the next suggestion meanwhile
    before = await stats(client)
    with engine_frozen(pid):
        change(client, 2, line, col, item.insert_text)  # the editor applies the accept
        next_line, next_col = position_after(SAMPLE, line, col, item.insert_text)
        got = items(await asyncio.wait_for(complete(client, next_line, next_col), 5))
    assert got and got[0].insert_text
    assert (await stats(client))["answeredFromCache"] == before["answeredFromCache"] + 1


async def test_next_edit_ranges_follow_the_negotiated_utf16_encoding(client):
    await start(client)
    text = 'label = "é😀"\nlabel = label.strip()\nprint(label)\n'
    open_doc(client, text)
    answer = await asyncio.wait_for(request(client, "sparkedit/nextEdit", {
        "textDocument": {"uri": URI, "version": 1}, "position": {"line": 1, "character": 5}}),
        60)
    lines = text.split("\n")
    for edit in answer["edits"]:  # every position must be a valid utf-16 position
        for end in ("start", "end"):
            pos = as_dict(as_dict(edit["range"])[end])
            units = len(lines[pos["line"]].encode("utf-16-le")) // 2
            assert 0 <= pos["character"] <= units
    # The server's copy is still exact after applying them as the client would.
    version = 2
    for edit in reversed(answer["edits"]):
        rng = as_dict(edit["range"])
        first, last = as_dict(rng["start"]), as_dict(rng["end"])
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(
                    start=types.Position(line=first["line"], character=first["character"]),
                    end=types.Position(line=last["line"], character=last["character"])),
                text=edit["newText"])]))
        version += 1
    copy = await request(client, "sparkedit/documentText", {"uri": URI})
    assert copy["version"] == version - 1 if answer["edits"] else copy["version"] == 1


async def test_the_stats_file_holds_the_sessions_feedback_after_shutdown(tmp_path):
    stats_file = tmp_path / "state" / "stats.json"
    lsp = PlainClient("stats-test", "0")
    await lsp.start_io(sys.executable, "-m", "lsp_server.cli", "lsp", "--log-level", "WARNING",
                       "--model", str(untrained_model_dir()))
    try:
        await asyncio.wait_for(lsp.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"statsFile": str(stats_file)})), 30)
        lsp.initialized(types.InitializedParams())
        open_doc(lsp, SAMPLE)
        _, _, item = await first_suggestion(lsp)
        lsp.protocol.notify("sparkedit/didShow", {"id": item.command.arguments[0]})
        lsp.protocol.notify("sparkedit/didAccept", {"id": item.command.arguments[0]})
        await asyncio.wait_for(lsp.shutdown_async(None), 30)
        lsp.exit(None)
    finally:
        await asyncio.sleep(0.3)
        await lsp.stop()
    saved = json.loads(stats_file.read_text())
    assert saved["shown"] == 1 and saved["accepted"] == 1 and saved["acceptanceRate"] == 1.0
    assert saved["lifetime"]["accepted"] >= 1
    assert oct(stats_file.stat().st_mode & 0o777) == "0o600"
