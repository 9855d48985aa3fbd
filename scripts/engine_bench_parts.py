"""Pieces of scripts/bench_engine.py that do not need a trained model: the cost of a pass of
K tokens, a ~100M-parameter Llama with random weights against its memory-bandwidth floor,
the copy bandwidth, the BLAS thread count, a stream of real code tokens, and the table
printer."""

from __future__ import annotations

import ctypes
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


def pass_costs(model: Transformer, name: str, contexts: list[int], reps: int = 15
               ) -> list[dict[str, Any]]:
    """Median ms of one forward pass of K tokens on top of `context` cached tokens, as a
    verification pass runs it (K rows of logits). Token values do not change the cost."""
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

            ms[str(k)] = _median_ms(one, reps if k < 64 else max(5, reps // 2))
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
    """Bytes of every weight as the engine holds them (float32; the tied lm_head is a view of
    the embedding and counted once)."""
    total = model.embed.nbytes + model.final_norm.nbytes
    for lw in model.layers:
        total += sum(a.nbytes for a in vars(lw).values() if a is not None)
    if not model.config.tie_word_embeddings:
        total += model.lm_head.nbytes
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
