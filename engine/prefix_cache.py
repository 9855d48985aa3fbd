"""Keys and values of recent prompts, reused by the next request that shares a prefix.

Consecutive keystrokes send prompts that share all but their last few tokens (the
prompt layout is kept stable for exactly this), so a request copies the cached
keys/values of its longest known prefix into a fresh ``KVCache`` and prefills only
the rest. Like vLLM's automatic prefix caching, the unit is a block of
``block_size`` tokens and a block is found through the chain of its ancestors.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.kv_cache import KVCache

BlockKey = tuple[int, tuple[int, ...]]  # (id of the parent block, 0 for the root; tokens)


@dataclass(frozen=True, kw_only=True)
class _Block:
    id: int
    keys: np.ndarray  # [L, KV, hd, B]
    values: np.ndarray  # [L, KV, B, hd]

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes


class PrefixCache:
    """KV blocks of recently seen token sequences, for one model.

    Key: a block of ``block_size`` tokens is stored under (its parent block's id,
    its own tokens), so a chain of keys spells the whole prefix. Dict lookups
    compare the token tuples themselves, so two different prefixes never alias
    (no hash can collide). Only whole blocks are cached.

    Bound: the keys and values held never exceed ``max_bytes``; the least recently
    used block goes first. Every lookup or insert touches a chain from its deepest
    block up to the root, so a parent is always more recent than its children and
    the least recently used block is always a leaf: eviction never strands a
    reachable block behind a missing parent.

    Invalidation: an entry depends only on its tokens and the model's weights, so
    nothing invalidates it while the cache lives; the cache belongs to one loaded
    model (the target owns both) and goes with it. It is driven from the one worker
    thread only, so it takes no locks.
    """

    def __init__(self, *, max_bytes: int, block_size: int = 64) -> None:
        if max_bytes < 0 or block_size < 1:
            raise ValueError("max_bytes must be >= 0 and block_size >= 1")
        self.max_bytes = max_bytes
        self.block_size = block_size
        self.nbytes = 0
        self.hits = 0  # lookups that reused at least one block
        self.lookups = 0
        self._blocks: OrderedDict[BlockKey, _Block] = OrderedDict()  # LRU first
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._blocks)

    def _chain(self, tokens: Sequence[int], n_blocks: int) -> list[tuple[BlockKey, _Block]]:
        """The cached blocks spelling tokens[: B * n] for the largest n <= n_blocks."""
        b, parent, found = self.block_size, 0, []
        for i in range(n_blocks):
            key = (parent, tuple(tokens[i * b : (i + 1) * b]))
            block = self._blocks.get(key)
            if block is None:
                break
            found.append((key, block))
            parent = block.id
        return found

    def _touch(self, chain: list[tuple[BlockKey, _Block]]) -> None:
        for key, _ in reversed(chain):  # deepest first, so the root ends up most recent
            self._blocks.move_to_end(key)

    def lookup(self, tokens: Sequence[int], cache: KVCache, *, max_tokens: int) -> int:
        """Copy the longest cached prefix of ``tokens`` (at most ``max_tokens``, whole
        blocks) into the empty ``cache``; return how many tokens it now holds.

        A caller keeps ``max_tokens`` below the prompt length: the last prompt token
        must still run through the model to give the next token's logits.
        """
        assert cache.length == 0, "lookup fills an empty cache"
        self.lookups += 1
        chain = self._chain(tokens, max(0, max_tokens) // self.block_size)
        if not chain:
            return 0
        self.hits += 1
        self._touch(chain)
        cache.reserve(len(chain) * self.block_size)
        for _, block in chain:
            cache.extend(block.keys, block.values)
        return cache.length

    def insert(self, tokens: Sequence[int], cache: KVCache) -> None:
        """Remember the whole blocks of ``tokens[: cache.length]`` (the cache holds
        their keys and values at positions 0..), then evict down to the bound."""
        n_blocks = min(len(tokens), cache.length) // self.block_size
        if n_blocks == 0 or self.max_bytes == 0:
            return
        chain = self._chain(tokens, n_blocks)
        b = self.block_size
        parent = chain[-1][1].id if chain else 0
        for i in range(len(chain), n_blocks):
            keys, values = cache.export(i * b, (i + 1) * b)
            block = _Block(id=next(self._ids), keys=keys, values=values)
            key = (parent, tuple(tokens[i * b : (i + 1) * b]))
            self._blocks[key] = block
            self.nbytes += block.nbytes
            chain.append((key, block))
            parent = block.id
        self._touch(chain)
        while self.nbytes > self.max_bytes:
            _, evicted = self._blocks.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def stats(self) -> dict[str, int]:
        return {"blocks": len(self._blocks), "bytes": self.nbytes, "max_bytes": self.max_bytes,
                "block_size": self.block_size, "lookups": self.lookups, "hits": self.hits}
