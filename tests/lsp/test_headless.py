"""`sparkedit suggest` as a real subprocess (with its own real engine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models import untrained_model_dir

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample.py"
SUGGEST = [sys.executable, "-m", "lsp_server.cli", "suggest"]
# The mechanics are tested on the small untrained placeholder; the shipped default model
# has tests of its own below.
UNTRAINED = ["--model", str(untrained_model_dir())]


def suggest(*args: str, stdin: str | None = None,
            model: list[str] = UNTRAINED) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SUGGEST, *args, *model], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_text_mode_prints_the_completion_and_notes_the_untrained_model():
    done = suggest(str(SAMPLE), "--at", "31:9", "--max-tokens", "8")
    assert done.returncode == 0, done.stderr
    json_done = suggest(str(SAMPLE), "--at", "31:9", "--max-tokens", "8", "--json")
    # Greedy decoding is deterministic: text mode prints exactly the JSON's text.
    assert done.stdout == json.loads(json_done.stdout)["text"]
    assert "untrained" in done.stderr


def test_json_has_every_contract_key_with_the_right_types():
    done = suggest(str(SAMPLE), "--at", "31:9", "--json", "--max-tokens", "8",
                   "--budget", "256")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, "exactly one JSON object"
    out = json.loads(lines[0])
    assert set(out) == {"mode", "text", "edit", "timing", "stats", "model"}
    assert out["mode"] == "complete" and isinstance(out["text"], str) and out["edit"] is None
    assert set(out["timing"]) == {"context_ms", "queue_ms", "ttft_ms", "total_ms", "simulated"}
    for key in ("context_ms", "queue_ms", "ttft_ms", "total_ms"):
        value = out["timing"][key]
        assert value is None or (isinstance(value, int | float) and value >= 0), key
    assert isinstance(out["timing"]["context_ms"], float)  # measured by the server itself
    assert out["timing"]["simulated"] is None or isinstance(out["timing"]["simulated"], dict)
    assert set(out["stats"]) == {"prompt_tokens", "cached_prompt_tokens", "output_tokens",
                                 "forward_passes", "accepted_draft_tokens", "drafters"}
    drafters = out["stats"].pop("drafters")  # {name: {drafted, accepted, passes}}
    assert drafters is None or all(set(d) == {"drafted", "accepted", "passes"}
                                   for d in drafters.values())
    for key, value in out["stats"].items():
        assert value is None or (isinstance(value, int) and value >= 0), key
    assert 3 < out["stats"]["prompt_tokens"] <= 256  # FIM markers + context, within budget
    assert out["stats"]["output_tokens"] <= 8
    assert isinstance(out["model"]["name"], str) and out["model"]["untrained"] is True


def test_stdin_dash_reads_the_file_from_standard_input(tmp_path):
    from_stdin = suggest("-", "--at", "31:9", "--json", "--max-tokens", "4",
                         stdin=SAMPLE.read_text())
    # Alone in a folder, the file has no repository context either: the same prompt.
    alone = tmp_path / "sample.py"
    alone.write_text(SAMPLE.read_text())
    from_file = suggest(str(alone), "--at", "31:9", "--json", "--max-tokens", "4")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout)["text"] == json.loads(from_file.stdout)["text"]
    assert (json.loads(from_stdin.stdout)["stats"]["prompt_tokens"]
            == json.loads(from_file.stdout)["stats"]["prompt_tokens"])


@pytest.mark.parametrize(("args", "message"), [
    (["/no/such/file.py", "--at", "1:1"], "no such file"),
    ([str(SAMPLE), "--at", "31"], "LINE:COL"),
    ([str(SAMPLE), "--at", "a:b"], "LINE:COL"),
    ([str(SAMPLE), "--at", "0:1"], "start at 1"),
    ([str(SAMPLE), "--at", "999:1"], "outside the file"),
    ([str(SAMPLE), "--at", "31:99"], "outside line 31"),
    ([str(SAMPLE), "--at", "1:1", "--mode", "edit"], "needs --instruction"),
    ([str(SAMPLE), "--at", "1:1", "--target", "cerebras", "--base-url", "api.example"],
     "--base-url"),
    ([str(SAMPLE), "--at", "1:1", "--base-url", "http://127.0.0.1:9/v1"], "remote target"),
    ([str(SAMPLE), "--at", "1:1", "--budget", "2"], "--budget"),
    ([str(SAMPLE), "--at", "1:1", "--drafters", "region,bogus"], "unknown drafter 'bogus'"),
    ([str(SAMPLE), "--at", "1:1", "--drafters", "region,"], "unknown drafter ''"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    done = suggest(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr


def test_column_counts_code_points_and_end_of_line_is_valid(tmp_path):
    source = tmp_path / "u.py"
    source.write_text("s = 'é😀'\n", encoding="utf-8")
    done = suggest(str(source), "--at", "1:9", "--max-tokens", "2")  # after the closing quote
    assert done.returncode == 0, done.stderr
    assert suggest(str(source), "--at", "1:10").returncode == 2


def test_an_engine_that_cannot_start_exits_1_with_an_explanation(tmp_path):
    done = suggest(str(SAMPLE), "--at", "1:1", model=["--model", str(tmp_path / "missing-model")])
    assert done.returncode == 1
    assert "engine" in done.stderr


def test_the_default_model_is_the_trained_one_and_is_not_labelled_untrained():
    done = suggest(str(SAMPLE), "--at", "36:25", "--json", model=[])
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["model"] == {"name": "sparkedit-coder-v2", "untrained": False}
    assert out["text"] and "untrained" not in done.stderr
    # The model's context is 4096 tokens: the prompt and the answer fit inside it.
    assert out["stats"]["prompt_tokens"] <= 4096 - out["stats"]["output_tokens"]


def test_drafters_none_decodes_plainly_with_the_same_output():
    """A next edit with the trained model, whose rewrite copies much of the region: the
    engine's drafters save passes; `--drafters none` is plain decoding (one pass per token,
    the prefill's included) with the same tokens out."""
    args = (str(SAMPLE), "--at", "36:25", "--mode", "next-edit", "--json", "--backend", "numpy")
    runs = {name: suggest(*args, *flag, model=[]) for name, flag in (
        ("default", ()), ("none", ("--drafters", "none")), ("region", ("--drafters", "region")))}
    for name, done in runs.items():
        assert done.returncode == 0, (name, done.stderr)
    out = {name: json.loads(done.stdout) for name, done in runs.items()}
    plain = out["none"]["stats"]
    assert plain["accepted_draft_tokens"] == 0 and plain["drafters"] == {}
    assert plain["forward_passes"] == plain["output_tokens"]
    speculative = out["default"]["stats"]
    assert speculative["output_tokens"] == plain["output_tokens"]
    assert out["default"]["text"] == out["none"]["text"] == out["region"]["text"]
    assert speculative["accepted_draft_tokens"] > 0
    assert speculative["forward_passes"] < plain["forward_passes"]
    assert set(out["region"]["stats"]["drafters"]) == {"region"}
