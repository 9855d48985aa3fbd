"""Engine benchmark (issue 4): speculative edits, warm-prefix first token, pass cost, 100M floor.

All in one run on one machine:
a. Real edits (tests/data/edits/*.jsonl, mined by scripts/mine_edits.py) in the embedded
   model's edit layout, decoded greedily through ``generate()`` twice: plain (no drafts)
   and speculative (drafters region, previous, lookup; the draft is ``region_old``).
   Each mode has its own ``DecodeState`` (no prefix cache, no suggestion memory), so
   nothing leaks from one mode to the other; the modes alternate per edit so that both
   see the same machine load. Outputs must be identical token for token. A third mode,
   the same request repeated (the ``previous`` drafter holds the first answer), is the
   ceiling; a replay of the drafters on known outputs with the measured pass costs
   (``project``) says how much a model that made the real edit would gain.
b. Time to first token cold vs with a warm prefix (64 new prompt tokens on top of a
   cached prefix) at 2k, 8k and 32k prompt tokens, through ``generate()`` with a
   ``PrefixCache``, on the untrained placeholder (context 131072): the trained embedded
   model's context is 1024.
c. The cost of one forward pass of K = 1, 4, 16, 64 tokens at a fixed context.
d. One decode step of a ~100M-parameter Llama (random weights, in memory) against its
   memory-bandwidth floor: weight bytes over a measured single-thread copy bandwidth.

Prints titled tables and writes JSON (default bench_results/engine.json).
Usage: python scripts/bench_engine.py [--model DIR] [--edits N] [--ttft-sizes 2048,8192,32768]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from engine_bench_parts import (  # noqa: E402
    big_model,
    blas_threads,
    copy_bandwidth,
    copyable_fraction,
    decode_floor,
    pass_costs,
    projections,
    read_bandwidth,
    table,
    token_stream,
)

from engine.generate import DecodeState, generate  # noqa: E402
from engine.model import Transformer, load_model  # noqa: E402
from engine.models import default_model_dir, untrained_model_dir  # noqa: E402
from engine.prefix_cache import PrefixCache  # noqa: E402
from engine.request import GenerateParams, GenerateResult  # noqa: E402
from engine.speculative import PLAIN, SpecConfig, SuggestionMemory  # noqa: E402
from engine.tokenizer import Tokenizer  # noqa: E402

EDITS = REPO / "tests" / "data" / "edits" / "click-8.1.7-8.1.8.jsonl"
EXTRA_TOKENS = 16  # max_tokens = tokens of region_new + this, so a model may overrun a bit


# ---------------------------------------------------------------------------------------
# a. speculative edits


def first_change(old: str, new: str) -> int:
    """Offset in ``old`` of the first character where ``new`` differs (the cursor)."""
    n = min(len(old), len(new))
    return next((i for i in range(n) if old[i] != new[i]), n)


def edit_prompt(tok: Tokenizer, edit: dict[str, Any], limit: int, max_tokens: int) -> list[int]:
    """The edit layout of docs/prompt_formats.md, each piece tokenized on its own as in
    training. History is empty: a mined edit has no earlier keystrokes to show, and
    the region must stay the original (it is the draft). The cursor sits where the
    change begins. ``before`` loses whole lines from its start until prompt plus
    output fit the context."""
    sp = tok.special_ids
    region, cursor = edit["region_old"], first_change(edit["region_old"], edit["region_new"])
    tail = [sp["<|file_sep|>"], *tok.encode(edit["path"] + "\n")]
    rest = [sp["<|region_start|>"], *tok.encode(region[:cursor]), sp["<|cursor|>"],
            *tok.encode(region[cursor:]), sp["<|region_end|>"], *tok.encode(edit["after"]),
            sp["<|rewrite|>"]]
    lines = edit["before"].splitlines(keepends=True)
    while True:
        ids = [sp["<|edit_history|>"], *tail, *tok.encode("".join(lines)), *rest]
        if len(ids) + max_tokens < limit or not lines:
            return ids
        lines = lines[1:]


def run_one(model: Transformer, tok: Tokenizer, ids: list[int], max_tokens: int,
            draft: str | None, state: DecodeState, document: str | None = None
            ) -> tuple[GenerateResult, int, float]:
    """(result, tokens the first pass emitted, wall seconds)."""
    first: list[int] = []

    def on_text(_delta: str, accepted: list[int]) -> None:
        if not first:
            first.append(len(accepted))

    t0 = time.perf_counter()
    result = generate(model, tok, GenerateParams(tokens=tuple(ids), max_tokens=max_tokens,
                                                 draft=draft, document=document),
                      on_text=on_text, state=state)
    return result, (first[0] if first else 0), time.perf_counter() - t0


MODES = ("plain", "speculative", "repeat")


def bench_edits(model: Transformer, tok: Tokenizer, edits: list[dict[str, Any]]
                ) -> tuple[dict[str, Any], list[tuple[list[int], ...]]]:
    """Three modes per edit, alternating: plain greedy; speculative (the engine's default
    drafters, draft = region_old); and "repeat", the same request asked again for the same
    place, where the ``previous`` drafter (put first) holds the first answer. The repeat
    mode is the ceiling of speculation on this model and machine: acceptance near 100%,
    so what remains is the cost of passes of K tokens. Also returns, per edit, (prompt,
    region_old, region_new + EOS, plain output + EOS if it ended so) for ``project``."""
    states = {"plain": DecodeState(speculation=PLAIN),
              "speculative": DecodeState(speculation=SpecConfig()),
              "repeat": DecodeState(suggestions=SuggestionMemory(), speculation=SpecConfig(
                  drafters=("previous", "region", "lookup")))}
    prepared = []
    for e in edits:
        max_tokens = len(tok.encode(e["region_new"])) + EXTRA_TOKENS
        prepared.append((e, edit_prompt(tok, e, model.context_limit, max_tokens), max_tokens))
    # Warm-up on throw-away states: first-call costs (allocation, BLAS setup) count for no mode.
    e0, ids0, mt0 = prepared[0]
    run_one(model, tok, ids0, mt0, None, DecodeState(speculation=PLAIN))
    run_one(model, tok, ids0, mt0, e0["region_old"], DecodeState())
    acc: dict[str, dict[str, float]] = {m: {"tokens": 0, "seconds": 0.0, "passes": 0,
                                            "after_first_tokens": 0, "after_first_s": 0.0}
                                        for m in MODES}
    drafters: dict[str, dict[str, dict[str, int]]] = {m: {} for m in MODES}
    mismatches: list[dict[str, Any]] = []
    exact_new, copied, prompt_tokens, ratios = 0, 0, [], []
    known: list[tuple[list[int], ...]] = []
    eos = [tok.eos_id] if tok.eos_id is not None else []
    for i, (e, ids, max_tokens) in enumerate(prepared):
        runs: dict[str, GenerateResult] = {}
        for mode in MODES:
            state, doc = states[mode], f"edit-{i}"
            if mode == "repeat":  # what the first request for this place left behind
                assert state.suggestions is not None
                state.suggestions.remember(doc, ids, runs["plain"].tokens)
            draft = None if mode == "plain" else e["region_old"]
            result, first, seconds = run_one(model, tok, ids, max_tokens, draft, state, doc)
            runs[mode] = result
            a = acc[mode]
            a["tokens"] += len(result.tokens)
            a["seconds"] += seconds
            a["passes"] += result.stats["forward_passes"]
            a["after_first_tokens"] += len(result.tokens) - first
            a["after_first_s"] += seconds - result.timing["ttft_ms"] / 1e3
            for name, c in result.stats["drafters"].items():
                d = drafters[mode].setdefault(name, {"drafted": 0, "accepted": 0, "passes": 0})
                for k in d:
                    d[k] += c[k]
            if result.tokens != runs["plain"].tokens:
                mismatches.append({"edit": i, "mode": mode, "path": e["path"],
                                   "line": e["line"]})
        plain = runs["plain"]
        exact_new += plain.text == e["region_new"]
        copied += plain.text == e["region_old"]
        prompt_tokens.append(len(ids))
        known.append((ids, tok.encode(e["region_old"]), tok.encode(e["region_new"]) + eos,
                      plain.tokens + (eos if plain.finish_reason == "eos" else [])))
        ratios.append(plain.timing["total_ms"] / runs["speculative"].timing["total_ms"])
    out: dict[str, Any] = {"edits": len(prepared), "mismatches": len(mismatches),
                           "mismatched": mismatches,
                           "prompt_tokens_median": statistics.median(prompt_tokens),
                           "output_equals_region_new": exact_new / len(prepared),
                           "output_equals_region_old": copied / len(prepared),
                           "per_edit_speedup_median": statistics.median(ratios)}
    for mode, a in acc.items():
        out[mode] = {**a, "tokens_per_s": a["tokens"] / a["seconds"],
                     "tokens_per_pass": a["tokens"] / a["passes"],
                     "after_first_tokens_per_s": a["after_first_tokens"] / a["after_first_s"],
                     "drafters": {n: {**d, "acceptance": d["accepted"] / max(1, d["drafted"])}
                                  for n, d in drafters[mode].items()}}
        out[mode]["speedup"] = a["tokens"] / a["seconds"] / out["plain"]["tokens_per_s"]
        out[mode]["speedup_after_first"] = (out[mode]["after_first_tokens_per_s"]
                                            / out["plain"]["after_first_tokens_per_s"])
    out["speedup"] = out["speculative"]["speedup"]
    return out, known


# ---------------------------------------------------------------------------------------
# b. first token, cold vs warm prefix


def ttft(model: Transformer, tok: Tokenizer, tokens: list[int], state: DecodeState
         ) -> dict[str, float]:
    r = generate(model, tok, GenerateParams(tokens=tuple(tokens), max_tokens=1), state=state)
    return {"ttft_ms": r.timing["ttft_ms"], "prefill_ms": r.timing["prefill_ms"],
            "cached": r.stats["cached_prompt_tokens"]}


def bench_ttft(model: Transformer, tok: Tokenizer, stream: list[int], sizes: list[int],
               warm_repeats: int) -> list[dict[str, Any]]:
    rows = []
    kv_bytes = model.new_cache().bytes_per_token
    for n in sizes:
        base, new = stream[: n - 64], 64
        # Cold: an empty prefix cache, the whole prompt prefilled. 32k is measured once
        # (tens of seconds on two cores); shorter prompts take the median of three.
        colds = []
        state = DecodeState(prefix_cache=PrefixCache(max_bytes=4 * n * kv_bytes + (64 << 20)))
        for r in range(3 if n <= 8192 else 1):
            fresh = DecodeState(prefix_cache=PrefixCache(max_bytes=state.prefix_cache.max_bytes))
            colds.append(ttft(model, tok, base + stream[n - 64 : n], fresh if r else state))
        cold = sorted(colds, key=lambda c: c["ttft_ms"])[len(colds) // 2]
        # Warm: the cache holds `base` (inserted by the cold run above); each request adds
        # 64 tokens never seen before (taken from further along the stream).
        warms = []
        for r in range(warm_repeats):
            tail = stream[len(stream) - (r + 1) * new : len(stream) - r * new]
            warms.append(ttft(model, tok, base + tail, state))
        assert all(w["cached"] == n - 64 for w in warms), warms
        warm = sorted(warms, key=lambda w: w["ttft_ms"])[len(warms) // 2]
        rows.append({"prompt_tokens": n, "new_tokens": new, "cold_runs": len(colds),
                     "cold_ttft_ms": cold["ttft_ms"], "warm_ttft_ms": warm["ttft_ms"],
                     "warm_prefill_ms": warm["prefill_ms"],
                     "warm_other_ms": warm["ttft_ms"] - warm["prefill_ms"],
                     "warm_over_cold": warm["ttft_ms"] / cold["ttft_ms"],
                     "warm_runs_ms": [w["ttft_ms"] for w in warms]})
    return rows


# ---------------------------------------------------------------------------------------
# why: speculation replayed on known outputs with the measured pass costs


def print_projection(pr: dict[str, Any], ed: dict[str, Any]) -> None:
    costs = ", ".join(f"K={k}: {v:.2f}" for k, v in pr["pass_ms"].items())
    print(f"\na'. Why: speculation replayed on known outputs with the engine's drafters "
          f"and tuner, costed with passes measured at {pr['pass_cost_context']} cached tokens "
          f"({costs} ms) plus generate()'s {pr['overhead_ms_per_pass']:.2f} ms per pass")
    table(["output", "tok/pass (after 1st)", "projected speedup (after 1st)",
           "measured"],
          [["the model's own (repeat request, previous drafter)",
            f"{pr['repeat']['tokens_per_pass']:.2f}",
            f"{pr['repeat']['speedup_after_first']:.2f}x",
            f"{ed['repeat']['speedup_after_first']:.2f}x"],
           ["region_new, i.e. a model that makes the real edit (draft region_old)",
            f"{pr['perfect_model']['tokens_per_pass']:.2f}",
            f"{pr['perfect_model']['speedup_after_first']:.2f}x", "-"]])


# ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="default: the embedded model")
    ap.add_argument("--edits-file", type=Path, default=EDITS)
    ap.add_argument("--edits", type=int, default=0, help="use the first N edits (0: all)")
    ap.add_argument("--ttft-sizes", default="2048,8192,32768")
    ap.add_argument("--warm-repeats", type=int, default=5)
    ap.add_argument("--pass-contexts", default="2048,8192")
    ap.add_argument("--big-context", type=int, default=2048,
                    help="context of the 100M model's pass-cost rows (0: skip them)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: edits,ttft,pass,floor")
    ap.add_argument("--out", type=Path, default=REPO / "bench_results" / "engine.json")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    model_dir = args.model or default_model_dir()
    model, tok = load_model(model_dir), Tokenizer.from_dir(model_dir)
    untrained_dir = untrained_model_dir()
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "processor": platform.processor() or platform.machine(),
               "python": platform.python_version(), "numpy": np.__version__,
               "blas_threads": blas_threads(),
               "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                      "MKL_NUM_THREADS")},
               "niceness": os.nice(0)}
    limited = any(machine["env"].values())
    print(f"machine: {machine['cpus']} CPUs, {machine['platform']}, numpy {np.__version__}, "
          f"OpenBLAS threads {machine['blas_threads']} "
          f"({'LIMITED by ' + str(machine['env']) if limited else 'not limited'}), "
          f"nice {machine['niceness']}")
    c = model.config
    print(f"edit model: {model_dir.name} ({c.num_hidden_layers} layers, hidden {c.hidden_size}, "
          f"context {model.context_limit}, untrained={c.untrained})")
    report: dict[str, Any] = {"benchmark": "engine", "machine": machine,
                              "model": {"dir": model_dir.name, "context": model.context_limit,
                                        "untrained": c.untrained},
                              "settings": vars(args) | {"model": str(model_dir),
                                                        "out": str(args.out),
                                                        "edits_file": str(args.edits_file)}}

    if "edits" not in skip:
        lines = args.edits_file.read_text(encoding="utf-8").splitlines()
        edits = [json.loads(x) for x in lines if x.strip()]
        edits = edits[: args.edits] if args.edits else edits
        r, known = bench_edits(model, tok, edits)
        eos = {tok.eos_id}
        r["region_new_tokens_in_region_old"] = copyable_fraction(
            [(old, [t for t in new if t not in eos]) for _, old, new, _ in known])
        report["edits"] = r
        print(f"\na. Greedy edits: {r['edits']} real edits ({edits[0]['source']}), "
              f"{model_dir.name}, median prompt {r['prompt_tokens_median']:.0f} tokens, "
              f"history empty, draft = region_old, max_tokens = region_new tokens + "
              f"{EXTRA_TOKENS}")
        names = {"plain": "plain greedy", "speculative": "speculative (draft = region_old)",
                 "repeat": "repeat request (previous drafter; ceiling)"}
        table(["mode", "tokens", "passes", "tok/pass", "tok/s (whole edit)",
               "tok/s (after 1st token)", "speedup (whole)", "speedup (after 1st)"],
              [[names[m], f"{x['tokens']:.0f}", f"{x['passes']:.0f}",
                f"{x['tokens_per_pass']:.2f}", f"{x['tokens_per_s']:.0f}",
                f"{x['after_first_tokens_per_s']:.0f}", f"{x['speedup']:.2f}x",
                f"{x['speedup_after_first']:.2f}x"] for m, x in ((m, r[m]) for m in MODES)])
        table(["mode", "drafter", "drafted", "accepted", "acceptance", "passes"],
              [[m, n, d["drafted"], d["accepted"], f"{d['acceptance']:.1%}", d["passes"]]
               for m in MODES[1:] for n, d in r[m]["drafters"].items()])
        pairs = r["edits"] * (len(MODES) - 1)
        print(f"outputs identical to plain greedy token for token: {pairs - r['mismatches']}/"
              f"{pairs} runs (mismatches: {r['mismatches']}); median per-edit speedup "
              f"{r['per_edit_speedup_median']:.2f}x; output == region_new "
              f"{r['output_equals_region_new']:.0%}, == region_old "
              f"{r['output_equals_region_old']:.0%}; tokens of region_new found in region_old "
              f"(difflib): {r['region_new_tokens_in_region_old']:.0%}")
        if "pass" not in skip:  # costed right after part a, under the same conditions
            median = int(r["prompt_tokens_median"])  # where the edits decode
            report["pass_cost"] = pass_costs(model, model_dir.name, [median])
            report["projection"] = projections(r, known, report["pass_cost"][0],
                                               c.vocab_size, tok.eos_id)
            print_projection(report["projection"], r)

    untrained = tok_u = stream = None
    if not {"ttft", "pass"} <= skip:
        untrained, tok_u = load_model(untrained_dir), Tokenizer.from_dir(untrained_dir)
        sizes = [int(x) for x in args.ttft_sizes.split(",") if x]
        stream = token_stream(tok_u, max(sizes + [8192]) + 64 * (args.warm_repeats + 1))
    if "ttft" not in skip:
        rows = bench_ttft(untrained, tok_u, stream, sizes, args.warm_repeats)
        report["ttft"] = {"model": untrained_dir.name, "rows": rows}
        print(f"\nb. First token, cold vs warm prefix (64 new prompt tokens), "
              f"{untrained_dir.name} (untrained placeholder, context "
              f"{untrained.context_limit}; {model_dir.name}'s context is "
              f"{model.context_limit}), generate() with a PrefixCache, max_tokens 1")
        table(["prompt tokens", "cold ms", "warm ms", "warm/cold", "warm: 64-token pass ms",
               "warm: cache copy + setup ms"],
              [[x["prompt_tokens"], f"{x['cold_ttft_ms']:.0f}" + (" (1 run)" if
                                                                   x["cold_runs"] == 1 else ""),
                f"{x['warm_ttft_ms']:.1f}", f"{x['warm_over_cold']:.1%}",
                f"{x['warm_prefill_ms']:.1f}", f"{x['warm_other_ms']:.1f}"] for x in rows])

    if "pass" not in skip:
        contexts = [int(x) for x in args.pass_contexts.split(",") if x]
        own_ctx = min(contexts[0], model.context_limit - 64)
        rows = report.get("pass_cost", []) + pass_costs(model, model_dir.name, [own_ctx])
        if model_dir.resolve() != untrained_dir.resolve():
            rows += pass_costs(untrained, untrained_dir.name, contexts)
        report["pass_cost"] = rows
    if "floor" not in skip:
        bw, rbw = copy_bandwidth(), read_bandwidth()
        big = big_model()
        report["copy_bandwidth"], report["read_bandwidth"] = bw, rbw
        report["floor"] = decode_floor(big, bw)
        report["floor"]["gemv_floor_ms"] = report["floor"]["weight_bytes"] / rbw["gb_per_s"] / 1e6
        if args.big_context and "pass" not in skip:
            report["pass_cost"] += pass_costs(big, "random-100m (d.)", [args.big_context])
        del big
    if "pass" not in skip:
        print("\nc. One forward pass of K tokens at a fixed cached context (median ms)")
        table(["model", "context", "K=1", "K=4", "K=16", "K=64", "K=16 / K=1", "K=64 / K=1"],
              [[x["model"], x["context"], *(f"{x['ms'][str(k)]:.2f}" for k in (1, 4, 16, 64)),
                f"{x['ms']['16'] / x['ms']['1']:.1f}x", f"{x['ms']['64'] / x['ms']['1']:.1f}x"]
               for x in report["pass_cost"]])
    if "floor" not in skip:
        f = report["floor"]
        print(f"\nd. One decode step of a {f['params'] / 1e6:.0f}M-parameter Llama "
              f"({f['shape']}), random float32 weights, {f['context']} cached tokens")
        table(["weight bytes", "copy bandwidth (1 thread)", "floor ms", "measured ms",
               "measured / floor", "gemv read bandwidth (BLAS threads)", "gemv floor ms",
               "measured / gemv floor"],
              [[f"{f['weight_bytes'] / 1e6:.0f} MB", f"{bw['gb_per_s']:.2f} GB/s",
                f"{f['floor_ms']:.1f}", f"{f['step_ms']:.1f}", f"{f['ratio']:.2f}x",
                f"{rbw['gb_per_s']:.2f} GB/s", f"{f['gemv_floor_ms']:.1f}",
                f"{f['step_ms'] / f['gemv_floor_ms']:.2f}x"]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
