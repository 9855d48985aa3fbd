"""`sparkedit suggest` next and instruction edits: the edit history comes from git or from
`--history FILE.diff` and reaches the prompt (the fake server on 127.0.0.1 records it), bad
history is one line and exit 2, and an edit that changes nothing is said, never silent."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_server import Script
from test_remote_end_to_end import KEY, ROOT, remote_env

BEFORE = "def area(w, h):\n    return w * h\n\n\ndef main():\n    print(area(2, 3))\n"
AFTER = BEFORE.replace("def area(w, h)", "def area(width, height)") \
    .replace("return w * h", "return width * height")
HISTORY = """\
--- a/shapes.py
+++ b/shapes.py
@@ -1,2 +1,2 @@
-def area(w, h):
-    return w * h
+def area(width, height):
+    return width * height
"""


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.email=t@example.com",
                    "-c", "user.name=t", *args], check=True, capture_output=True)


def suggest(fake, source: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "suggest", str(source), "--at", "6:5",
         "--target", "cerebras", "--base-url", fake.base_url, "--model", "fake-coder",
         *extra], capture_output=True, text=True, cwd=ROOT, env=remote_env(), timeout=120)


def prompt_of(fake) -> str:
    (post,) = fake.posts()
    return "\n".join(m["content"] for m in post.body["messages"])


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_next_edit_gets_the_files_uncommitted_changes_as_history(fake, tmp_path):
    fake.scripts["fake-coder"] = Script(echo_prediction=True)
    source = tmp_path / "shapes.py"
    source.write_text(BEFORE)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "shapes.py")
    git(tmp_path, "commit", "-qm", "first")
    source.write_text(AFTER)
    done = suggest(fake, source, "--mode", "next-edit", "--json")
    assert done.returncode == 0, done.stderr
    prompt = prompt_of(fake)
    assert "-def area(w, h):\n" in prompt and "+def area(width, height):\n" in prompt
    # The model answered the region unchanged: said on stderr and in the JSON.
    out = json.loads(done.stdout)
    assert out["edit"] is None and out["reason"] == "no change proposed"
    assert done.stderr.strip().splitlines() == ["sparkedit suggest: no change proposed"]
    assert KEY not in done.stderr + done.stdout


def test_history_from_a_diff_file(fake, tmp_path):
    fake.scripts["fake-coder"] = Script(echo_prediction=True)
    source = tmp_path / "shapes.py"
    source.write_text(AFTER)
    (tmp_path / "h.diff").write_text(HISTORY)
    done = suggest(fake, source, "--mode", "next-edit", "--history", str(tmp_path / "h.diff"))
    assert done.returncode == 0, done.stderr
    assert "-    return w * h\n" in prompt_of(fake)
    assert done.stdout == "" and "no change proposed" in done.stderr


def test_no_repository_and_no_diff_means_no_history(fake, tmp_path):
    fake.scripts["fake-coder"] = Script(echo_prediction=True)
    source = tmp_path / "shapes.py"
    source.write_text(AFTER)
    done = suggest(fake, source, "--mode", "next-edit")
    assert done.returncode == 0, done.stderr
    assert "def area(w, h)" not in prompt_of(fake)


@pytest.mark.parametrize(("diff", "words"), [
    (HISTORY.replace("return width * height", "return width + height"),  # not its text
     "does not match"),
    ("this is not a diff\n", "no unified diff hunks"),
    ("--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n-a\n", "ends early"),
    (HISTORY + HISTORY.replace("shapes.py", "gone.py"), "gone.py"),  # names a missing file
    (None, "no such file"),
])
def test_bad_history_is_one_line_and_exit_2(fake, tmp_path, diff, words):
    fake.scripts["fake-coder"] = Script(echo_prediction=True)
    source = tmp_path / "shapes.py"
    source.write_text(AFTER)
    history = tmp_path / "h.diff"
    if diff is not None:
        history.write_text(diff)
    done = suggest(fake, source, "--mode", "next-edit", "--history", str(history))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in done.stderr, lines
    assert not fake.posts(), "nothing is asked of the model on bad input"
    assert source.read_text() == AFTER


def test_an_instruction_edit_that_changes_nothing_is_said(fake, tmp_path):
    fake.scripts["fake-coder"] = Script(echo_prediction=True)
    source = tmp_path / "shapes.py"
    source.write_text(AFTER)
    done = suggest(fake, source, "--instruction", "add a docstring", "--apply")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == ["sparkedit suggest: no change proposed",
                                                "sparkedit suggest: nothing to apply"]
    assert source.read_text() == AFTER
