"""The context engine through the real stdio server: a workspace root, background indexing
with work-done progress, definitions from another file, watched-file updates, exclusions."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import ClientServerConfig, LanguageClient
from test_lsp_session import as_dict, complete, items, request  # same folder

from engine.models import untrained_model_dir

SECRET = "sk-proj-" + "Q" * 40
IGNORED_MARKER = "ignored_marker_7f3a"

UTIL = '''"""Helpers."""


def parse_config(path, strict=False):
    """Read a config file into a dict."""
    with open(path) as f:
        return dict(line.split("=", 1) for line in f if "=" in line)
'''

MAIN = '''import util


def load(path):
    config = util.parse_config(path, strict=True)
    return config
'''


def make_workspace(root: Path) -> None:
    (root / ".git").mkdir()
    (root / "util.py").write_text(UTIL)
    (root / "main.py").write_text(MAIN)
    (root / ".env").write_text(f"OPENAI_API_KEY={SECRET}\n")
    (root / ".gitignore").write_text("scratch.py\n")
    (root / "scratch.py").write_text(f"def scratch():\n    return '{IGNORED_MARKER}'\n")


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "lsp_server.cli", "lsp",
                    "--model", str(untrained_model_dir())]))
async def client(lsp_client: LanguageClient):
    lsp_client.registrations = []  # progress: pytest-lsp's own `progress_reports`

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def on_register(params: types.RegistrationParams) -> None:
        lsp_client.registrations.extend(r.method for r in params.registrations)

    yield
    # bounded: a server that died in a failed test never answers (pytest-lsp would wait)
    await asyncio.wait_for(lsp_client.shutdown_session(), 30)


async def start(client: LanguageClient, root: Path) -> None:
    make_workspace(root)
    await client.initialize_session(types.InitializeParams(
        root_uri=root.as_uri(),
        capabilities=types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=True),
            workspace=types.WorkspaceClientCapabilities(
                did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
                    dynamic_registration=True)),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities())),
        initialization_options={"exclude": ["*.secret.py"]}))
    for _ in range(400):  # the index is built in the background
        reports = client.progress_reports.get("sparkedit/index", [])
        if reports and isinstance(reports[-1], types.WorkDoneProgressEnd):
            assert isinstance(reports[0], types.WorkDoneProgressBegin)
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no end of indexing progress: {client.progress_reports}")


def open_file(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                             text=path.read_text() if text is None else text)))
    return uri


async def context_at(client: LanguageClient, uri: str, line: int, character: int,
                     budget: int = 900) -> dict:
    answer = await request(client, "sparkedit/context", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
        "budget": budget})
    assert answer is not None
    return answer


def all_text(context: dict) -> str:
    return "\n".join(as_dict(s)["text"] for s in context["segments"])


async def test_definition_from_an_imported_file_enters_the_context(client, tmp_path):
    await start(client, tmp_path)
    assert types.WORKSPACE_DID_CHANGE_WATCHED_FILES in client.registrations
    assert "files indexed" in (client.progress_reports["sparkedit/index"][-1].message or "")
    uri = open_file(client, tmp_path / "main.py")
    context = await context_at(client, uri, 4, 30)
    assert context["total_tokens"] <= 900
    text = all_text(context)
    assert "def parse_config(path, strict=False):" in text
    paths = {as_dict(s)["path"] for s in context["segments"]}
    assert "util.py" in paths
    assert SECRET not in text and IGNORED_MARKER not in text
    # Completion still answers with the workspace context in the prompt.
    assert isinstance(items(await complete(client, 4, 30, uri)), list)


async def test_watched_file_changes_reach_the_index(client, tmp_path):
    await start(client, tmp_path)
    (tmp_path / "util.py").write_text(UTIL + "\n\ndef fresh_helper(n):\n    return n * 2\n")
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=(tmp_path / "util.py").as_uri(), type=types.FileChangeType.Changed)]))
    text = MAIN.replace("    return config\n", "    return util.fresh_helper(config)\n")
    uri = open_file(client, tmp_path / "main.py", text)
    context = await context_at(client, uri, 5, 20)
    assert "def fresh_helper(n):" in all_text(context)


async def test_bad_context_requests_answer_null_and_the_server_keeps_serving(client, tmp_path):
    """Malformed params: -32602 naming the field; well-formed with nothing to show: null."""
    await start(client, tmp_path)
    uri = open_file(client, tmp_path / "main.py")
    for params, field in ((None, "textDocument.uri"), ({}, "textDocument.uri"),
                          ({"textDocument": {"uri": uri}}, "position"),
                          ({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0},
                            "budget": -5}, "budget")):
        with pytest.raises(JsonRpcInvalidParams, match=field):
            await request(client, "sparkedit/context", params)
    for params in ({"textDocument": {"uri": uri}, "position": {"line": 99, "character": 0}},
                   {"textDocument": {"uri": "file:///nowhere.py"},
                    "position": {"line": 0, "character": 0}}):
        assert await request(client, "sparkedit/context", params) is None
    assert (await context_at(client, uri, 0, 0))["total_tokens"] > 0
