"""The `score` request: the log-probability of each token given the ones before it.

Scoring is a prefill that keeps every row of logits, so it runs through the same
backend ``forward`` as decoding, in slices: the full ``[T, V]`` logits of a
128k-token sequence would take gigabytes, a slice's take a few megabytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.backend import Backend
from engine.request import ContextOverflowError
from engine.targets.base import ShouldStop

SCORE_SLICE = 256  # tokens per forward call: [256, V] logits at a time


def tokens_from_wire(tokens: Any, *, vocab_size: int, context_limit: int) -> list[int]:
    """Validate the wire ``tokens`` of a score request.

    Raises ValueError naming the problem, or ContextOverflowError (a ValueError) with
    both the length and the limit when the sequence does not fit the context.
    """
    if not isinstance(tokens, list | tuple) or not tokens:
        raise ValueError("tokens: must be a non-empty list of token ids")
    for i, t in enumerate(tokens):
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab_size:
            raise ValueError(f"tokens[{i}]: {t!r} is not a token id (0..{vocab_size - 1})")
    if len(tokens) > context_limit:
        raise ContextOverflowError(
            f"{len(tokens)} tokens to score exceed the model's context limit of "
            f"{context_limit} tokens")
    return [int(t) for t in tokens]


def score(model: Backend, tokens: list[int],
          should_stop: ShouldStop | None = None) -> list[float | None]:
    """[None, log p(t1 | t0), log p(t2 | t0 t1), ...] under ``model``.

    Stops early (returning the scores so far) when ``should_stop()`` turns true
    between slices; the caller tells a short answer from a full one by its length.
    """
    cache = model.new_cache()
    out: list[float | None] = [None]
    # The last token is only ever a target, never an input: T - 1 positions.
    inputs = np.asarray(tokens[:-1], np.int64)  # [T-1]
    for start in range(0, inputs.shape[0], SCORE_SLICE):
        if should_stop is not None and should_stop():
            break
        logits = model.forward(inputs[start : start + SCORE_SLICE], cache)  # [t, V] float32
        wide = logits.astype(np.float64)  # log-softmax in float64: no cancellation error
        peak = wide.max(axis=-1, keepdims=True)  # [t, 1]
        log_z = peak[:, 0] + np.log(np.exp(wide - peak).sum(axis=-1))  # [t]
        targets = np.asarray(tokens[start + 1 : start + 1 + logits.shape[0]])  # [t]
        picked = wide[np.arange(targets.shape[0]), targets]  # [t]
        out.extend(float(x) for x in picked - log_z)
    return out
