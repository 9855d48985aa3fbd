"""`sparkedit replay` as a subprocess: a tiny typing session through the real server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models import untrained_model_dir
from lsp_server.sessions import Event, Session, SessionHeader

SOURCE = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n"
TARGET = "return a * b"


def session(root: Path) -> Path:
    """A workspace (a `.git` folder makes it the root) and 14 keystrokes retyping a line,
    with a typo and its backspace."""
    (root / ".git").mkdir()
    (root / "maths.py").write_text(SOURCE.replace("    \n", "    " + TARGET + "\n"))
    keys = [*"return a ", "+", None, *"* b"]  # None: backspace
    events = tuple(Event(t_ms=100.0 * (i + 1), op="type" if k else "backspace", text=k or "")
                   for i, k in enumerate(keys))
    header = SessionHeader(session="tiny", path="maths.py", language_id="python", text=SOURCE,
                           cursor=SOURCE.index("    \n") + 4, target=TARGET)
    path = root / "tiny.jsonl"
    Session(header=header, events=events).write(path)
    assert Session.read(path).events == events  # the keys do type TARGET
    return path


def replay(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsp_server.cli", "replay", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_json_has_the_figures_and_the_document_ends_in_sync(tmp_path):
    path = session(tmp_path)
    done = replay(str(path), "--speed", "20", "--json", "--model", str(untrained_model_dir()),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    out = json.loads(line)
    assert (out["session"], out["file"], out["events"]) == ("tiny", str(path), 14)
    assert 0 < out["keystrokes"] <= 14 and out["requests"] == out["keystrokes"]
    assert out["client"]["keystrokes"] == out["keystrokes"]
    # The last request is never cancelled, so at least one keystroke -> answer time exists.
    assert out["client"]["latency"]["count"] >= 1 and out["samples_ms"]
    assert isinstance(out["p50_ms"], float) and out["p50_ms"] <= out["p95_ms"]
    assert isinstance(out["cold_start_ms"], float)
    assert {"from_cache", "cancelled", "prefix_reuse", "acceptance", "chars_saved"} <= set(out)
    assert out["document_in_sync"] is True
    assert out["server_status"]["state"] == "ready"


def test_table_names_the_session(tmp_path):
    path = session(tmp_path)
    done = replay(str(path), "--speed", "20", "--model", str(untrained_model_dir()),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "| session | keys | requests | p50 ms | p95 ms |" in done.stdout
    assert "| tiny | " in done.stdout
    assert "final document as expected: True" in done.stdout


def header_line(tmp_path: Path) -> str:
    return session(tmp_path).read_text().splitlines()[0]


@pytest.mark.parametrize(("lines", "where"), [
    (lambda h: [h, "{not json"], ":2:"),
    (lambda h: ['{"t_ms": 1, "op": "type", "text": "r"}'], ":1:"),
    (lambda h: [h, '{"t_ms": 1, "op": "paste", "text": "r"}'], ":2:"),
    (lambda h: [h, '{"t_ms": 1, "op": "type", "text": "x"}'], ":1:"),  # not the target
])
def test_a_file_that_is_not_a_session_exits_2_naming_file_and_line(tmp_path, lines, where):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines(header_line(tmp_path))) + "\n")
    done = replay(str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"sparkedit replay: {bad}{where}"), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_missing_file_exits_2(tmp_path):
    done = replay(str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"sparkedit replay: {tmp_path / 'nope.jsonl'}: no such file\n"


def test_an_engine_that_cannot_start_exits_1_with_the_reason(tmp_path):
    path = session(tmp_path)
    model = tmp_path / "broken-model"  # a tokenizer, but no config or weights
    model.mkdir()
    shutil.copy(untrained_model_dir() / "tokenizer.json", model)
    done = replay(str(path), "--speed", "20", "--model", str(model), cwd=tmp_path)
    assert done.returncode == 1
    assert f"sparkedit replay: {path}: the engine failed" in done.stderr
    assert "config.json" in done.stderr  # the engine's own words, from the server's log
