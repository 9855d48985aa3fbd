"""pygls files the future of each notification handled by one of its generator wrappers
(didOpen, didChange, didClose) under a fresh uuid and never removes it; the server drops
the finished ones, so 20,000 keystrokes do not leave 20,000 futures behind."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
import asyncio, json, os
from lsp_server.server import build_server


async def main():
    protocol = build_server().protocol

    def send(message):
        protocol.handle_message(json.loads(json.dumps({"jsonrpc": "2.0", **message}),
                                           object_hook=protocol.structure_message))

    send({"id": 1, "method": "initialize", "params": {
        "capabilities": {}, "initializationOptions": {"statsFile": "off"}}})
    await asyncio.sleep(0.1)
    uri = "file:///tmp/futures.py"
    send({"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}}})
    at = {"line": 0, "character": 0}
    for version in range(2, 502):
        send({"method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": at, "end": at}, "text": "a"}]}})
    await asyncio.sleep(0.1)
    print(len(protocol._request_futures), flush=True)
    os._exit(0)  # the server's background work would keep the loop alive


asyncio.run(main())
'''


def test_finished_notification_futures_are_not_kept() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) <= 2, done.stdout  # 500 without the fix
