"""`sparkedit context` as a subprocess: the contract's JSON, exact totals, privacy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SECRET = "ghp_" + "a1B2c3D4e5" * 4  # a GitHub token's shape

UTIL = '''def parse_config(path, strict=False):
    """Read a config file into a dict."""
    return {}
'''

MAIN = f'''from util import parse_config

TOKEN = "{SECRET}"


def load(path):
    return parse_config(path)
'''


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsp_server.cli", "context", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def workspace(root: Path) -> Path:
    (root / ".git").mkdir()
    (root / "util.py").write_text(UTIL)
    (root / ".env").write_text("DATABASE_PASSWORD=hunter2-very-secret\n")
    main = root / "main.py"
    main.write_text(MAIN)
    return main


def test_json_lists_segments_whose_tokens_add_up_within_the_budget(tmp_path):
    main = workspace(tmp_path)
    done = run(str(main), "--at", "7:22", "--budget", "600", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) >= {"segments", "total_tokens", "build_ms"}
    assert out["total_tokens"] == sum(s["tokens"] for s in out["segments"]) <= 600
    for segment in out["segments"]:
        assert set(segment) >= {"kind", "path", "tokens", "text"}
    kinds = [s["kind"] for s in out["segments"]]
    assert kinds[-2:] in (["current_suffix", "current_prefix"],
                          ["current_prefix", "current_suffix"])
    text = "".join(s["text"] for s in out["segments"])
    assert "def parse_config(path, strict=False):" in text
    assert "hunter2" not in text  # .env is excluded by default
    assert SECRET in text  # a local context keeps the file as it is


def test_remote_contexts_redact_secrets(tmp_path):
    main = workspace(tmp_path)
    done = run(str(main), "--at", "7:22", "--remote", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    text = "".join(s["text"] for s in out["segments"])
    assert SECRET not in text and "REDACTED" in text


def test_text_output_and_bad_arguments(tmp_path):
    main = workspace(tmp_path)
    done = run(str(main), "--at", "7:22", cwd=tmp_path)
    assert done.returncode == 0 and "current_prefix" in done.stdout
    bad = run(str(main), "--at", "99:1", cwd=tmp_path)
    assert bad.returncode == 2 and "outside the file" in bad.stderr
    small = run(str(main), "--at", "1:1", "--budget", "3", cwd=tmp_path)
    assert small.returncode == 2 and "--budget" in small.stderr
    missing = run(str(tmp_path / "nope.py"), "--at", "1:1", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
