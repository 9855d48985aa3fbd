"""`sparkedit suggest` edit modes, diffs and --apply, as real subprocesses; the file writer's
refusals directly."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from test_headless import suggest  # same folder: the subprocess helper

from lsp_server.file_edits import (
    BACKUP_SUFFIX,
    ApplyError,
    Change,
    apply_changes,
    edit_object,
    unified_diff,
    write_with_backup,
)

CODE = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\n"
# A Qwen2-shaped random model with a Qwen-style tokenizer: no sparkedit edit tokens.
QWEN = ["--model", str(Path(__file__).parents[1] / "data" / "reference" / "qwen2-tied")]


def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir(parents=True)
    path = tmp_path / "geometry.py"
    path.write_text(CODE)
    return path


def test_next_edit_prints_json_with_a_diff_and_a_one_based_span(tmp_path):
    path = project(tmp_path)
    done = suggest(str(path), "--at", "5:7", "--mode", "next-edit", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["mode"] == "next-edit"
    keys = {"mode", "text", "edit", "timing", "stats", "model"}
    if out["edit"] is None:  # the untrained model may propose nothing: then it says why
        assert out["text"] == "" and set(out) == keys | {"reason"}
        assert f"sparkedit suggest: {out['reason']}" in done.stderr
    else:
        assert set(out) == keys
        assert out["text"].startswith(f"--- a/{path}\n+++ b/{path}\n")
        start, end = out["edit"]["start"], out["edit"]["end"]
        assert 1 <= start["line"] <= end["line"] <= CODE.count("\n") + 1
        assert start["col"] >= 1 and isinstance(out["edit"]["new_text"], str)
    assert path.read_text() == CODE  # nothing written without --apply


def test_an_instruction_means_an_edit_and_prints_a_diff(tmp_path):
    path = project(tmp_path)
    done = suggest(str(path), "--at", "2:5", "--instruction", "use keyword names")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" or done.stdout.startswith("--- a/")
    if done.stdout == "":
        assert "sparkedit suggest: no" in done.stderr or "nothing was changed" in done.stderr


@pytest.mark.parametrize("mode", [["--mode", "next-edit"], ["--instruction", "use names"]])
def test_edits_with_a_model_that_has_no_edit_tokens(tmp_path, mode):
    path = project(tmp_path)
    done = suggest(str(path), "--at", "2:5", *mode, "--json", model=QWEN)
    assert "no edit tokens" not in done.stderr
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["model"]["name"] == "qwen2-tied"
    assert out["text"] == "" if out["edit"] is None else out["text"].startswith("--- a/")
    assert path.read_text() == CODE


def test_completion_with_a_model_that_has_no_edit_tokens(tmp_path):
    path = project(tmp_path)
    done = suggest(str(path), "--at", "2:17", "--mode", "complete", "--max-tokens", "4",
                   "--json", model=QWEN)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, "exactly one JSON object"
    out = json.loads(lines[0])
    assert out["mode"] == "complete" and out["edit"] is None
    assert out["model"]["name"] == "qwen2-tied" and isinstance(out["text"], str)
    assert path.read_text() == CODE


@pytest.mark.parametrize("args, message", [
    (["--mode", "edit"], "--instruction"),
    (["--mode", "complete", "--instruction", "x"], "--instruction goes with --mode edit"),
    (["--mode", "next-edit", "--instruction", "x"], "--instruction goes with --mode edit"),
])
def test_inconsistent_modes_exit_2(tmp_path, args, message):
    done = suggest(str(project(tmp_path)), "--at", "1:1", *args)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_apply_needs_a_file():
    done = suggest("-", "--at", "1:1", "--apply", stdin=CODE)
    assert done.returncode == 2 and "--apply" in done.stderr


def test_apply_writes_the_completion_and_keeps_a_backup(tmp_path):
    path = project(tmp_path)
    diff = suggest(str(path), "--at", "2:17", "--max-tokens", "4", "--diff")
    assert diff.returncode == 0, diff.stderr
    done = suggest(str(path), "--at", "2:17", "--max-tokens", "4", "--apply", "--json")
    assert done.returncode == 0, done.stderr
    text = json.loads(done.stdout)["text"]
    if not text:
        pytest.skip("the untrained model suggested nothing here")
    offset = CODE.index("w * h") + len("w * h")
    assert path.read_text() == CODE[:offset] + text + CODE[offset:]
    assert (tmp_path / f"geometry.py{BACKUP_SUFFIX}").read_text() == CODE
    assert diff.stdout == unified_diff(str(path), CODE, path.read_text())


def test_apply_refuses_a_read_only_file_and_loses_nothing(tmp_path):
    path = project(tmp_path)
    path.chmod(0o444)
    done = suggest(str(path), "--at", "2:17", "--max-tokens", "4", "--apply")
    assert path.read_text() == CODE
    assert not (tmp_path / f"geometry.py{BACKUP_SUFFIX}").exists()
    if "nothing to apply" not in done.stderr:
        assert done.returncode == 1 and "read-only" in done.stderr


def test_the_writer_refuses_a_file_that_changed_since_it_was_read(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    with pytest.raises(ApplyError, match="changed on disk"):
        write_with_backup(path, "x = 0\n", "x = 2\n")
    assert path.read_text() == "x = 1\n" and not list(tmp_path.glob("*" + BACKUP_SUFFIX))
    backup = write_with_backup(path, "x = 1\n", "x = 2\n")
    assert path.read_text() == "x = 2\n" and backup.read_text() == "x = 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(backup.stat().st_mode)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".a.py.")]  # no temp left


def test_the_writer_follows_links_inside_the_workspace_only(tmp_path):
    workspace, outside = tmp_path / "repo", tmp_path / "elsewhere"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "real.py").write_text("x = 1\n")
    inner = workspace / "inner.py"
    inner.symlink_to(workspace / "real.py")
    write_with_backup(inner, "x = 1\n", "x = 2\n", workspace=workspace)
    assert inner.is_symlink() and (workspace / "real.py").read_text() == "x = 2\n"
    (outside / "secret.py").write_text("y = 1\n")
    escape = workspace / "escape.py"
    escape.symlink_to(outside / "secret.py")
    with pytest.raises(ApplyError, match="outside the workspace"):
        write_with_backup(escape, "y = 1\n", "y = 2\n", workspace=workspace)
    assert (outside / "secret.py").read_text() == "y = 1\n" and escape.is_symlink()
    assert not list(outside.glob("*" + BACKUP_SUFFIX))


def test_apply_refuses_a_link_out_of_the_workspace(tmp_path):
    path = project(tmp_path / "elsewhere")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    link = repo / "geometry.py"
    link.symlink_to(path)
    done = suggest(str(link), "--at", "2:17", "--max-tokens", "4", "--apply")
    assert path.read_text() == CODE and link.is_symlink()
    if "nothing to apply" not in done.stderr:
        last = done.stderr.strip().splitlines()[-1]
        assert done.returncode == 1 and "outside the workspace" in last


def test_edit_object_spans_all_changes_in_one_based_points():
    text = "alpha\nbeta\ngamma\n"
    changes = [Change(start=6, end=10, new_text="BETA"), Change(start=11, end=16,
                                                                 new_text="GAMMA")]
    assert apply_changes(text, changes) == "alpha\nBETA\nGAMMA\n"
    assert edit_object(text, changes) == {"start": {"line": 2, "col": 1},
                                          "end": {"line": 3, "col": 6},
                                          "new_text": "BETA\nGAMMA"}
    assert edit_object(text, []) is None
