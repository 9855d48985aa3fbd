"""The language server on a remote target: the same LSP surface, the fake Cerebras server's
text as ghost text, and nothing sensitive in what leaves the machine."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from fake_server import Failure, FakeServer, Script
from lsprotocol import types
from pygls.lsp.client import LanguageClient

KEY = "csk-LSP-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
ENV_SECRET = "hunter2-database-password"
TOKEN_IN_CODE = "ghp_" + "Zz9Yy8Xx7W" * 4


async def start_remote_lsp(client: LanguageClient, fake: FakeServer, root: Path) -> None:
    """`sparkedit lsp` on the Cerebras target at the fake server, initialized over stdio."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKEDIT_REMOTE_")}
    env.update(CEREBRAS_API_KEY=KEY, SPARKEDIT_REMOTE_BACKOFF="0.02")
    await client.start_io(sys.executable, "-m", "lsp_server.cli", "lsp", "--target", "cerebras",
                          "--base-url", fake.base_url, "--model", "coder-test", env=env)
    await asyncio.wait_for(client.initialize_async(types.InitializeParams(
        root_uri=root.as_uri(), capabilities=types.ClientCapabilities(),
        initialization_options={"statsFile": "off"})), 30)
    client.initialized(types.InitializedParams())


def open_python(client: LanguageClient, path: Path, text: str) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=path.as_uri(), language_id="python",
                                             version=1, text=text)))


async def inline_items(client: LanguageClient, uri: str, line: int, character: int
                       ) -> list[types.InlineCompletionItem]:
    answer = await asyncio.wait_for(client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked))), 60)
    return answer.items if isinstance(answer, types.InlineCompletionList) else answer


async def test_ghost_text_from_a_remote_target_with_redacted_context(tmp_path: Path):
    fake = FakeServer({"coder-test": Script(chunks=("total = ", "a + b",))}).start()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".env").write_text(f"DB_PASSWORD={ENV_SECRET}\n")
    main = tmp_path / "main.py"
    text = f'GITHUB = "{TOKEN_IN_CODE}"\n\n\ndef add(a, b):\n    \n'
    main.write_text(text)
    client = LanguageClient("remote-test", "0")
    stderr_task: asyncio.Task[bytes] | None = None
    try:
        await start_remote_lsp(client, fake, tmp_path)
        stderr_task = asyncio.create_task(client._server.stderr.read())
        open_python(client, main, text)
        items = await inline_items(client, main.as_uri(), 4, 4)
        assert items and items[0].insert_text == "total = a + b"
        status = await asyncio.wait_for(client.protocol.send_request_async(
            "sparkedit/status", None), 10)
        assert KEY not in json.dumps(status, default=str)
        await asyncio.wait_for(client.shutdown_async(None), 20)
        client.exit(None)
    finally:
        await asyncio.sleep(0.3)
        await client.stop()
        fake.stop()
    sent = json.dumps([r.body for r in fake.posts()])
    assert sent and TOKEN_IN_CODE not in sent and "REDACTED" in sent
    assert ENV_SECRET not in sent
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in fake.posts())
    assert stderr_task is not None
    logs = (await stderr_task).decode(errors="replace")
    assert KEY not in logs


