"""What every tokenizer shares once it knows the exact bytes of each token id: decoding,
incremental decoding and the token-healing index.

The Hugging Face tokenizer (engine/tokenizer.py) and llama.cpp's vocabulary of a GGUF
file (engine/ggml/vocab.py) both build on `TokenTable`; this module imports neither.
"""

from __future__ import annotations

import bisect
import codecs

import numpy as np


class TokenTable:
    """What every tokenizer shares once it knows the exact bytes of each token id:
    decoding, incremental decoding and the token-healing index. Subclasses fill
    ``_token_bytes``, ``special_ids``, ``vocab_size`` and ``eos_id`` and provide the
    encoders (``encode``, ``encode_batch``, ``encode_prompt``, ``encode_with_offsets``)."""

    special_ids: dict[str, int]
    vocab_size: int
    eos_id: int | None
    _token_bytes: list[bytes]
    _sorted_bytes: list[bytes] | None = None  # built on first use (token healing)
    _sorted_ids: np.ndarray = np.empty(0, dtype=np.int64)

    def tokens_starting_with(self, prefix: bytes) -> np.ndarray:
        """Ids of the non-control tokens whose bytes begin with `prefix` (token healing).

        Tokens sorted by their bytes put every token with a given prefix in one run, so a
        keystroke pays two binary searches, not a pass over a 150k-token vocabulary."""
        if self._sorted_bytes is None:
            control = set(self.special_ids.values())
            pairs = sorted((b, i) for i, b in enumerate(self._token_bytes) if i not in control)
            self._sorted_bytes = [b for b, _ in pairs]
            self._sorted_ids = np.array([i for _, i in pairs], dtype=np.int64)
        lo = bisect.bisect_left(self._sorted_bytes, prefix)
        hi = lo
        while hi < len(self._sorted_bytes) and self._sorted_bytes[hi].startswith(prefix):
            hi += 1
        return self._sorted_ids[lo:hi]

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def encode_prompt(self, text: str) -> list[int]:
        raise NotImplementedError

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        """Text for ids; special tokens are kept as their strings."""
        return self.token_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, ids: list[int]) -> bytes:
        return b"".join(self._token_bytes[i] for i in ids)

    def incremental_decoder(self) -> IncrementalDecoder:
        return IncrementalDecoder(self)


class IncrementalDecoder:
    """Turns a stream of token ids into text deltas of whole characters.

    A byte-level token may end in the middle of a UTF-8 sequence (an emoji is
    often two or three tokens); the trailing partial bytes are held back until a
    later token completes them, so no delta ever contains a broken character.
    Bytes that can never form a character (invalid UTF-8 from a random model)
    become U+FFFD, as ``bytes.decode(errors="replace")`` would.
    """

    def __init__(self, tokenizer: TokenTable) -> None:
        self._tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, ids: list[int]) -> str:
        """The text completed by these tokens (possibly "")."""
        return self._utf8.decode(self._tokenizer.token_bytes(ids))

    def flush(self) -> str:
        """Whatever is held back, at the end of the stream (U+FFFD if incomplete)."""
        return self._utf8.decode(b"", final=True)
