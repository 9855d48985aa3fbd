"""Token counts that are exact: the model's own tokenizer behind a cache keyed by text.

The context builder tokenizes every piece of the prompt on its own (a file, a chunk of the
current file, a diff), so the ids it lays out are exactly the ids it counted. Most pieces
do not change between keystrokes, so they are tokenized once and then found here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Ids = tuple[int, ...]


@dataclass(frozen=True)
class TokenStats:
    hits: int
    misses: int
    cached_tokens: int
    cached_texts: int


class TokenCounter:
    """Literal encoding (special-token strings in the text stay text) with an LRU cache.

    Cache: key = the text itself; value = its ids (a tuple, shared, never mutated). Bound:
    `max_cached_tokens` ids in all (each entry counts at least one), least recently used
    dropped first. Nothing invalidates an entry: a text's ids never change for one
    tokenizer, and one counter serves one tokenizer.
    """

    def __init__(self, encode_batch: Callable[[list[str]], list[list[int]]], *,
                 max_cached_tokens: int = 4_000_000,
                 decode: Callable[[list[int]], str] | None = None) -> None:
        self._encode_batch = encode_batch
        self._decode = decode
        self.max_cached_tokens = max_cached_tokens
        self._cache: OrderedDict[str, Ids] = OrderedDict()
        self._cached_tokens = 0
        self._hits = 0
        self._misses = 0

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, *, max_cached_tokens: int = 4_000_000
                       ) -> TokenCounter:
        """A counter over an `engine.tokenizer.Tokenizer` (its literal `encode_batch`)."""
        return cls(tokenizer.encode_batch, max_cached_tokens=max_cached_tokens,
                   decode=tokenizer.decode)

    def encode(self, text: str) -> list[int]:
        return list(self.ids(text))

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self.ids_many(texts)]

    def ids(self, text: str) -> Ids:
        """`encode` without the copy: the cached tuple itself."""
        found = self._cache.get(text)
        if found is not None:
            self._hits += 1
            self._cache.move_to_end(text)
            return found
        return self.ids_many([text])[0]

    def ids_many(self, texts: Sequence[str]) -> list[Ids]:
        """Ids of each text; the misses go to the tokenizer in one batch."""
        out: list[Ids | None] = []
        missing: dict[str, list[int]] = {}  # text -> positions in `out`
        cache = self._cache
        for i, text in enumerate(texts):
            found = cache.get(text)
            if found is None:
                missing.setdefault(text, []).append(i)
            else:
                self._hits += 1
                cache.move_to_end(text)
            out.append(found)
        if missing:
            todo = [t for t in missing if t]
            encoded = self._encode_batch(todo) if todo else []
            results = dict(zip(todo, (tuple(ids) for ids in encoded), strict=True))
            results.setdefault("", ())
            for text, positions in missing.items():
                ids = results[text]
                self._misses += 1
                self._store(text, ids)
                for i in positions:
                    out[i] = ids
        return out  # type: ignore[return-value]  # every None was filled

    def count(self, text: str) -> int:
        return len(self.ids(text))

    def decode(self, ids: list[int]) -> str | None:
        """Text of ids, or None without a decoder (token healing is then skipped)."""
        return self._decode(ids) if self._decode is not None else None

    def stats(self) -> TokenStats:
        return TokenStats(hits=self._hits, misses=self._misses,
                          cached_tokens=self._cached_tokens, cached_texts=len(self._cache))

    def _store(self, text: str, ids: Ids) -> None:
        cost = max(1, len(ids))
        if cost > self.max_cached_tokens:
            return
        self._cache[text] = ids
        self._cached_tokens += cost
        while self._cached_tokens > self.max_cached_tokens:
            _, old = self._cache.popitem(last=False)
            self._cached_tokens -= max(1, len(old))