def plain(value: Any) -> Any:
    """pygls's answer to a custom request (named tuples) as plain dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


FUNCTION = '''def mean(values):
    total = 0
    for value in values:
        total += value
    print("summing done")
    flush_logs()
    return total / len(values)
'''


async def test_the_quality_gates_hold_back_bad_edits_and_say_why(tmp_path: Path):
    """A rewrite that deletes lines nobody pointed at is not shown as a next edit (and is
    counted); an instruction edit that does not parse is refused with the reason."""
    renamed = FUNCTION.replace("    total = 0", "    acc = 0")
    destructive = renamed.replace('    print("summing done")\n    flush_logs()\n', "")
    broken = FUNCTION.replace("def mean(values):", "def mean(values)")
    fake = FakeServer({"coder-test": Script(chunks=(destructive,))}).start()
    (tmp_path / ".git").mkdir()
    main = tmp_path / "stats.py"
    main.write_text(FUNCTION)
    client = LanguageClient("gates-test", "0")
    messages: list[str] = []
    client.feature(types.WINDOW_SHOW_MESSAGE)(lambda params: messages.append(params.message))
    uri = main.as_uri()
    try:
        await start_remote_lsp(client, fake, tmp_path)
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                 text=FUNCTION)))
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=1, character=4),
                                  end=types.Position(line=1, character=9)), text="acc")]))
        answer = await asyncio.wait_for(client.protocol.send_request_async(
            "sparkedit/nextEdit", {"textDocument": {"uri": uri, "version": 2},
                                   "position": {"line": 1, "character": 7}}), 60)
        assert fake.posts(), "the remote was asked"
        assert plain(answer)["edits"] == []
        status = await asyncio.wait_for(client.protocol.send_request_async(
            "sparkedit/status", None), 10)
        stats = plain(status)["stats"]
        assert stats["suppressedEdits"] == 1 and stats["suppressedBy"] == {"destructive": 1}

        fake.scripts["coder-test"] = Script(chunks=(broken,))
        selection = {"start": {"line": 0, "character": 0}, "end": {"line": 7, "character": 0}}
        refused = await asyncio.wait_for(client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="sparkedit.editSelection",
                                       arguments=[uri, selection, "add a docstring"])), 60)
        assert refused is None
        for _ in range(50):
            if messages:
                break
            await asyncio.sleep(0.05)
        assert messages == ["sparkedit: nothing was changed: the proposed edit does not parse"]

        # The model gives the selection back unchanged: an empty answer, and it is said.
        messages.clear()
        fake.scripts["coder-test"] = Script(echo_prediction=True)
        unchanged = await asyncio.wait_for(client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="sparkedit.editSelection",
                                       arguments=[uri, selection, "add a docstring"])), 60)
        assert unchanged is None
        for _ in range(50):
            if messages:
                break
            await asyncio.sleep(0.05)
        assert messages == ["sparkedit: no change proposed for the selection"]
    finally:  # shut down even after a failed assertion: the engine holds the server's pipes
        await asyncio.wait_for(client.shutdown_async(None), 20)
        client.exit(None)
        await asyncio.wait_for(client.stop(), 30)
        fake.stop()


async def test_a_refused_key_is_said_once_in_one_line_and_serving_goes_on(tmp_path: Path):
    fake = FakeServer({"coder-test": Script(always=Failure(401, f"bad key {KEY}"))}).start()
    (tmp_path / ".git").mkdir()
    main = tmp_path / "main.py"
    text = "def add(a, b):\n    \n"
    main.write_text(text)
    client = LanguageClient("remote-test", "0")
    messages: list[str] = []
    client.feature(types.WINDOW_SHOW_MESSAGE)(lambda params: messages.append(params.message))
    stderr_task: asyncio.Task[bytes] | None = None

    async def complete() -> list[types.InlineCompletionItem]:
        return await inline_items(client, main.as_uri(), 1, 4)

    async def status() -> dict:
        return plain(await asyncio.wait_for(client.protocol.send_request_async(
            "sparkedit/status", None), 10))

    try:
        await start_remote_lsp(client, fake, tmp_path)
        stderr_task = asyncio.create_task(client._server.stderr.read())
        open_python(client, main, text)
        assert await complete() == [] and await complete() == []
        refused = await status()
        fake.scripts["coder-test"] = Script(chunks=("total = ", "a + b"))
        items = await complete()
        recovered = await status()
        await asyncio.wait_for(client.shutdown_async(None), 20)
        client.exit(None)
    finally:
        await asyncio.sleep(0.3)
        await client.stop()
        fake.stop()
    said = [m for m in messages if "401" in m]
    assert len(said) == 1 and "CEREBRAS_API_KEY" in said[0] and "\n" not in said[0], messages
    assert refused["state"] == "error" and "401" in refused["message"]
    assert items and items[0].insert_text == "total = a + b"
    assert recovered["state"] == "ready"
    assert stderr_task is not None
    logs = (await stderr_task).decode(errors="replace")
    assert KEY not in logs and KEY not in json.dumps(messages) and "Traceback" not in logs
