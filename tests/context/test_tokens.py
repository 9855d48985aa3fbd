"""TokenCounter: a literal tokenizer behind an LRU cache bounded by tokens."""

from __future__ import annotations

import pytest

from lsp_server.context.tokens import TokenCounter


class FakeTokenizer:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        self.batches.append(list(texts))
        return [[ord(c) for c in t] for t in texts]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)


def test_hits_and_misses_and_one_batch() -> None:
    tok = FakeTokenizer()
    counter = TokenCounter.from_tokenizer(tok)
    assert counter.encode("ab") == [97, 98]
    assert counter.encode_many(["ab", "cd", "ef", "cd", ""]) == [
        [97, 98], [99, 100], [101, 102], [99, 100], []]
    assert tok.batches == [["ab"], ["cd", "ef"]]  # the misses in one batch, "" never sent
    stats = counter.stats()
    assert (stats.hits, stats.misses) == (1, 4)
    assert stats.cached_tokens == 2 + 2 + 2 + 1  # "" costs one
    assert counter.decode([104, 105]) == "hi"


def test_returned_lists_are_copies() -> None:
    counter = TokenCounter(FakeTokenizer().encode_batch)
    counter.encode("abc").append(1)
    assert counter.encode("abc") == [97, 98, 99]
    assert counter.decode([1]) is None


def test_lru_eviction_by_tokens() -> None:
    tok = FakeTokenizer()
    counter = TokenCounter(tok.encode_batch, max_cached_tokens=10)
    counter.encode("aaaa")
    counter.encode("bbbb")
    counter.encode("aaaa")  # refresh: "bbbb" is now the least recently used
    counter.encode("cccc")
    assert counter.stats().cached_tokens == 8
    tok.batches.clear()
    counter.encode("aaaa")
    counter.encode("cccc")
    assert tok.batches == []
    counter.encode("bbbb")
    assert tok.batches == [["bbbb"]]
    counter.encode("x" * 11)  # larger than the whole cache: returned, not stored
    assert counter.stats().cached_tokens <= 10


@pytest.fixture(scope="module")
def real_tokenizer():
    from engine.models import default_model_dir
    from engine.tokenizer import Tokenizer

    return Tokenizer.from_dir(default_model_dir())


def test_real_tokenizer_is_literal(real_tokenizer) -> None:
    counter = TokenCounter.from_tokenizer(real_tokenizer)
    text = 'marker = "<|fim_middle|>"\n'
    ids = counter.encode(text)
    assert real_tokenizer.special_ids["<|fim_middle|>"] not in ids
    assert ids == real_tokenizer.encode(text)
    assert counter.decode(ids) == text
