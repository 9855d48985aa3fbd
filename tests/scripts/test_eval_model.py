"""The v2 evaluation (scripts/eval_model.py and its eval_*.py parts) on a tiny corpus.

No fetched corpus: a files.jsonl of a few held-out files in three languages is written to a
temporary folder, and the measures run on the untrained placeholder model with tiny sizes.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import eval_bpb  # noqa: E402
import eval_edits  # noqa: E402
import eval_model  # noqa: E402
import eval_replay  # noqa: E402
import eval_report  # noqa: E402
from edit_core import EditExample, record_history  # noqa: E402

from engine.model import load_model  # noqa: E402
from engine.tokenizer import Tokenizer  # noqa: E402
from lsp_server.context.tokens import TokenCounter  # noqa: E402
from lsp_server.edits import EditRegion, build_edit_prompt  # noqa: E402

UNTRAINED = REPO / "engine" / "models" / "tiny-untrained"

PYTHON = '''\
"""Prices in the shop: größe, Übergröße and the ¥/€ signs are kept as written."""

import logging

logger = logging.getLogger(__name__)


def parse_price(text, currency="EUR"):
    value = float(text.strip())
    if value < 0:
        raise ValueError("négatif: " + text)
    logger.debug("parsed %s", value)
    return round(value, 2)


def total(prices, discount=0):
    amount = sum(parse_price(p) for p in prices)
    amount = amount - discount
    logger.info("total %s", amount)
    logger.debug("done")
    return amount


def describe(item, count):
    label = item.name.title()
    summary = f"{count} × {label}"
    return summary
'''

JAVASCRIPT = '''\
const fs = require("fs");

function readConfig(path, fallback) {
  const text = fs.readFileSync(path, "utf8");
  const data = JSON.parse(text);
  if (!data.name) {
    return fallback;
  }
  console.log("loaded", data.name);
  return data;
}

function writeConfig(path, data) {
  const text = JSON.stringify(data, null, 2);
  fs.writeFileSync(path, text);
  console.log("saved", path);
  return text.length;
}

module.exports = { readConfig, writeConfig };
'''

GO = '''\
package shop

import "fmt"

func Total(prices []float64, discount float64) float64 {
	amount := 0.0
	for _, p := range prices {
		amount += p
	}
	amount = amount - discount
	fmt.Println("total", amount)
	return amount
}

func Describe(name string, count int) string {
	label := fmt.Sprintf("%d x %s", count, name)
	fmt.Println("describe", label)
	return label
}
'''


def _record(path: str, text: str, language: str, split: str) -> dict:
    return {"package": path.split("/")[0], "registry": "test", "version": "1", "licence": "MIT",
            "language": language, "path": path, "text": text, "split": split}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    (root / "corpus").mkdir()
    records = [_record("shop/prices.py", PYTHON, "python", "held_out"),
               _record("cfg/config.js", JAVASCRIPT, "javascript", "held_out"),
               _record("gshop/shop.go", GO, "go", "held_out"),
               _record("other/train.py", PYTHON.replace("total", "grand_total"), "python",
                       "train")]
    (root / "corpus" / "files.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def untrained() -> tuple:
    return load_model(UNTRAINED), Tokenizer.from_dir(UNTRAINED)


def test_only_held_out_files_are_read(work: Path) -> None:
    files = eval_model.held_out_files(work)
    assert sorted(f.path for f in files) == ["cfg/config.js", "gshop/shop.go", "shop/prices.py"]
    assert all(f.held_out for f in files)
    assert eval_model.held_out_pairs(work) == []  # no release_pairs.jsonl: no mined tasks


def test_bits_per_byte_counts_utf8_bytes(untrained: tuple) -> None:
    model, tok = untrained
    window = eval_bpb.Window("python", "shop/prices.py", PYTHON)
    score = eval_bpb.score_window(model, tok, window)
    assert score.bytes == len(PYTHON.encode("utf-8")) > score.chars == len(PYTHON)
    assert score.tokens == len(tok.encode(PYTHON))
    assert score.nats > 0
    assert score.bits_per_char / score.bits_per_byte == pytest.approx(score.bytes / score.chars)
    # chunks of a small context still score every token of the text once
    small = eval_bpb.score_window(model, tok, window, context_cap=48)
    assert (small.tokens, small.bytes) == (score.tokens, score.bytes)


def test_slices_score_what_one_forward_scores(untrained: tuple) -> None:
    """_target_nats feeds SLICE tokens a call: the sum equals one plain forward's."""
    model, tok = untrained
    ids = tok.encode(PYTHON * 3)[:eval_bpb.SLICE + 40]
    first = 5
    logits = model.forward(np.asarray(ids[:-1]), model.new_cache()).astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1,
                                                                               keepdims=True)) \
        - logits.max(-1, keepdims=True)
    want = -sum(logp[i, ids[i + 1]] for i in range(first, len(ids) - 1))
    assert eval_bpb._target_nats(model, ids, first) == pytest.approx(want, rel=1e-5)


