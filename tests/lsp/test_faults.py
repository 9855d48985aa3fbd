"""Faults around the server: a statistics folder that is full (ENOSPC on a tiny tmpfs) or
read-only (a read-only mount: permissions do not stop root) is said once, in one line, and
serving goes on; a missing model folder is said once and every request is answered; an
engine whose language server is killed outright exits. No traceback.

The tmpfs is mounted in a private user and mount namespace (`unshare -rm`), so the test
needs no privileges and leaves nothing mounted; where namespaces are not allowed it skips."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess

import pytest
from stdio_server import StdioServer
from test_disconnect import alive

URI = "file:///tmp/faults/main.py"
TEXT = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"
MOUNTS = {
    # 16 KiB of tmpfs, then filled: the statistics file cannot be written (ENOSPC)
    "full": 'mount -t tmpfs -o size=16k tmpfs "$0" && (head -c 65536 /dev/zero > "$0/filler"'
            ' 2>/dev/null; true) && exec "$@"',
    "read-only": 'mount -t tmpfs -o ro,size=16k tmpfs "$0" && exec "$@"',
}
WHY = {"full": "No space left on device", "read-only": "Read-only file system"}


def namespaces_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.parametrize("fault", sorted(MOUNTS))
async def test_a_stats_folder_that_cannot_be_written_is_said_once_and_serving_goes_on(
        fault: str, tmp_path) -> None:
    if not namespaces_allowed():
        pytest.skip("user and mount namespaces are not allowed here (unshare -rm)")
    folder = tmp_path / "stats"
    folder.mkdir()
    server = await StdioServer.start(
        prefix=["unshare", "-rm", "sh", "-c", MOUNTS[fault], str(folder)],
        init_options={"statsFile": str(folder / "stats.json")})
    try:
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": TEXT}})
        said = await server.notification("window/showMessage", containing="statistics")
        message = said["params"]["message"]
        assert "could not save statistics" in message and WHY[fault] in message
        assert "\n" not in message and said["params"]["type"] == 2  # one line, a warning
        for line in range(3):  # still serving
            answer = await server.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": URI}, "position": {"line": line, "character": 0},
                "context": {"triggerKind": 1}}, 60)
            assert "result" in answer, answer
        status = (await server.request("sparkedit/status", None))["result"]
        assert WHY[fault] in status["statsFile"]["problem"]
        log = await server.shutdown()  # saves once more: not said again
    finally:
        await server.kill()
    assert not [m for m in server.notifications if m["method"] == "window/showMessage"
                and "could not save" in m["params"]["message"]]
    assert log.count("could not save statistics") == 1 and "Traceback" not in log
    assert not (folder / "stats.json").exists()  # the mount was the namespace's own


async def test_a_missing_model_folder_is_said_once_and_every_request_is_answered(tmp_path):
    missing = tmp_path / "no-model"
    server = await StdioServer.start(model=str(missing), root_uri=tmp_path.as_uri())
    try:
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": TEXT}})
        for line in range(3):
            answer = await server.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": URI}, "position": {"line": line, "character": 0},
                "context": {"triggerKind": 1}}, 60)
            assert answer.get("result") == [], answer
        status = (await server.request("sparkedit/status", None))["result"]
        copy = (await server.request("sparkedit/documentText", {"uri": URI}))["result"]
        log = await server.shutdown()
    finally:
        await server.kill()
    said = [m["params"]["message"] for m in server.notifications
            if m["method"] == "window/showMessage"]
    assert len(said) == 1 and str(missing) in said[0] and "\n" not in said[0], said
    assert status["state"] == "error" and "cannot load the model" in status["message"]
    assert copy["text"] == TEXT
    assert "Traceback" not in log


async def test_an_engine_whose_language_server_is_killed_outright_exits(tmp_path):
    server = await StdioServer.start()
    try:
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": TEXT}})
        await server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": URI}, "position": {"line": 1, "character": 4},
            "context": {"triggerKind": 1}}, 60)
        engine = server.engine_pid()
        assert engine is not None and alive(engine)
        os.kill(server.process.pid, signal.SIGKILL)  # no chance to stop its engine
        await asyncio.wait_for(server.process.wait(), 10)
        for _ in range(100):
            if not alive(engine):
                break
            await asyncio.sleep(0.1)
        assert not alive(engine), "the engine outlived a killed language server"
    finally:
        await server.kill()
