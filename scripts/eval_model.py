"""Evaluate model folders on held-out packages of the fetched eight-language corpus (v2).

One row per model (the model given, then the baselines: by default the shipped
`engine/models/sparkedit-coder-3m`), plus the reference "copy the region unchanged":
1. bits per UTF-8 byte of held-out files, per language, their mean and max (eval_bpb.py);
2. next edits reproduced exactly (propagation, typing, no_edit, mined from held-out
   release pairs), by kind and for propagation alone (eval_edits.py);
3. instructions carried out (each task's own check), by kind;
4. destructive next edits proposed, and how many of them the server's gates would show;
5. acceptance of ghost text in `sparkedit replay` of scripts/sessions (eval_replay.py);
6. decode speed of the edits of (2), region as draft, prefill + decode, numpy path.
Every model sees the same windows and tasks (seeded). Held-out: `split == "held_out"` in
`<work>/corpus/files.jsonl` and `release_pairs.jsonl` (work: --work, $SPARKEDIT_TRAIN_DIR,
else ~/.cache/sparkedit/train).

Usage: python scripts/eval_model.py MODEL_DIR [--baseline-dir DIR ...] [--json OUT]
       [--card] [--quick]
Markdown to stdout, JSON to bench_results/eval_model.json; `--card` writes the tables
into MODEL_DIR/README.md between the EVAL markers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import eval_bpb  # noqa: E402
import eval_edits  # noqa: E402
import training_data as td  # noqa: E402
from edit_core import EditExample  # noqa: E402
from edit_examples import ReleasePair, load_release_pairs  # noqa: E402
from edit_mix import held_out_edit_tasks, held_out_instruction_tasks  # noqa: E402
from eval_replay import ReplayScore, replay_acceptance, session_files  # noqa: E402
from eval_report import Row, render, write_card  # noqa: E402
from instruction_examples import InstructionExample  # noqa: E402

from engine.model import load_model  # noqa: E402
from engine.models import v1_model_dir  # noqa: E402
from engine.tokenizer import Tokenizer  # noqa: E402

# Faster than 2x the recorded typing and the 3m model answers almost nothing before the
# next key cancels it (measured at 8x: 508 of 509 requests cancelled, nothing shown).
REPLAY_SPEED = 2.0


@dataclass(frozen=True)
class Sizes:
    bpb_bytes: int  # per language
    window_bytes: int  # per file at most
    edits: int
    instructions: int
    replay_speed: float
    quick_replay: bool

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls(9_000, 1500, 14, 6, REPLAY_SPEED, True)
        return cls(60_000, 2000, 84, 48, REPLAY_SPEED, False)


def train_root() -> Path:
    """As scripts/train_setup.py's `train_root` (not imported: it loads torch)."""
    env = os.environ.get("SPARKEDIT_TRAIN_DIR")
    return Path(env) if env else Path.home() / ".cache" / "sparkedit" / "train"


def held_out_files(work: Path) -> list[td.SourceFile]:
    """The held-out files of `<work>/corpus/files.jsonl` (training lines are not parsed)."""
    files = []
    with open(work / "corpus" / "files.jsonl", encoding="utf-8") as lines:
        for line in lines:
            if '"held_out"' not in line:
                continue
            r = json.loads(line)
            if r.get("split") == "held_out":
                files.append(td.SourceFile(r["path"], r["text"], r["licence"], r["language"],
                                           r["package"], r["split"]))
    return files


def held_out_pairs(work: Path) -> list[ReleasePair]:
    path = work / "corpus" / "release_pairs.jsonl"
    return [p for p in load_release_pairs(path) if p.split == "held_out"] \
        if path.exists() else []


@dataclass
class Tasks:
    windows: list[eval_bpb.Window]
    edits: list[EditExample]
    instructions: list[InstructionExample]
    sessions: list[Path]
    seconds: float


def build_tasks(files: list[td.SourceFile], pairs: list[ReleasePair], sizes: Sizes,
                seed: int, replay: bool = True) -> Tasks:
    t0 = time.time()
    windows = eval_bpb.bpb_windows(files, sizes.bpb_bytes, sizes.window_bytes, seed)
    edits = held_out_edit_tasks(files, sizes.edits, seed, release_pairs=pairs)
    instructions = held_out_instruction_tasks(files, sizes.instructions, seed)
    sessions = session_files(sizes.quick_replay) if replay else []
    return Tasks(windows, edits, instructions, sessions, time.time() - t0)