def test_windows_are_seeded_whole_lines_and_tsx_counts_as_typescript() -> None:
    from training_data import SourceFile
    long = "".join(f"line {i} ü\n" for i in range(400))
    files = [SourceFile("a/long.py", long, "MIT", "python", "a", "held_out"),
             SourceFile("b/view.tsx", "const x = <div/>;\n", "MIT", "tsx", "b", "held_out")]
    one = eval_bpb.bpb_windows(files, 300, 300, seed=3)
    assert one == eval_bpb.bpb_windows(files, 300, 300, seed=3)
    assert [w.language for w in one] == ["python", "typescript"]
    py = one[0].text
    assert len(py.encode("utf-8")) <= 300 and py.endswith("\n") and py in long
    assert long.startswith(py) or long[long.index(py) - 1] == "\n"
    # a language fills its bytes from several files (the last window may pass them)
    small = [SourceFile(f"c/f{i}.py", "x = 1\n" * 20, "MIT", "python", "c", "held_out")
             for i in range(5)]
    filled = eval_bpb.bpb_windows(small, 250, 1000, seed=1)
    sizes = [len(w.text.encode("utf-8")) for w in filled]
    assert sizes == [120, 120, 120]


REGION = """\
def total(prices, discount=0):
    amount = sum(parse_price(p) for p in prices)
    amount = amount - discount
    logger.info("total %s", amount)
    print("done")
    return amount
"""


def test_destructive_classifier_on_hand_made_outputs() -> None:
    expected = REGION.replace("amount", "subtotal")  # a rename carried on, every line
    cursor = REGION.index("prices)")  # line 0
    # carrying the rename on rewrites far lines, but the expected rewrite does too
    assert eval_edits.destructive_lines(REGION, expected, expected, cursor) == []
    # deleting a far line the expected rewrite keeps: counted
    no_print = REGION.replace('    print("done")\n', "")
    assert eval_edits.destructive_lines(REGION, REGION, no_print, cursor) == [4]
    # the same deletion within two lines of the cursor: not counted
    near = REGION.index("logger")  # line 3
    assert eval_edits.destructive_lines(REGION, REGION, no_print, near) == []
    # the rename carried on and a far kept line deleted: only that line counts
    assert eval_edits.destructive_lines(REGION, expected, no_print.replace(
        "amount", "subtotal"), cursor) == [4]
    # a far blank line deleted: not counted
    spaced = REGION.replace('    print("done")\n', '\n    print("done")\n')
    assert eval_edits.destructive_lines(spaced, spaced, REGION, cursor) == []


def _hand_made_example() -> EditExample:
    """The user renamed `amount` to `subtotal` in its first line; the rest is the edit."""
    original = PYTHON
    at = original.index("    amount = sum")
    name_at = at + 4
    history, text = record_history("shop/prices.py", original,
                                   [(name_at, name_at + len("amount"), "subtotal")])
    start = text.index("def total")
    end = text.index("def describe") - 2
    cursor = name_at + len("subtotal")
    region = EditRegion(start, end, cursor)
    rewrite = text[start:end].replace("amount", "subtotal")
    return EditExample("rename", "python", "shop/prices.py", text, region, tuple(history),
                       rewrite)


def test_exact_match_and_the_gates_verdict() -> None:
    ex = _hand_made_example()
    gates = eval_edits.Gates()
    right = eval_edits.judge_edit(ex, ex.rewrite, gates)
    assert right.exact and not right.destructive and right.shown
    assert not eval_edits.judge_edit(ex, ex.rewrite.rstrip("\n"), gates).exact
    copy = eval_edits.judge_edit(ex, ex.region_text, gates)
    assert not copy.exact and not copy.destructive and not copy.shown
    # the rename carried on, and a far line nobody pointed at deleted: destructive, hidden
    lines = ex.rewrite.split("\n")
    far = [i for i, line in enumerate(lines) if "done" in line][0]
    wrong = eval_edits.judge_edit(ex, "\n".join(lines[:far] + lines[far + 1:]), gates)
    assert not wrong.exact and wrong.destructive and not wrong.shown

    row = eval_report.Row("m")
    row.add_edits([right, wrong, copy,
                   eval_edits.EditOutcome("typing", "python", True, "x", 4, 10.0)])
    assert row.edit_exact == 0.5 and row.propagation_exact == pytest.approx(1 / 3)
    assert row.edit_exact_by_kind == {"rename": pytest.approx(1 / 3), "typing": 1.0}
    assert (row.destructive_proposed, row.destructive_shown) == (1, 0)
    assert row.edit_tokens_per_s == pytest.approx(400.0)  # 4 tokens in 10 ms (only timed)


