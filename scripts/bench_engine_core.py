"""Quick timings of the numpy decoder: decode ms/token at a context, prefill ms.

Usage: python scripts/bench_engine_core.py [--model DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from engine.model import load_model
from engine.models import default_model_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    model = load_model(args.model)
    rng = np.random.default_rng(0)
    vocab = model.config.vocab_size
    for ctx in (100, 2000):
        cache = model.new_cache()
        model.forward(rng.integers(0, vocab, ctx), cache, last_n=1)
        tok = int(rng.integers(0, vocab))
        for _ in range(10):  # warm-up
            model.forward([tok], cache)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            cache.truncate(ctx)  # every step decodes at exactly `ctx` cached tokens
            model.forward([tok], cache)
        ms = (time.perf_counter() - t0) * 1e3 / args.steps
        print(f"decode  context {ctx:5d}: {ms:6.3f} ms/token")
    for n in (500, 2000):
        best = float("inf")
        for _ in range(3):
            cache = model.new_cache()
            t0 = time.perf_counter()
            model.forward(rng.integers(0, vocab, n), cache, last_n=1)
            best = min(best, time.perf_counter() - t0)
        print(f"prefill {n:5d} tokens: {best * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
