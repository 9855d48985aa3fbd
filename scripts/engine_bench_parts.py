"""Pieces of scripts/bench_engine.py: the cost of a pass of K tokens, a ~100M-parameter
Llama with random weights against its memory-bandwidth floor (copy and gemv bandwidths),
the BLAS thread count, a stream of real code tokens, the table printer, and the "why" of
the edit rows: the share of new-region tokens a copy can supply, and speculation replayed
on known outputs with the engine's own drafters and tuner, costed with measured passes."""

from __future__ import annotations

import ctypes
import difflib
import glob
import os
import statistics
import sysconfig
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.kv_cache import KVCache
from engine.model import ModelConfig, Transformer
from engine.rope import RopeConfig
from engine.speculative import DraftTuner, SpecConfig, Speculation
from engine.tokenizer import Tokenizer

REPO = Path(__file__).resolve().parent.parent
KS = (1, 4, 16, 64)
# ~100M parameters, Llama-shaped: 12 x 6.3M in the layers + 24.6M tied embedding.
BIG_SHAPE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "num_key_value_heads": 4, "intermediate_size": 2048, "vocab_size": 32000}


def table(headers: list[str], rows: list[list[Any]]) -> None:
    """A Markdown table with aligned columns (pasted as is into the README)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(line(r))


def blas_threads() -> int | None:
    """Threads numpy's bundled OpenBLAS will use (None when it cannot be asked)."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                     "openblas_get_num_threads"):
            if hasattr(lib, name):
                return int(getattr(lib, name)())
    return None


def token_stream(tok: Tokenizer, n: int) -> list[int]:
    """At least n tokens of real Python (this repository, then the standard library), files
    joined by <|file_sep|>path: what a long repository context looks like."""
    sep = tok.special_ids["<|file_sep|>"]
    paths = sorted(p for d in ("engine", "lsp_server", "scripts") for p in (REPO / d).rglob("*.py"))
    paths += sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    out: list[int] = []
    for p in paths:
        out += [sep, *tok.encode(f"{p.name}\n{p.read_text(encoding='utf-8', errors='replace')}")]
        if len(out) >= n:
            return out[:n]
    raise RuntimeError(f"only {len(out)} tokens of source found, {n} wanted")


def _median_ms(fn: Any, reps: int, warm: int = 2) -> float:
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def pass_costs(model: Transformer, name: str, contexts: list[int], reps: int = 31
               ) -> list[dict[str, Any]]:
    """Median ms of one forward pass of K tokens on top of `context` cached tokens, as a
    verification pass runs it (K rows of logits). Token values do not change the cost.
    A model whose weights exceed 64 MB gets a third of the repetitions (its passes are
    slow and steadier)."""
    if weight_bytes(model) > 64 << 20:
        reps = max(5, reps // 3)
    rng = np.random.default_rng(0)
    vocab = model.config.vocab_size
    rows = []
    for ctx in contexts:
        cache = model.new_cache()
        model.forward(rng.integers(0, vocab, ctx), cache, last_n=1)
        ms = {}
        for k in KS:
            toks = rng.integers(0, vocab, k)

            def one(toks: np.ndarray = toks, k: int = k, cache: KVCache = cache,
                    ctx: int = ctx) -> None:
                cache.truncate(ctx)  # every pass runs at exactly `ctx` cached tokens
                model.forward(toks, cache, last_n=k)

            ms[str(k)] = _median_ms(one, reps)
        rows.append({"model": name, "context": ctx, "ms": ms,
                     "ms_per_token": {k: v / int(k) for k, v in ms.items()}})
    return rows


def copy_bandwidth(mib: int = 256, reps: int = 7) -> dict[str, Any]:
    """Best-of-`reps` single-thread copy of a `mib` MiB float32 array (numpy copies on one
    thread). Bandwidth counts the bytes copied once; the memory traffic is twice that."""
    src = np.ones(mib << 18, np.float32)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(reps))
    return {"bytes": src.nbytes, "best_s": best, "gb_per_s": src.nbytes / best / 1e9,
            "reps": reps}


