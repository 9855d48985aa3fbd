"""Every request is answered, however malformed: bad params get -32602 naming the field, an
unknown method -32601, a bad envelope -32600, an unparsable body -32700; a malformed
notification changes nothing; the server keeps serving and prints no traceback."""

from __future__ import annotations

import asyncio
import sys

import pytest
from test_disconnect import frame, read_message

from engine.models import untrained_model_dir

URI = "file:///tmp/malformed.py"
TEXT = "def f(x):\n    return x\n"
DOC = {"uri": URI}

# (request without its id, expected code, words the message must contain)
CASES: list[tuple[dict, int, tuple[str, ...]]] = [
    ({"method": "textDocument/inlineCompletion", "params": {
        "textDocument": DOC, "position": {"line": 0, "character": 0}, "context": "x"}},
     -32602, ("params.context",)),
    ({"method": "textDocument/inlineCompletion", "params": {
        "textDocument": DOC, "position": {"line": 0, "character": -1},
        "context": {"triggerKind": 1}}},
     -32602, ("params.position", ">= 0", "-1")),
    ({"method": "textDocument/inlineCompletion", "params": {
        "textDocument": DOC, "position": None, "context": {"triggerKind": 1}}},
     -32602, ("params.position",)),
    ({"method": "textDocument/inlineCompletion", "params": "garbage"}, -32602, ("params",)),
    ({"method": "sparkedit/nextEdit", "params": {"position": {"line": 0, "character": 0}}},
     -32602, ("params.textDocument.uri", "required")),
    ({"method": "sparkedit/nextEdit", "params": {"textDocument": DOC,
                                                 "position": {"line": "0", "character": 0}}},
     -32602, ("params.position.line",)),
    ({"method": "sparkedit/context", "params": {
        "textDocument": DOC, "position": {"line": 0, "character": 0}, "budget": "x"}},
     -32602, ("params.budget",)),
    ({"method": "sparkedit/documentText", "params": {"uri": 5}},
     -32602, ("params.uri", "string")),
    ({"method": "workspace/executeCommand", "params": {"command": "sparkedit.editSelection",
                                                       "arguments": [URI]}},
     -32602, ("sparkedit.editSelection",)),
    ({"method": "no/suchMethod", "params": {}}, -32601, ("no/suchMethod",)),
    ({"jsonrpc": "1.0", "method": "sparkedit/status"}, -32600, ("jsonrpc",)),
]


async def start_server() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lsp_server.cli", "lsp", "--model", str(untrained_model_dir()),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def answer(server: asyncio.subprocess.Process, msg_id: object) -> dict:
    assert server.stdout is not None
    while True:
        message = await asyncio.wait_for(read_message(server.stdout), 30)
        if "method" not in message and message.get("id") == msg_id:
            return message


def send(server: asyncio.subprocess.Process, message: dict | bytes) -> None:
    assert server.stdin is not None
    if isinstance(message, bytes):
        server.stdin.write(f"Content-Length: {len(message)}\r\n\r\n".encode() + message)
    else:
        server.stdin.write(frame({"jsonrpc": "2.0", **message}))


@pytest.fixture
async def server():
    proc = await start_server()
    send(proc, {"id": 0, "method": "initialize", "params": {
        "capabilities": {}, "initializationOptions": {"statsFile": "off"}}})
    await answer(proc, 0)
    send(proc, {"method": "initialized", "params": {}})
    send(proc, {"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": URI, "languageId": "python", "version": 1, "text": TEXT}}})
    yield proc
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


async def test_malformed_requests_are_answered_with_the_field_named(server) -> None:
    for i, (message, code, words) in enumerate(CASES, start=1):
        send(server, {**message, "id": i})
        reply = await answer(server, i)
        assert reply["error"]["code"] == code, (message, reply)
        assert all(w in reply["error"]["message"] for w in words), (words, reply)
    # envelopes whose id cannot be used, and bodies that are not JSON: answered with id null
    for body, code in ((b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "sparkedit/status"}',
                        -32600),
                       (b'[{"jsonrpc": "2.0", "id": 99, "method": "sparkedit/status"}]', -32600),
                       (b'{"jsonrpc": "2.0", "id": 98, "method"', -32700),
                       (b"\xff\xfe not utf-8", -32700)):
        send(server, body)
        reply = await answer(server, None)
        assert reply["error"]["code"] == code, (body, reply)
    # a malformed notification changes nothing: the document is as opened
    send(server, {"method": "textDocument/didChange", "params": {
        "textDocument": {"uri": URI, "version": 2},
        "contentChanges": [{"range": {"start": {"line": -3, "character": 0},
                                      "end": {"line": 0, "character": 1}}, "text": "X"}]}})
    send(server, {"id": 100, "method": "sparkedit/documentText", "params": {"uri": URI}})
    assert (await answer(server, 100))["result"] == {"uri": URI, "version": 1, "text": TEXT}
    # well-formed requests with nothing to propose keep the contract's empty answers
    send(server, {"id": 101, "method": "sparkedit/documentText",
                  "params": {"uri": "file:///never/opened.py"}})
    assert (await answer(server, 101))["result"] is None
    send(server, {"id": 102, "method": "shutdown"})
    assert "error" not in await answer(server, 102)
    send(server, {"id": 103, "method": "sparkedit/status"})
    late = await answer(server, 103)
    assert late["error"]["code"] == -32600 and "shutting down" in late["error"]["message"]
    send(server, {"method": "exit"})
    assert server.stdin is not None
    await server.stdin.drain()
    await asyncio.wait_for(server.wait(), 20)
    assert server.stderr is not None
    log = (await server.stderr.read()).decode(errors="replace")
    assert "Traceback" not in log, log


async def test_requests_without_params_and_with_null_params(server) -> None:
    send(server, {"id": 7, "method": "sparkedit/status"})
    assert (await answer(server, 7))["result"]["state"] == "stopped"
    send(server, {"id": 8, "method": "sparkedit/nextEdit", "params": None})
    reply = await answer(server, 8)
    assert reply["error"]["code"] == -32602 and "textDocument.uri" in reply["error"]["message"]
