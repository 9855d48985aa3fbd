"""A client that disconnects mid-request: the server exits and takes its engine with it."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from engine.models import untrained_model_dir

SAMPLE = "def f(x):\n    return x\n"


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


async def read_message(stdout: asyncio.StreamReader) -> dict:
    length = 0
    while (line := await stdout.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(await stdout.readexactly(length))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purpose
        return f.read().split()[2] != "Z"


async def test_a_client_that_disconnects_mid_request_stops_server_and_engine():
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lsp_server.cli", "lsp", "--log-level", "WARNING",
        "--model", str(untrained_model_dir()),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    assert server.stdin is not None and server.stdout is not None
    uri = "file:///tmp/disconnect.py"
    server.stdin.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                              "params": {"capabilities": {},
                                         "initializationOptions": {"statsFile": "off"}}}))
    server.stdin.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    server.stdin.write(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SAMPLE}}}))
    server.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "textDocument/inlineCompletion",
                              "params": {"textDocument": {"uri": uri},
                                         "position": {"line": 1, "character": 12},
                                         "context": {"triggerKind": 2}}}))
    await server.stdin.drain()
    engine_pid = None
    while engine_pid is None:  # the engine starts for the request; its status names it
        message = await asyncio.wait_for(read_message(server.stdout), 60)
        if message.get("method") == "sparkedit/status":
            engine_pid = message["params"].get("enginePid")
    server.stdin.close()  # gone, with a request possibly still in flight
    assert await asyncio.wait_for(server.wait(), 20) is not None
    for _ in range(100):
        if not alive(engine_pid):
            break
        await asyncio.sleep(0.05)
    assert not alive(engine_pid), "the engine outlived its language server"


async def test_a_request_without_params_is_answered():
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lsp_server.cli", "lsp", "--log-level", "WARNING",
        "--model", str(untrained_model_dir()),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    assert server.stdin is not None and server.stdout is not None
    try:
        server.stdin.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                  "params": {"capabilities": {},
                                             "initializationOptions": {"statsFile": "off"}}}))
        server.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "sparkedit/status"}))
        await server.stdin.drain()
        answers: dict = {}
        while 2 not in answers:
            message = await asyncio.wait_for(read_message(server.stdout), 30)
            if "id" in message:
                answers[message["id"]] = message
        assert answers[2]["result"]["state"] == "stopped"
    finally:
        server.kill()
        await server.wait()