def evaluate(name: str, model_dir: Path, tasks: Tasks, sizes: Sizes,
             gates: eval_edits.Gates, log: bool = True) -> Row:
    t0 = time.time()
    model, tok = load_model(model_dir), Tokenizer.from_dir(model_dir)
    row = Row(name)
    steps = [
        ("bits per byte", lambda: row.add_bpb(eval_bpb.score_windows(model, tok,
                                                                    tasks.windows))),
        ("next edits", lambda: row.add_edits(eval_edits.run_edits(model, tok, tasks.edits,
                                                                  gates))),
        ("instructions", lambda: row.add_instructions(
            eval_edits.run_instructions(model, tok, tasks.instructions))),
        ("replay", lambda: row.add_replay(
            replay_acceptance(model_dir, tasks.sessions, sizes.replay_speed)
            if tasks.sessions else ReplayScore(error="not run"))),
    ]
    for label, step in steps:
        t = time.time()
        step()
        if log:
            print(f"  {name}: {label} {time.time() - t:.1f} s", file=sys.stderr, flush=True)
    if row.replay and row.replay["error"] and tasks.sessions:
        print(f"  {name}: replay failed: {row.replay['error']}", file=sys.stderr, flush=True)
    row.seconds = time.time() - t0
    return row


def copy_row(tasks: Tasks, gates: eval_edits.Gates) -> Row:
    row = Row("copy the region unchanged")
    row.add_edits(eval_edits.copy_edits(tasks.edits, gates), timed=False)
    row.add_instructions(eval_edits.copy_instructions(tasks.instructions))
    return row


def setup_line(tasks: Tasks, sizes: Sizes, seed: int, seconds: float) -> str:
    kinds = sorted({t.kind for t in tasks.edits})
    replay = (f"replay of {len(tasks.sessions)} session(s) at speed {sizes.replay_speed:g}"
              if tasks.sessions else "no replay")
    scored = sum(len(w.text.encode("utf-8")) for w in tasks.windows)
    return (f"Held-out packages only; {len(tasks.windows)} windows of at most "
            f"{sizes.window_bytes} bytes, {scored:,} bytes in all (up to {sizes.bpb_bytes:,} "
            f"per language), "
            f"{len(tasks.edits)} next edits ({', '.join(kinds)}), "
            f"{len(tasks.instructions)} instructions, {replay}; greedy, region as draft, "
            f"numpy engine; seed {seed}; {seconds:.0f} s.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--baseline-dir", type=Path, action="append", default=None,
                    help="a baseline row (repeatable; default: the shipped "
                         "sparkedit-coder-3m)")
    ap.add_argument("--work", type=Path, default=None,
                    help="training work folder holding corpus/ (default: "
                         "$SPARKEDIT_TRAIN_DIR or ~/.cache/sparkedit/train)")
    ap.add_argument("--json", type=Path, default=REPO / "bench_results" / "eval_model.json")
    ap.add_argument("--card", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small sizes, one replay session")
    ap.add_argument("--no-replay", action="store_true")
    ap.add_argument("--replay-speed", type=float, default=None,
                    help=f"times the recorded typing speed (default {REPLAY_SPEED:g})")
    ap.add_argument("--seed", type=int, default=7)
    for name in ("bpb-bytes", "window-bytes", "edits", "instructions"):
        ap.add_argument(f"--{name}", type=int, default=None, help="override the size")
    args = ap.parse_args(argv)

    t0 = time.time()
    sizes = Sizes.of(args.quick)
    overrides = {"bpb_bytes": args.bpb_bytes, "window_bytes": args.window_bytes,
                 "edits": args.edits, "instructions": args.instructions,
                 "replay_speed": args.replay_speed}
    sizes = replace(sizes, **{k: v for k, v in overrides.items() if v is not None})
    work = args.work or train_root()
    files, pairs = held_out_files(work), held_out_pairs(work)
    tasks = build_tasks(files, pairs, sizes, args.seed, replay=not args.no_replay)
    print(f"tasks: {len(files)} held-out files, {len(pairs)} held-out release pairs; "
          f"built in {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
    gates = eval_edits.Gates()
    dirs = [args.model_dir]
    for d in args.baseline_dir or [v1_model_dir()]:
        if d.exists() and d.resolve() not in {x.resolve() for x in dirs}:
            dirs.append(d)
    rows = [evaluate(d.name if i == 0 else f"{d.name} (baseline)", d, tasks, sizes, gates)
            for i, d in enumerate(dirs)]
    rows.append(copy_row(tasks, gates))
    setup = setup_line(tasks, sizes, args.seed, time.time() - t0)
    rendered = render(rows, setup)
    print(rendered)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"setup": setup, "quick": args.quick,
                                     "rows": [asdict(r) for r in rows]}, indent=2))
    if args.card:
        write_card(args.model_dir / "README.md", rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