def read_bandwidth(mib: int = 256, reps: int = 7) -> dict[str, Any]:
    """Best-of-`reps` matrix-vector product over a `mib` MiB float32 matrix: the rate at
    which BLAS (with its threads) streams weights, which is what a decode step does. On
    this machine it beats the single-thread copy, so the copy floor is not a hard floor."""
    a = np.ones((mib << 8, 1024), np.float32)
    v = np.ones(1024, np.float32)
    best = min(_timed(lambda: a @ v) for _ in range(reps))
    return {"bytes": a.nbytes, "best_s": best, "gb_per_s": a.nbytes / best / 1e9,
            "reps": reps, "blas_threads": blas_threads()}


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def big_model(seed: int = 0) -> Transformer:
    """The ~100M Llama of BIG_SHAPE with N(0, 0.02) float32 weights and tied embeddings
    (so every weight byte is read once per decode step: the embedding is the lm_head)."""
    s = BIG_SHAPE
    hd = s["hidden_size"] // s["num_attention_heads"]
    config = ModelConfig(**s, head_dim=hd, rope=RopeConfig(theta=500000.0),
                         max_position_embeddings=8192, tie_word_embeddings=True)
    rng = np.random.default_rng(seed)
    d, i, kv = s["hidden_size"], s["intermediate_size"], s["num_key_value_heads"] * hd

    def w(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)

    weights = {"model.embed_tokens.weight": w(s["vocab_size"], d),
               "model.norm.weight": np.ones(d, np.float32)}
    for layer in range(s["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        weights |= {p + "self_attn.q_proj.weight": w(d, d), p + "self_attn.k_proj.weight": w(kv, d),
                    p + "self_attn.v_proj.weight": w(kv, d), p + "self_attn.o_proj.weight": w(d, d),
                    p + "mlp.gate_proj.weight": w(i, d), p + "mlp.up_proj.weight": w(i, d),
                    p + "mlp.down_proj.weight": w(d, i),
                    p + "input_layernorm.weight": np.ones(d, np.float32),
                    p + "post_attention_layernorm.weight": np.ones(d, np.float32)}
    return Transformer(config, weights)


def weight_bytes(model: Transformer) -> int:
    """Bytes of every weight as the engine holds them (float32; the tied output head is
    the embedding and counted once)."""
    total = model.embed.nbytes + model.final_norm.nbytes
    for lw in model.layers:
        total += sum(a.nbytes for a in vars(lw).values() if a is not None)
    if not model.config.tie_word_embeddings:
        total += model.unembed.nbytes
    return total


def decode_floor(model: Transformer, bandwidth: dict[str, Any], context: int = 128,
                 reps: int = 15) -> dict[str, Any]:
    """Median ms of one decode step (1 token, `context` cached tokens: attention is
    negligible, the step should be weight-bound) against weight bytes / copy bandwidth."""
    rng = np.random.default_rng(1)
    cache = model.new_cache()
    model.forward(rng.integers(0, model.config.vocab_size, context), cache, last_n=1)
    tok = np.array([7])

    def step() -> None:
        cache.truncate(context)
        model.forward(tok, cache)

    ms = _median_ms(step, reps, warm=3)
    nbytes = weight_bytes(model)
    floor_ms = nbytes / (bandwidth["gb_per_s"] * 1e9) * 1e3
    params = nbytes // 4
    s = BIG_SHAPE
    shape = (f"hidden {s['hidden_size']}, {s['num_hidden_layers']} layers, "
             f"{s['num_attention_heads']} heads / {s['num_key_value_heads']} kv, ffn "
             f"{s['intermediate_size']}, vocab {s['vocab_size']}, tied embeddings")
    return {"params": params, "shape": shape, "weight_bytes": nbytes, "context": context,
            "step_ms": ms, "floor_ms": floor_ms, "ratio": ms / floor_ms, "reps": reps}


def interpolate_cost(ms_by_k: dict[str, float]) -> Any:
    """Piecewise-linear pass cost (ms) in the number of tokens a pass runs, through the
    measured points K = 1, 4, 16, 64 (extrapolated past the last)."""
    xs = [int(k) for k in ms_by_k]
    ys = [ms_by_k[str(k)] for k in xs]

    def cost(t: int) -> float:
        if t >= xs[-1]:
            return ys[-1] + (t - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return float(np.interp(t, xs, ys))

    return cost


def project(items: list[tuple[list[int], list[int], list[int], str]], vocab: int,
            cost: Any, overhead_ms: float, eos: int | None) -> dict[str, Any]:
    """Speculation replayed without the model: the engine's own drafters and DraftTuner
    (fed the measured pass cost) propose drafts, and a pass accepts the longest prefix of
    the draft that equals the known output. items: (prompt, source of the copy drafter,
    output, drafter name: "region" or "previous"). Returns decode passes (after the first)
    and the projected rate after the first token over plain decoding's (one token per pass),
    both paying the measured per-pass overhead of generate(). An EOS is emitted, not counted
    as a token (as generate() counts)."""
    tuner = DraftTuner()
    passes = tokens = 0
    spec_ms = 0.0
    for prompt, source, output, drafter in items:
        spec = Speculation(SpecConfig(drafters=(drafter, "lookup")), tuner, prompt=prompt,
                           region=source if drafter == "region" else None,
                           previous=source if drafter == "previous" else None,
                           vocab_size=vocab)
        seq, n = list(prompt), 0
        while n < len(output):
            name, draft = spec.propose(seq, n, len(output) + 16 - n - 1)
            acc = 0
            while acc < len(draft) and n + acc < len(output) and draft[acc] == output[n + acc]:
                acc += 1
            new = output[n : n + acc + 1]
            t = len(draft) + 1
            spec.record(name, len(draft), acc, t if n else None, cost(t) / 1e3)
            if n:  # the first pass carries the prompt: the same prefill in both modes
                passes += 1
                tokens += sum(1 for x in new if x != eos)
                spec_ms += cost(t) + overhead_ms
            seq += new
            n += len(new)
    plain_ms_per_token = cost(1) + overhead_ms
    return {"decode_passes": passes, "decode_tokens": tokens,
            "tokens_per_pass": tokens / max(1, passes), "projected_ms": spec_ms,
            "plain_ms_per_token": plain_ms_per_token,
            "speedup_after_first": tokens * plain_ms_per_token / max(1e-9, spec_ms)}


def copyable_fraction(pairs: list[tuple[list[int], list[int]]]) -> float:
    """Share of the new regions' tokens that difflib matches in the old regions: an upper
    bound on what a copy drafter can supply; every other token costs a pass of its own."""
    matched = total = 0
    for old, new in pairs:
        blocks = difflib.SequenceMatcher(None, old, new, autojunk=False).get_matching_blocks()
        matched += sum(b.size for b in blocks)
        total += len(new)
    return matched / max(1, total)


def projections(edits: dict[str, Any], known: list[tuple[list[int], ...]],
                costs: dict[str, Any], vocab: int, eos: int | None) -> dict[str, Any]:
    """Tokens per pass and speedup after the first token if the model's output were known:
    region_new (a model that makes the real edit, drafted from region_old) and the plain
    output (the repeat mode, as a check of the projection against its measurement)."""
    cost = interpolate_cost(costs["ms"])
    plain = edits["plain"]
    overhead = max(0.0, 1e3 * plain["after_first_s"] / plain["after_first_tokens"] - cost(1))
    return {"pass_cost_context": costs["context"], "pass_ms": costs["ms"],
            "overhead_ms_per_pass": overhead,
            "perfect_model": project([(p, old, new, "region") for p, old, new, _ in known],
                                     vocab, cost, overhead, eos),
            "repeat": project([(p, out, out, "previous") for p, _, _, out in known],
                              vocab, cost, overhead, eos)}
