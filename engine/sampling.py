"""Choosing the next token from logits: greedy, temperature, nucleus (top-p).

All randomness comes from a caller-owned ``numpy.random.Generator`` so that a
request's ``seed`` reproduces its output exactly.
"""

from __future__ import annotations

import numpy as np


def greedy(logits: np.ndarray) -> int:
    """Argmax of logits [V]; ties go to the lowest id (numpy's argmax)."""
    return int(np.argmax(logits))


def probabilities(logits: np.ndarray, temperature: float, top_p: float = 1.0) -> np.ndarray:
    """The distribution sampled from: softmax(logits / T) cut to the top-p nucleus.

    logits: [V] -> probs [V] float64 summing to 1. Float64 so that the cumulative
    sum over a large vocabulary is not biased by rounding.
    """
    assert temperature > 0 and 0 < top_p <= 1
    z = logits.astype(np.float64) / temperature  # [V]
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")  # [V], most likely first
        cum = np.cumsum(p[order])
        # Keep the smallest prefix whose mass reaches top_p (at least one token).
        n_keep = int(np.searchsorted(cum, top_p, side="left")) + 1
        kept = np.zeros_like(p)
        kept[order[:n_keep]] = p[order[:n_keep]]
        p = kept / kept.sum()
    return p


def sample(
    logits: np.ndarray, *, temperature: float, top_p: float, rng: np.random.Generator
) -> int:
    """One token id from logits [V]; temperature 0 is greedy and uses no randomness."""
    if temperature == 0:
        return greedy(logits)
    p = probabilities(logits, temperature, top_p)
    # Inverse-CDF with one uniform draw: cheaper than rng.choice over a large vocabulary.
    idx = int(np.searchsorted(np.cumsum(p), rng.random(), side="right"))
    return min(idx, p.shape[0] - 1)
