"""A GGUF file's own vocabulary behind the engine's tokenizer interface.

For a GGUF file with no ``tokenizer.json`` beside it (what llama.cpp and Ollama users
hold), tokenizing is llama.cpp's: ``llama_tokenize`` without special-token parsing for
text taken literally (a file that contains ``<|endoftext|>`` cannot end a prompt) and
with it for prompts written by our prompt builders. The byte table behind decoding and
token healing comes from ``llama_token_to_piece``; character offsets are derived from
it (llama.cpp has no offsets), so tokens that split one character share its offsets, as
Hugging Face's do.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
from pathlib import Path
from typing import Any

from engine.token_table import TokenTable

_MARKER = re.compile(rb"</?[^<>\s]+>")


class GgufTokenizer(TokenTable):
    def __init__(self, vocab_ptr: Any, owner: Any) -> None:
        import llama_cpp

        self._llama = llama_cpp
        self._vocab = vocab_ptr
        self._owner = owner  # keeps the llama.cpp model (and so the vocabulary) alive
        self.vocab_size = int(llama_cpp.llama_vocab_n_tokens(vocab_ptr))
        if self.vocab_size == 0 or llama_cpp.llama_vocab_type(vocab_ptr) == 0:
            raise ValueError("the GGUF file has no vocabulary (and no tokenizer.json beside it)")
        control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        user = llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        buf = ctypes.create_string_buffer(256)
        table: list[bytes] = []
        self.special_ids: dict[str, int] = {}
        for i in range(self.vocab_size):
            n = llama_cpp.llama_token_to_piece(vocab_ptr, i, buf, len(buf), 0, True)
            piece = buf.raw[:n] if n > 0 else b""
            table.append(piece)
            attr = llama_cpp.llama_vocab_get_attr(vocab_ptr, i)
            if attr & control or (attr & user and _MARKER.fullmatch(piece)):
                self.special_ids[piece.decode("utf-8", "replace")] = i
        self._token_bytes = table
        eos = int(llama_cpp.llama_vocab_eos(vocab_ptr))
        self.eos_id = eos if 0 <= eos < self.vocab_size else None

    @classmethod
    def from_model(cls, model: Any) -> GgufTokenizer:
        """The vocabulary of a loaded engine.ggml.model.GgmlModel."""
        return cls(model.vocab_ptr, model)

    @classmethod
    def from_file(cls, path: Path) -> GgufTokenizer:
        """Only the vocabulary of a GGUF file (no weights): for the language server and the
        headless commands, which count tokens themselves."""
        from engine.ggml.gguf_file import load_vocab_only

        model = load_vocab_only(Path(path))
        return cls(cls._vocab_of(model), _VocabOwner(model))

    @staticmethod
    def _vocab_of(model: Any) -> Any:
        import llama_cpp

        return llama_cpp.llama_model_get_vocab(model)

    def _tokenize(self, text: str, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        # A token holds at least one byte, so len(data) + 1 ids always suffice. A buffer per
        # call: the tokenize RPC runs on other threads than the worker's prompts.
        ids = (self._llama.llama_token * (len(data) + 1))()
        n = self._llama.llama_tokenize(self._vocab, data, len(data), ids, len(ids), False,
                                       parse_special)
        if n < 0:
            raise ValueError(f"llama_tokenize needs room for {-n} tokens")
        return list(ids[:n])

    def encode(self, text: str) -> list[int]:
        return self._tokenize(text, parse_special=False)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def encode_prompt(self, text: str) -> list[int]:
        return self._tokenize(text, parse_special=True)

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        ids = self.encode(text)
        # byte offset -> index of the character that byte belongs to
        char_of: list[int] = []
        for ci, ch in enumerate(text):
            char_of.extend([ci] * len(ch.encode("utf-8")))
        char_of.append(len(text))
        spans: list[tuple[int, int]] = []
        pos = 0
        for i in ids:
            n = len(self._token_bytes[i])
            start, end = min(pos, len(char_of) - 1), min(pos + n, len(char_of) - 1)
            first = char_of[start]
            last = char_of[end - 1] + 1 if n else first
            spans.append((first, max(first, last)))
            pos += n
        return ids, spans


class _VocabOwner:
    """Frees a vocabulary-only llama.cpp model when the tokenizer goes."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the binding may be gone
            import llama_cpp

            llama_cpp.llama_model_free(self.model)
