"""Evaluate a model folder on held-out code, through the engine's own numpy path.

Three measures, each for the model and for baselines measured in the same run:
- held-out perplexity (per token) and bits per character on files never trained on;
  bits per character compare models whose tokenizers differ;
- exact match of single-line completions: a cursor inside a held-out line, the prompt
  built by the language server's FIM builder, greedy decoding to the end of the line;
- edits reproduced exactly: held-out rename / add-argument / typing edits in the
  sparkedit edit layout, greedy decoding of the rewritten region.
Baselines: a unigram model of the training tokens (perplexity only: its greedy output
is one token repeated), the untrained model shipped with the engine, and for edits the
region copied unchanged.

Usage: python scripts/eval_model.py MODEL_DIR [--baseline-dir DIR] [--json OUT] [--card]
`--card` writes the table into MODEL_DIR/README.md between the EVAL markers.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import training_data as td  # noqa: E402

from engine.generate import GenerateParams, generate  # noqa: E402
from engine.model import Transformer, load_model  # noqa: E402
from engine.models import default_model_dir  # noqa: E402
from engine.tokenizer import Tokenizer  # noqa: E402
from lsp_server.prompts import FimTokens, Tokenized, build_fim_prompt  # noqa: E402

CARD_BEGIN, CARD_END = "<!-- EVAL BEGIN -->", "<!-- EVAL END -->"


@dataclass
class Scores:
    name: str
    perplexity: float | None = None
    bits_per_char: float | None = None
    line_exact: float | None = None
    line_chars_matched: float | None = None
    edit_exact: float | None = None
    edit_exact_by_kind: dict[str, float] = field(default_factory=dict)
    decode_ms_per_token: float | None = None


def held_out_files() -> list[td.SourceFile]:
    files, _ = td.corpus()
    return [f for f in files if f.held_out]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def model_nll(model: Transformer, tok: Tokenizer, files: list[td.SourceFile],
              chunk: int) -> tuple[float, int, int]:
    """(total nats, scored tokens, scored characters) over the files, chunk by chunk."""
    nats, n_tok, n_chars = 0.0, 0, 0
    for f in files:
        ids = [tok.special_ids["<|file_sep|>"], *tok.encode(f"{f.path}\n{f.text}")]
        for start in range(0, len(ids) - 1, chunk):
            window = ids[start:start + chunk + 1]
            if len(window) < 2:
                break
            logp = log_softmax(model.forward(np.asarray(window[:-1]), model.new_cache()))
            nats -= float(logp[np.arange(len(window) - 1), window[1:]].sum())
            n_tok += len(window) - 1
        n_chars += len(f.path) + 1 + len(f.text)
    return nats, n_tok, n_chars


def unigram_nll(tok: Tokenizer, train_files: list[td.SourceFile],
                files: list[td.SourceFile]) -> tuple[float, int, int]:
    counts = np.ones(tok.vocab_size)  # add-one smoothing
    for f in train_files[::4]:
        np.add.at(counts, tok.encode(f.text), 1)
    logp = np.log(counts / counts.sum())
    nats, n_tok, n_chars = 0.0, 0, 0
    for f in files:
        ids = tok.encode(f"{f.path}\n{f.text}")
        nats -= float(logp[ids].sum())
        n_tok += len(ids)
        n_chars += len(f.path) + 1 + len(f.text)
    return nats, n_tok, n_chars


def line_tasks(files: list[td.SourceFile], n: int, seed: int) -> list[tuple[str, str, str]]:
    """(prefix, expected rest of line, suffix) with the cursor after some typed characters."""
    rng = random.Random(seed)
    tasks = []
    while len(tasks) < n:
        f = rng.choice(files)
        lines = f.text.splitlines(keepends=True)
        i = rng.randrange(len(lines))
        body = lines[i].rstrip("\n")
        stripped = body.lstrip()
        if len(stripped) < 8 or stripped.startswith("#"):
            continue
        indent = len(body) - len(stripped)
        col = indent + rng.randint(1, max(1, len(stripped) // 2))
        start = sum(len(x) for x in lines[:i])
        tasks.append((f.text[:start + col], body[col:], f.text[start + len(body):]))
    return tasks


def complete_line(model: Transformer, tok: Tokenizer, prefix: str, suffix: str,
                  budget: int, heal: bool = True) -> tuple[str, int, float]:
    """Greedy completion to the end of the line, built as the language server builds it
    (token healing included)."""
    def tokenized(text: str) -> Tokenized:
        ids, offsets = tok.encode_with_offsets(text)
        return Tokenized(text=text, ids=ids, offsets=offsets)

    window = budget * 12
    prompt = build_fim_prompt(prefix=tokenized(prefix[-window:]),
                              suffix=tokenized(suffix[:window]), budget=budget,
                              special=FimTokens.from_info(tok.special_ids), heal=heal)
    result = generate(model, tok, GenerateParams(tokens=tuple(prompt.tokens), max_tokens=48,
                                                 stop=("\n",), heal=prompt.heal or None))
    return result.text, len(result.tokens), result.timing["decode_ms"]


def edit_tasks(files: list[td.SourceFile], n: int, seed: int, max_chars: int
               ) -> list[tuple[str, td.EditTask]]:
    rng = random.Random(seed)
    kinds = [(name, build) for name, build, _ in td.EDIT_KINDS if name != "copy"]
    tasks: list[tuple[str, td.EditTask]] = []
    attempts = 0
    while len(tasks) < n and attempts < n * 200:
        attempts += 1
        name, build = kinds[len(tasks) % len(kinds)]
        task = build(rng, rng.choice(files), max_chars)
        if task is not None and len(task.rewrite) < 600:
            tasks.append((name, task))
    return tasks


def rewrite(model: Transformer, tok: Tokenizer, task: td.EditTask) -> str:
    ids: list[int] = []
    for piece in task.pieces():
        ids.extend([tok.special_ids[piece]] if piece in tok.special_ids else tok.encode(piece))
    budget = model.context_limit - len(tok.encode(task.region)) - 32
    ids = ids[-budget:]
    result = generate(model, tok, GenerateParams(
        tokens=tuple(ids), max_tokens=len(tok.encode(task.rewrite)) + 16))
    return result.text


def evaluate(name: str, model_dir: Path, files: list[td.SourceFile],
             lines: list[tuple[str, str, str]], edits: list[tuple[str, td.EditTask]],
             ppl_files: list[td.SourceFile]) -> Scores:
    model, tok = load_model(model_dir), Tokenizer.from_dir(model_dir)
    chunk = min(model.context_limit, 1024)
    nats, n_tok, n_chars = model_nll(model, tok, ppl_files, chunk)
    scores = Scores(name, perplexity=math.exp(nats / n_tok),
                    bits_per_char=nats / n_chars / math.log(2))
    budget = min(1024, model.context_limit) - 64
    exact, matched, decode_ms, decoded = 0, 0.0, 0.0, 0
    for prefix, expected, suffix in lines:
        got, n, ms = complete_line(model, tok, prefix, suffix, budget)
        exact += got.rstrip() == expected.rstrip()
        common = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False))
                       if a != b), min(len(got), len(expected)))
        matched += common / max(1, len(expected))
        decode_ms, decoded = decode_ms + ms, decoded + n
    scores.line_exact = exact / len(lines)
    scores.line_chars_matched = matched / len(lines)
    scores.decode_ms_per_token = decode_ms / max(1, decoded)
    by_kind: dict[str, list[bool]] = {}
    for kind, task in edits:
        by_kind.setdefault(kind, []).append(rewrite(model, tok, task) == task.rewrite)
    scores.edit_exact = sum(sum(v) for v in by_kind.values()) / len(edits)
    scores.edit_exact_by_kind = {k: sum(v) / len(v) for k, v in sorted(by_kind.items())}
    return scores


def table(rows: list[Scores]) -> str:
    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f} %"

    def num(x: float | None, fmt: str) -> str:
        return "—" if x is None else format(x, fmt)

    kinds = sorted({k for r in rows for k in r.edit_exact_by_kind})
    head = ["model", "perplexity", "bits/char", "line exact", "line chars matched",
            "edit exact", *[f"edit: {k}" for k in kinds], "decode ms/token"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.name, num(r.perplexity, ".2f"), num(r.bits_per_char, ".3f"),
                 pct(r.line_exact), pct(r.line_chars_matched), pct(r.edit_exact),
                 *[pct(r.edit_exact_by_kind.get(k)) for k in kinds],
                 num(r.decode_ms_per_token, ".2f")]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--baseline-dir", type=Path,
                    default=default_model_dir().parent / "tiny-untrained")
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--edits", type=int, default=90)
    ap.add_argument("--ppl-files", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, default=REPO / "bench_results" / "eval_model.json")
    ap.add_argument("--card", action="store_true")
    args = ap.parse_args()

    t0 = time.time()
    files, _ = td.corpus()
    held = [f for f in files if f.held_out]
    train = [f for f in files if not f.held_out]
    ppl_files = random.Random(args.seed).sample(held, min(args.ppl_files, len(held)))
    lines = line_tasks(held, args.lines, args.seed)
    edits = edit_tasks(held, args.edits, args.seed, 2400)

    rows = [evaluate(args.model_dir.name, args.model_dir, held, lines, edits, ppl_files)]
    if args.baseline_dir.exists() and args.baseline_dir.resolve() != args.model_dir.resolve():
        rows.append(evaluate(f"{args.baseline_dir.name} (untrained)", args.baseline_dir, held,
                             lines, edits, ppl_files))
    tok = Tokenizer.from_dir(args.model_dir)
    nats, n_tok, n_chars = unigram_nll(tok, train, ppl_files)
    rows.append(Scores("unigram of training tokens", perplexity=math.exp(nats / n_tok),
                       bits_per_char=nats / n_chars / math.log(2)))
    copy_exact = sum(t.rewrite == t.region for _, t in edits) / len(edits)
    rows.append(Scores("copy the region unchanged", edit_exact=copy_exact))

    rendered = table(rows)
    setup = (f"{len(ppl_files)} held-out files for perplexity, {len(lines)} single-line "
             f"completions, {len(edits)} edits (rename, add-argument, typing), seed {args.seed}; "
             f"{time.time() - t0:.0f} s")
    print(rendered)
    print(setup)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"setup": setup, "rows": [r.__dict__ for r in rows]},
                                    indent=2))
    if args.card:
        card = args.model_dir / "README.md"
        text = card.read_text() if card.exists() else ""
        block = f"{CARD_BEGIN}\n{rendered}\n\n{setup}\n{CARD_END}"
        if CARD_BEGIN in text:
            text = text[:text.index(CARD_BEGIN)] + block + text[text.index(CARD_END) +
                                                                len(CARD_END):]
        else:
            text += "\n## Evaluation\n\n" + block + "\n"
        card.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
