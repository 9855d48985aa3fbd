"""The VS Code extension (editor_plugins/vscode): installed, built, tested and packaged
with npm, as a user or the release would. CI runs only pytest, so this is where the
extension's own `node --test` suite runs: its logic against a `vscode` stand-in, and the
protocol and the real `LanguageClient` against this repository's server (the venv's python
and the untrained model, passed as SPARKEDIT_PYTHON and SPARKEDIT_TEST_MODEL).

Skipped only when node or npm is not installed at all; any failing step fails with its
output. About a minute with a warm npm cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest
from fake_remote import load_fake_server

from engine.models import untrained_model_dir
from lsp_server.options import DEFAULTS, ServerOptions
from lsp_server.usage import BACKEND_CHOICES, QUANTS

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editor_plugins" / "vscode"
MANIFEST = json.loads((EXTENSION / "package.json").read_text())
SETTINGS = MANIFEST["contributes"]["configuration"]["properties"]
CLIENT_ONLY = {"sparkedit.serverPath", "sparkedit.serverArgs"}

needs_npm = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are not installed: the VS Code extension cannot be built here")



def run(args: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a step in the extension folder; fail the test with its output when it fails."""
    environment = {**os.environ, "npm_config_update_notifier": "false",
                   "npm_config_fund": "false", "npm_config_audit": "false", **(env or {})}
    try:
        done = subprocess.run(args, cwd=EXTENSION, env=environment, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) \
            else exc.stdout or ""
        pytest.fail(f"`{' '.join(args)}` took over {timeout:.0f} s:\n{output[-8000:]}")
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(args)}` failed (exit {done.returncode}):\n"
                    f"{done.stdout[-8000:]}\n{done.stderr[-8000:]}")
    return done.stdout + done.stderr


@needs_npm
def test_the_extension_installs_builds_passes_its_tests_and_packages(tmp_path):
    locked = (EXTENSION / "package-lock.json").exists()
    run(["npm", "ci"] if locked else ["npm", "install"], timeout=300)
    run(["npm", "run", "build"], timeout=120)
    # A remote that answers every edit with its region unchanged (tests/remote/fake_server.py).
    fake_server = load_fake_server()
    fake = fake_server.FakeServer({"coder-test": fake_server.Script(echo_prediction=True)})
    fake.start()
    try:
        output = run(["npm", "test"], timeout=300, env={
            "SPARKEDIT_PYTHON": sys.executable, "SPARKEDIT_TEST_MODEL": str(untrained_model_dir()),
            "SPARKEDIT_TEST_REMOTE_URL": fake.base_url, "CEREBRAS_API_KEY": "csk-vscode-test"})
    finally:
        fake.stop()
    assert "are not set" not in output, "the tests against the real server were skipped"
    assert fake.posts(), "the edit that changes nothing was asked of the remote"
    vsix = tmp_path / "sparkedit.vsix"
    run(["npm", "run", "package", "--", "--out", str(vsix)], timeout=180)
    assert vsix.is_file() and vsix.stat().st_size > 10_000
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
    assert {"extension/package.json", "extension/out/extension.js", "extension/readme.md",
            "extension/node_modules/vscode-languageclient/package.json"} <= names
    assert not any(n.startswith(("extension/src/", "extension/out/test", "extension/node_modules/"
                                 "typescript/", "extension/node_modules/@vscode/vsce/"))
                   for n in names), sorted(names)[:50]


def test_the_settings_are_the_servers_with_its_defaults():
    """Every setting but the server command is a server option, with the server's default,
    so that an untouched VS Code sends what the server would assume anyway."""
    wire = {"target": DEFAULTS.target, "budget": DEFAULTS.budget,
            "maxTokens": DEFAULTS.max_tokens, "languages": list(DEFAULTS.languages),
            "exclude": list(DEFAULTS.exclude), "maxFileBytes": DEFAULTS.max_file_bytes,
            "debounce.minMs": DEFAULTS.debounce_min_ms,
            "debounce.maxMs": DEFAULTS.debounce_max_ms, "nextEdit": DEFAULTS.next_edit,
            "backend": DEFAULTS.backend, "warmUp": DEFAULTS.warm_up,
            "warmBudget": DEFAULTS.warm_budget,
            # empty for "the server's default" (null on the wire)
            "model": "", "baseUrl": "", "statsFile": "", "quant": ""}
    assert len(fields(ServerOptions)) == len(wire), "a server option without a VS Code setting"
    assert {f"sparkedit.{key}" for key in wire} == set(SETTINGS) - CLIENT_ONLY
    for key, default in wire.items():
        assert SETTINGS[f"sparkedit.{key}"]["default"] == default, key
    assert SETTINGS["sparkedit.target"]["enum"] == ["wafer-sim", "cerebras", "openai"]
    assert SETTINGS["sparkedit.backend"]["enum"] == list(BACKEND_CHOICES)
    assert SETTINGS["sparkedit.quant"]["enum"] == ["", *QUANTS]


def test_the_manifest_declares_commands_keys_and_activation():
    commands = {c["command"] for c in MANIFEST["contributes"]["commands"]}
    assert {"sparkedit.acceptNextEdit", "sparkedit.dismissNextEdit", "sparkedit.editSelection",
            "sparkedit.showStatus", "sparkedit.requestNextEdit"} <= commands
    keys = {(k["command"], k["key"]): k["when"] for k in MANIFEST["contributes"]["keybindings"]}
    assert "sparkedit.nextEditVisible" in keys[("sparkedit.acceptNextEdit", "tab")]
    assert "sparkedit.nextEditVisible" in keys[("sparkedit.dismissNextEdit", "escape")]
    assert MANIFEST["engines"]["vscode"] == "^1.91.0"
    assert MANIFEST["main"] == "./out/extension.js"
    assert "onLanguage:python" in MANIFEST["activationEvents"]
    assert MANIFEST["dependencies"]["vscode-languageclient"].startswith("^11")
