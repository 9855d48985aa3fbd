"""Per-sequence key/value cache for the numpy decoder.

Keys and values of every layer live in one array each. Keys are stored
transposed, ``[L, KV, hd, capacity]``, values as ``[L, KV, capacity, hd]``: then
both attention products (``q @ K^T`` and ``p @ V``) are plain batched matmuls over
strided views, which numpy hands to BLAS directly. A transposed view as the
right operand falls off BLAS (measured 5x slower at a 2k-token context).
Capacity grows geometrically in whole blocks as tokens are appended: a
128k-token context is never allocated up front, and appending one token at a
time costs amortised O(1) copies.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class CacheShape(Protocol):
    """What the cache needs of a model's configuration: engine.model.ModelConfig has it (not
    imported: the model builds its caches, so the dependency runs from the model to here)."""

    @property
    def num_hidden_layers(self) -> int: ...

    @property
    def num_key_value_heads(self) -> int: ...

    @property
    def head_dim(self) -> int: ...

    @property
    def max_position_embeddings(self) -> int: ...


class KVCache:
    """Keys and values for one sequence.

    Protocol used by ``Transformer.forward``: ``reserve(T)`` once, then per layer
    ``update(layer, k, v)`` which writes at ``length`` and returns views over the
    ``length + T`` cached positions, then ``advance(T)`` once all layers are done.
    A forward pass that raises midway leaves ``length`` unchanged.
    """

    def __init__(self, config: CacheShape, *, block_size: int = 256, dtype=np.float32) -> None:
        self.n_layers = config.num_hidden_layers
        self.n_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.max_length = config.max_position_embeddings
        self.block_size = block_size
        self.dtype = np.dtype(dtype)
        self.length = 0
        self._alloc(0)

    def _alloc(self, capacity: int) -> None:
        n, kv, hd = self.n_layers, self.n_kv_heads, self.head_dim
        self.keys = np.zeros((n, kv, hd, capacity), self.dtype)  # [L, KV, hd, cap]
        self.values = np.zeros((n, kv, capacity, hd), self.dtype)  # [L, KV, cap, hd]

    @property
    def capacity(self) -> int:
        return self.values.shape[2]

    @property
    def bytes_per_token(self) -> int:
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes

    def reserve(self, n_new: int) -> None:
        """Make room for ``n_new`` more tokens."""
        need = self.length + n_new
        if need > self.max_length:
            raise ValueError(f"KV cache overflow: {need} tokens > context limit {self.max_length}")
        if need <= self.capacity:
            return
        # Grow by at least half the current size (amortised O(1) per token),
        # rounded to whole blocks and clipped at the context limit.
        target = max(need, self.capacity + self.capacity // 2)
        target = -(-target // self.block_size) * self.block_size
        target = min(target, self.max_length)
        old_k, old_v = self.keys, self.values
        self._alloc(target)
        self.keys[..., : self.length] = old_k[..., : self.length]
        self.values[:, :, : self.length] = old_v[:, :, : self.length]

    def update(
        self, layer: int, k: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Write new keys/values for ``layer`` and return all cached ones.

        k, v: [T, KV, hd] -> (keys [KV, hd, S], values [KV, S, hd]), S = length + T.
        """
        end = self.length + k.shape[0]
        assert end <= self.capacity, "reserve() must be called before update()"
        self.keys[layer, :, :, self.length : end] = k.transpose(1, 2, 0)
        self.values[layer, :, self.length : end] = v.transpose(1, 0, 2)
        return self.keys[layer, :, :, :end], self.values[layer, :, :end]

    def advance(self, n: int) -> None:
        assert self.length + n <= self.capacity
        self.length += n

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` tokens (speculative rollback, prefix reuse).

        Exact: attention reads only positions ``[:length]`` and the next write
        starts at ``n``, so the stale entries beyond it can never be seen. A pass
        after ``truncate(n)`` computes what it would on a cache that never held them.
        """
        if not 0 <= n <= self.length:
            raise ValueError(f"truncate({n}) outside 0..{self.length}")
        self.length = n

    def export(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of positions start..end-1 (for the prefix cache).

        -> keys [L, KV, hd, n], values [L, KV, n, hd], n = end - start.
        """
        assert 0 <= start <= end <= self.length
        return self.keys[..., start:end].copy(), self.values[:, :, start:end].copy()

    def extend(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Append positions copied by ``export`` (a prefix-cache hit).

        keys [L, KV, hd, n], values [L, KV, n, hd].
        """
        n = values.shape[2]
        assert keys.shape[:3] == self.keys.shape[:3] and keys.dtype == self.dtype
        self.reserve(n)
        self.keys[..., self.length : self.length + n] = keys
        self.values[:, :, self.length : self.length + n] = values
        self.length += n
