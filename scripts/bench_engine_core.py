"""Quick timings of the numpy decoder: decode ms/token at a context, prefill ms.

Usage: python scripts/bench_engine_core.py [--model DIR]
"""

from __future__ import annotations

import argparse
import statistics
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
        runs = []
        for _ in range(5):  # median of 5: the 2-core machine is shared and noisy
            t0 = time.perf_counter()
            for _ in range(args.steps):
                cache.truncate(ctx)  # every step decodes at exactly `ctx` cached tokens
                model.forward([tok], cache)
            runs.append((time.perf_counter() - t0) * 1e3 / args.steps)
        print(f"decode  context {ctx:5d}: {statistics.median(runs):6.3f} ms/token (median)")
    for n in (500, 2000):
        runs = []
        for _ in range(5):
            cache = model.new_cache()
            t0 = time.perf_counter()
            model.forward(rng.integers(0, vocab, n), cache, last_n=1)
            runs.append((time.perf_counter() - t0) * 1e3)
        print(f"prefill {n:5d} tokens: {statistics.median(runs):7.1f} ms (median)")


if __name__ == "__main__":
    main()
