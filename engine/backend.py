"""The seam between the decode loop and whatever computes: what a compute backend provides.

The decode loop (engine/generate.py), scoring, warm-up prefill and every drafter need
four things and nothing else (ARCHITECTURE.md, "Compute backends"):

- ``forward(tokens, cache, last_n)``: run new tokens at ``cache.length..`` and append
  them to the cache; logits of the last ``last_n`` rows;
- the cache's ``length``;
- ``cache.truncate(n)``: drop rejected draft tokens;
- a prefix store's ``lookup`` / ``insert``: reuse a prompt prefix across requests.

Two backends implement it: the numpy ``Transformer`` (engine/model.py; exact, the
reference, zero build) and ``GgmlModel`` (engine/ggml/model.py; llama.cpp's kernels and
quantized GGUF weights). Which one a model runs on is chosen in engine/backend_choice.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

BACKENDS = ("numpy", "ggml")


@runtime_checkable
class Cache(Protocol):
    """One sequence's keys and values, wherever they live."""

    @property
    def length(self) -> int: ...

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` tokens; a later pass computes what it would on a cache
        that never held the rest."""
        ...


class PrefixStore(Protocol):
    """Keys and values of earlier prompts, reused by a request sharing a prefix."""

    def lookup(self, tokens: Sequence[int], cache: Any, *, max_tokens: int) -> int:
        """Fill the empty ``cache`` with the longest known prefix of ``tokens`` (at most
        ``max_tokens``); return how many tokens it now holds."""
        ...

    def insert(self, tokens: Sequence[int], cache: Any) -> None:
        """Remember ``tokens[: cache.length]``, whose keys and values ``cache`` holds."""
        ...

    def stats(self) -> dict[str, int]: ...


@runtime_checkable
class Backend(Protocol):
    name: str  # "numpy" | "ggml"
    weights: str  # how the weights are held: "f32", "bf16", "q8_0", "q4_k_m", ...
    weights_bytes: int  # bytes of weights the backend reads (resident or mapped)
    vocab_size: int
    context_limit: int
    kv_bytes_per_token: int
    untrained: bool
    fim_order: str  # "spm" | "psm"
    prefill_slice: int  # prompt tokens per forward call of a prefill: a fraction of a second

    def new_cache(self) -> Any: ...

    def forward(self, tokens: np.ndarray | list[int], cache: Any, *,
                last_n: int | None = None) -> np.ndarray:
        """logits [last_n, V] float32 of the new tokens' last rows (all rows if None)."""
        ...

    def new_prefix_store(self, max_bytes: int) -> PrefixStore: ...

    def describe(self) -> dict[str, Any]:
        """``info`` fields: {backend, weights, weights_bytes, ...}."""
        ...