def test_prompt_is_the_servers_and_trimming_keeps_the_region(untrained: tuple) -> None:
    model, tok = untrained
    ex = _hand_made_example()
    ids = eval_edits.prompt_ids(tok, ex.pieces())
    server = build_edit_prompt(counter=TokenCounter.from_tokenizer(tok),
                               special_ids=dict(tok.special_ids), path=ex.path, text=ex.text,
                               region=ex.region, history=list(ex.history), instruction=None,
                               budget=1_000_000)
    assert ids == server.tokens
    keep, region_at = eval_edits._markers(tok, ids)
    tail = ids[region_at:]
    cut = eval_edits.fit_prompt(ids, len(tail) + 10, keep, region_at)
    assert len(cut) == len(tail) + 10 and cut[-len(tail):] == tail and cut[:keep] == ids[:keep]
    # asked for less than the region: the region stays whole
    assert eval_edits.fit_prompt(ids, 5, keep, region_at) == ids[:keep] + tail
    # a context smaller than the prompt: trimmed, decoded, no overflow
    got = eval_edits.rewrite(model, tok, ex, max_tokens=8, context_cap=len(tail) + 40)
    assert got is not None and got[1] <= 8
    assert eval_edits.rewrite(model, tok, ex, max_tokens=8, context_cap=len(tail) - 1) is None


def test_measures_run_on_the_untrained_model(work: Path, untrained: tuple) -> None:
    files = eval_model.held_out_files(work)
    sizes = eval_model.Sizes(bpb_bytes=800, window_bytes=400, edits=3, instructions=2,
                             replay_speed=2.0, quick_replay=True)
    tasks = eval_model.build_tasks(files, [], sizes, seed=1, replay=False)
    assert {w.language for w in tasks.windows} == {"python", "javascript", "go"}
    assert tasks.edits and tasks.instructions
    gates = eval_edits.Gates()
    row = eval_model.evaluate("tiny", UNTRAINED, tasks, sizes, gates, log=False)
    assert set(row.bits_per_byte) == {"python", "javascript", "go"}
    assert row.bpb_mean == pytest.approx(sum(row.bits_per_byte.values()) / 3)
    assert row.bpb_max == max(row.bits_per_byte.values())
    assert row.edits == len(tasks.edits) and row.instructions == len(tasks.instructions)
    assert row.edit_tokens_per_s is not None and row.acceptance is None
    copy = eval_model.copy_row(tasks, gates)
    assert copy.edit_exact == sum(t.rewrite == t.region_text for t in tasks.edits) / 3
    assert copy.destructive_proposed == 0
    text = eval_report.render([row, copy], "setup line")
    assert "| tiny |" in text and "| copy the region unchanged |" in text
    assert math.isfinite(row.bpb_mean)


def test_card_markers_are_replaced_in_place(tmp_path: Path) -> None:
    card = tmp_path / "README.md"
    card.write_text(f"# m\n\nbefore\n\n{eval_report.CARD_BEGIN}\nold table\n"
                    f"{eval_report.CARD_END}\n\nafter\n")
    eval_report.write_card(card, "new table")
    assert card.read_text() == (f"# m\n\nbefore\n\n{eval_report.CARD_BEGIN}\nnew table\n"
                                f"{eval_report.CARD_END}\n\nafter\n")
    bare = tmp_path / "BARE.md"
    bare.write_text("# m\n")
    eval_report.write_card(bare, "t")
    eval_report.write_card(bare, "u")
    text = bare.read_text()
    assert text.count(eval_report.CARD_BEGIN) == 1 and "\nu\n" in text and "\nt\n" not in text


def test_cli_writes_json_and_card(work: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny-untrained"
    shutil.copytree(UNTRAINED, model_dir)
    (model_dir / "README.md").write_text(f"x\n{eval_report.CARD_BEGIN}\n"
                                         f"{eval_report.CARD_END}\ny\n")
    out = tmp_path / "eval.json"
    code = eval_model.main([str(model_dir), "--baseline-dir", str(model_dir), "--work",
                            str(work), "--json", str(out), "--card", "--no-replay",
                            "--bpb-bytes", "200", "--window-bytes", "200", "--edits", "1",
                            "--instructions", "1"])
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows] == ["tiny-untrained", "copy the region unchanged"]
    card = (model_dir / "README.md").read_text()
    assert card.startswith("x\n") and card.endswith(f"{eval_report.CARD_END}\ny\n")
    assert "| tiny-untrained |" in card


def test_replay_json_is_summed() -> None:
    lines = ["replaying ...",
             json.dumps({"session": "a", "chars_saved": 5, "requests": 10,
                         "client": {"accepts": 1, "shown": 4}}),
             json.dumps({"session": "b", "chars_saved": 0, "requests": 7,
                         "client": {"accepts": 0, "shown": 0}})]
    score = eval_replay.read_replay_json(lines)
    assert (score.sessions, score.accepts, score.shown) == (["a", "b"], 1, 4)
    assert score.acceptance == 0.25
    cmd = eval_replay.replay_command(UNTRAINED, [Path("s.jsonl")], 2.0)
    assert cmd[1:4] == ["-m", "lsp_server.cli", "replay"] and "--json" in cmd
