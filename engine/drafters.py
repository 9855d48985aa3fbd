"""Model-free drafters: guesses of the next tokens that one forward pass can verify.

- ``CopyDrafter`` copies from a source text expected to reappear in the output: the
  original region of an edit (``region``) or the previous suggestion for the same
  place (``previous``). After the output diverges from the source it re-synchronises
  by finding the last generated tokens in the source.
- ``PromptLookup`` finds the last few tokens earlier in prompt + output and proposes
  what followed them there (code repeats identifiers, argument lists, whole lines).
- ``SuggestionMemory`` keeps each place's last output for ``previous``.

A drafter only proposes; verification decides, so a bad guess costs time, never
correctness.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

MAX_MATCH = 4  # longest tail matched against a copy source
NEAR_WINDOW = 16  # a 1-token match counts only this close after the expected position
MAX_TYPED = 64  # the longest typed-through part of a previous suggestion looked for


class Drafter(Protocol):
    name: str

    def propose(self, seq: Sequence[int], n_out: int, k: int) -> list[int]:
        """Up to ``k`` tokens to follow ``seq`` (prompt + output; the last ``n_out``
        tokens are output)."""
        ...


class CopyDrafter:
    """Drafts by copying ``source`` from the point the output has reached in it.

    While the tokens added since the last pass continue the source at the point it
    was left, the point just moves on. Otherwise it is found afresh by matching the
    tail of prompt + output (4 tokens, then 3, 2, 1) against an n-gram index of the
    source, preferring the first match at or after the previous point: that picks
    the source up again after the model inserted or deleted something.
    A single-token match is trusted only within ``NEAR_WINDOW`` of the previous
    point. On the first pass (no output yet) the source is copied from its start
    (``from_start``: a region's rewrite) or from after the longest beginning of it
    that the prompt ends with (a previous suggestion the user has partly typed).
    """

    def __init__(self, name: str, source: Sequence[int], *, from_start: bool) -> None:
        self.name = name
        self.source = list(source)
        self.from_start = from_start
        self.pos = 0  # index in source just after the last matched tail
        self.seen = 0  # len(seq) at the last call; 0 before the first
        # ends[m][ngram] = sorted positions just after each occurrence of the m-gram
        self.ends: list[dict[tuple[int, ...], list[int]]] = [{} for _ in range(MAX_MATCH + 1)]
        for m in range(1, MAX_MATCH + 1):
            for end in range(m, len(self.source) + 1):
                self.ends[m].setdefault(tuple(self.source[end - m : end]), []).append(end)

    def _typed_through(self, seq: Sequence[int]) -> int:
        """The longest j such that seq ends with source[:j] (0 if none)."""
        for j in range(min(len(self.source), len(seq), MAX_TYPED), 0, -1):
            if list(seq[-j:]) == self.source[:j]:
                return j
        return 0

    def _locate(self, seq: Sequence[int]) -> int | None:
        for m in range(min(MAX_MATCH, len(seq)), 0, -1):
            ends = self.ends[m].get(tuple(seq[-m:]))
            if not ends:
                continue
            i = bisect.bisect_left(ends, self.pos)
            if m == 1:
                if i < len(ends) and ends[i] < self.pos + NEAR_WINDOW:
                    return ends[i]
                continue
            return ends[i] if i < len(ends) else ends[-1]
        return None

    def propose(self, seq: Sequence[int], n_out: int, k: int) -> list[int]:
        if n_out == 0:
            # A rewrite starts where its region starts; a previous suggestion continues
            # after the part of it that the user has typed since (the prompt's tail).
            self.pos = 0 if self.from_start else self._typed_through(seq)
            self.seen = len(seq)
            return self.source[self.pos : self.pos + k]
        # Still in step: the tokens since the last call continue the source where it
        # was left. Checked first because repetitive code makes tail matches ambiguous.
        fresh = list(seq[self.seen :])
        if self.seen and fresh and self.source[self.pos : self.pos + len(fresh)] == fresh:
            end: int | None = self.pos + len(fresh)
        else:
            end = self._locate(seq)
        self.seen = len(seq)
        if end is None:
            return []
        self.pos = end
        return self.source[end : end + k]


# Exact rolling n-gram keys: 21 bits per token packs 3 tokens into an int64 for any
# vocabulary below 2M ids, so equal keys mean equal n-grams (no collision checks).
_BITS = 21
NGRAM_SIZES = (3, 2)


def _ngram_keys(tokens: np.ndarray, n: int) -> np.ndarray:
    """tokens [P] int64 -> keys [P - n + 1] of each n-gram, key i covering tokens[i:i+n]."""
    keys = np.zeros(max(0, tokens.shape[0] - n + 1), np.int64)
    for j in range(n):
        keys <<= _BITS
        keys |= tokens[j : j + keys.shape[0]]
    return keys


class PromptLookup:
    """Drafts the continuation of the most recent earlier occurrence of the last 3
    (else 2) tokens in prompt + output.

    The prompt's n-gram keys are built once per request with a few vectorised numpy
    calls (a 128k-token prompt costs about a millisecond, where a Python dict would
    cost tens), and scanned per pass; output n-grams go to a small dict as they come.
    """

    name = "lookup"

    def __init__(self, prompt: Sequence[int], vocab_size: int) -> None:
        assert vocab_size < 1 << _BITS, "n-gram keys pack 21 bits per token"
        self.n_prompt = len(prompt)
        tokens = np.asarray(prompt, np.int64)
        self.prompt_keys = {n: _ngram_keys(tokens, n) for n in NGRAM_SIZES}
        self.out_ends: dict[int, dict[int, int]] = {n: {} for n in NGRAM_SIZES}  # last end
        self.indexed = len(prompt)  # seq[:indexed] is in the index

    @staticmethod
    def _key(ngram: Sequence[int]) -> int:
        key = 0
        for t in ngram:
            key = (key << _BITS) | int(t)
        return key

    def _index(self, seq: Sequence[int]) -> None:
        # An n-gram ending at `end` joins the index only once a later tail can use it:
        # the tail itself must not find itself.
        for end in range(self.indexed, len(seq)):
            for n in NGRAM_SIZES:
                if end - n >= 0 and end > self.n_prompt:
                    self.out_ends[n][self._key(seq[end - n : end])] = end
        self.indexed = max(self.indexed, len(seq))

    def propose(self, seq: Sequence[int], n_out: int, k: int) -> list[int]:
        self._index(seq[:-1])
        for n in NGRAM_SIZES:
            if len(seq) <= n:
                continue
            key = self._key(seq[-n:])
            end = self.out_ends[n].get(key)
            if end is None:
                # Prompt key i covers tokens i..i+n-1, so its continuation starts at i+n.
                # The prompt's final n-gram is the tail itself when n_out == 0.
                keys = self.prompt_keys[n][: max(0, len(seq) - n)]
                hits = np.flatnonzero(keys == key)
                end = int(hits[-1]) + n if hits.size else None
            if end is not None and end < len(seq):
                return list(seq[end : end + k])
        return []


class SuggestionMemory:
    """The last output for each place, the source of the ``previous`` drafter.

    Key: the request's ``document`` string when it gives one; otherwise the recent
    entry whose prompt shares the longest prefix with this prompt, at least half of
    it (a keystroke appends to a stable prompt, so the same place shares nearly all).
    Bound: the ``max_entries`` most recently written, least recently used dropped.
    Invalidation: a newer output for the same key replaces the entry.
    """

    def __init__(self, *, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str | int, tuple[np.ndarray, list[int]]] = OrderedDict()
        self._anonymous = 0

    def recall(self, document: str | None, prompt: Sequence[int]) -> list[int] | None:
        if document is not None:
            entry = self._entries.get(document)
            return entry[1] if entry else None
        p = np.asarray(prompt, np.int64)
        best, best_len = None, len(p) // 2
        for old, output in self._entries.values():
            n = min(len(old), len(p))
            same = old[:n] == p[:n]
            shared = n if same.all() else int(np.argmin(same))
            if shared > best_len or (shared == best_len and best is None and shared):
                best, best_len = output, shared
        return best

    def remember(self, document: str | None, prompt: Sequence[int], output: list[int]) -> None:
        if not output:
            return
        if document is None:
            self._anonymous += 1
            key: str | int = self._anonymous
        else:
            key = document
        self._entries[key] = (np.asarray(prompt, np.int64), list(output))
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
