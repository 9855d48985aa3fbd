"""The prefix cache: a hit computes what a fresh prefill would, the byte bound holds,
least recently used blocks go first, and generate reports the reuse."""

from __future__ import annotations

import numpy as np

from engine.generate import DecodeState, generate
from engine.kv_cache import KVCache
from engine.model import Transformer
from engine.prefix_cache import PrefixCache
from engine.request import GenerateParams
from engine.speculative import PLAIN
from engine.tokenizer import Tokenizer

B = 8  # block size used throughout


def tokens(n: int, seed: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(13, 8192, n)]


def prefilled(model: Transformer, ids: list[int]) -> KVCache:
    cache = model.new_cache()
    model.forward(np.array(ids), cache)
    return cache


def block_bytes(model: Transformer) -> int:
    return B * model.new_cache().bytes_per_token


def test_logits_after_a_hit_equal_a_fresh_prefill(model: Transformer) -> None:
    shared, first_tail, second_tail = tokens(29, 0), tokens(6, 1), tokens(9, 2)
    pc = PrefixCache(max_bytes=1 << 24, block_size=B)
    first = shared + first_tail
    pc.insert(first, prefilled(model, first))
    assert len(pc) == len(first) // B

    second = shared + second_tail
    cache = model.new_cache()
    hit = pc.lookup(second, cache, max_tokens=len(second) - 1)
    assert hit == 24 and cache.length == 24  # 3 whole blocks of the 29 shared tokens
    after_hit = model.forward(np.array(second[hit:]), cache)  # [T, V]
    fresh = model.forward(np.array(second), model.new_cache())[hit:]
    np.testing.assert_allclose(after_hit, fresh, rtol=1e-5, atol=1e-5)
    assert (after_hit.argmax(-1) == fresh.argmax(-1)).all()


def test_a_hit_always_leaves_the_last_prompt_token_to_run(model: Transformer) -> None:
    ids = tokens(16, 3)
    pc = PrefixCache(max_bytes=1 << 24, block_size=B)
    pc.insert(ids, prefilled(model, ids))
    assert pc.lookup(ids, model.new_cache(), max_tokens=len(ids) - 1) == 8
    assert pc.lookup(ids[:5], model.new_cache(), max_tokens=4) == 0
    assert pc.stats()["hits"] == 1 and pc.stats()["lookups"] == 2


def test_memory_bound_and_least_recently_used_first(model: Transformer) -> None:
    pc = PrefixCache(max_bytes=3 * block_bytes(model), block_size=B)
    a, b, c = tokens(B, 10), tokens(B, 11), tokens(B, 12)
    for ids in (a, b):
        pc.insert(ids, prefilled(model, ids))
    assert pc.lookup(a + [1], model.new_cache(), max_tokens=B) == B  # touch a: b is now LRU
    pc.insert(c, prefilled(model, c))
    assert pc.nbytes == 3 * block_bytes(model)
    d = tokens(B, 13)
    pc.insert(d, prefilled(model, d))  # over the bound: b goes
    assert pc.nbytes <= pc.max_bytes and len(pc) == 3
    found = {name: pc.lookup(ids + [1], model.new_cache(), max_tokens=B)
             for name, ids in {"a": a, "b": b, "c": c, "d": d}.items()}
    assert found == {"a": B, "b": 0, "c": B, "d": B}


def test_eviction_takes_leaves_so_a_prefix_stays_usable(model: Transformer) -> None:
    ids = tokens(5 * B, 20)
    pc = PrefixCache(max_bytes=2 * block_bytes(model), block_size=B)
    pc.insert(ids, prefilled(model, ids))  # 5 blocks into room for 2
    assert len(pc) == 2 and pc.nbytes <= pc.max_bytes
    assert pc.lookup(ids, model.new_cache(), max_tokens=len(ids) - 1) == 2 * B
    assert PrefixCache(max_bytes=0).lookup(ids, model.new_cache(), max_tokens=10) == 0


def test_generate_reports_cached_prompt_tokens_and_keeps_its_output(
        model: Transformer, tok: Tokenizer) -> None:
    state = DecodeState(prefix_cache=PrefixCache(max_bytes=1 << 24, block_size=B),
                        speculation=PLAIN)
    prompt = tokens(37, 30)
    cold = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=12), state=state)
    assert cold.stats["cached_prompt_tokens"] == 0
    # The next keystroke appends to the prompt: the old prompt and its output are cached.
    longer = prompt + cold.tokens[:5] + tokens(3, 31)
    warm = generate(model, tok, GenerateParams(tokens=tuple(longer), max_tokens=12), state=state)
    assert warm.stats["cached_prompt_tokens"] == (37 + 5) // B * B
    reference = generate(model, tok, GenerateParams(tokens=tuple(longer), max_tokens=12),
                         state=DecodeState(speculation=PLAIN))
    assert warm.tokens == reference.tokens
    assert warm.timing["prefill_ms"] > 0
