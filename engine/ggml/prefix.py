"""The ggml backend's prefix cache: the live sequence first, saved sequence states second.

Consecutive keystrokes send prompts that share all but their last few tokens, and the
sequence in llama.cpp's context still holds the previous request's prompt and output, so
the common case costs nothing: the new request keeps the shared prefix in place and
``llama_memory_seq_rm`` drops the rest (what llama.cpp's own server does with
``cache_prompt``). When a request would throw away a long stretch of that sequence (the
user switched to another file, or a warm-up of another document was pre-empted), the
sequence is first saved with ``llama_state_seq_get_data``; a later request that shares a
longer prefix with a saved state than with the live sequence restores it
(``llama_state_seq_set_data``) instead of recomputing. Copying a state costs a few
milliseconds per 10k tokens of a 0.5B model; recomputing costs seconds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any, Protocol

import numpy as np

SAVE_MIN_TOKENS = 256  # a sequence shorter than this is cheaper to recompute than to keep
RESTORE_MARGIN = 32  # restore only when it saves at least this many tokens of prefill


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(a.shape[0], b.shape[0])
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


@dataclass(frozen=True)
class _Saved:
    tokens: np.ndarray  # [S] int64
    data: bytes  # llama_state_seq_get_data of a sequence holding exactly these tokens


class LiveSequence(Protocol):
    """What `SavedStates` drives: engine.ggml.model.GgmlModel (not imported: the model makes
    its store, so the dependency runs from the model to here). Caches are its GgmlCache."""

    @property
    def resident(self) -> list[int]: ...

    def adopt(self, cache: Any, n: int) -> None: ...

    def save_state(self) -> bytes: ...

    def restore_state(self, data: bytes, tokens: list[int]) -> None: ...


class SavedStates:
    """Prefix reuse for one GgmlModel.

    Key: the exact token sequence a saved state holds; a lookup takes the entry (or the
    live sequence) sharing the longest prefix with the prompt.
    Bound: saved states never exceed ``max_bytes`` together; least recently used first out.
    Invalidation: a state depends only on its tokens and the weights, so nothing
    invalidates it while the model lives. Driven from the worker thread only.
    """

    def __init__(self, model: LiveSequence, *, max_bytes: int) -> None:
        self.model = model
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.lookups = 0
        self.hits = 0
        self.restores = 0
        self.saves = 0
        self._entries: OrderedDict[int, _Saved] = OrderedDict()  # LRU first
        self._ids = count()

    def lookup(self, tokens: Sequence[int], cache: Any, *, max_tokens: int) -> int:
        assert cache.length == 0, "lookup fills an empty cache"
        self.lookups += 1
        want = np.asarray(tokens[: max(0, max_tokens)], np.int64)
        live = common_prefix(np.asarray(self.model.resident, np.int64), want)
        best_id, best = None, live
        for key, entry in self._entries.items():
            shared = common_prefix(entry.tokens, want)
            if shared > best:
                best_id, best = key, shared
        if best_id is not None and best >= live + RESTORE_MARGIN:
            self._save_live(keep=live)
            entry = self._entries.pop(best_id)
            self._entries[best_id] = entry  # most recently used
            self.model.restore_state(entry.data, entry.tokens.tolist())
            self.restores += 1
            kept = best
        else:
            self._save_live(keep=live)
            kept = live
        self.model.adopt(cache, kept)
        self.hits += kept > 0
        return kept

    def _save_live(self, *, keep: int) -> None:
        """Save the live sequence if the coming request would discard a long part of it."""
        resident = self.model.resident
        if len(resident) - keep < SAVE_MIN_TOKENS or self.max_bytes == 0:
            return
        tokens = np.asarray(resident, np.int64)
        for entry in self._entries.values():
            if entry.tokens.shape == tokens.shape and np.array_equal(entry.tokens, tokens):
                return  # already saved as it is
        data = self.model.save_state()
        if len(data) > self.max_bytes:
            return
        self._entries[next(self._ids)] = _Saved(tokens, data)
        self.nbytes += len(data)
        self.saves += 1
        while self.nbytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.nbytes -= len(old.data)

    def insert(self, tokens: Sequence[int], cache: Any) -> None:
        """Nothing to copy: the live sequence keeps what the request computed until a later
        request needs the room (then ``lookup`` saves it)."""

    def stats(self) -> dict[str, int]:
        return {"saved_states": len(self._entries), "bytes": self.nbytes,
                "max_bytes": self.max_bytes, "lookups": self.lookups, "hits": self.hits,
                "restores": self.restores, "saves": self.saves,
                "live_tokens": len(self.model.resident)}
