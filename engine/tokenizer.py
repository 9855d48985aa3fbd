"""The model's tokenizer: a wrapper over Hugging Face ``tokenizers``.

Two encodings, on purpose:

- ``encode(text)`` treats the text as data. Special-token strings inside it
  (a source file that contains ``"<|endoftext|>"``) are encoded as ordinary
  text, never as the special id, so a file cannot end or restructure a prompt.
- ``encode_prompt(text)`` parses special-token strings into their ids. It is for
  prompts assembled by our own prompt builder, which writes FIM and edit markers
  as text (the RPC ``generate`` ``prompt`` field is such a prompt).

Both never add BOS/EOS or other post-processing tokens.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from tokenizers import AddedToken
from tokenizers import Tokenizer as HFTokenizer

from engine.token_table import TokenTable

EOS_TOKEN = "<|endoftext|>"
_MARKER = re.compile(r"</?[^<>\s]+>")


@cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character alphabet for byte-level BPE, inverted."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _is_control(token: AddedToken) -> bool:
    """A control token: flagged special, or an added ``<...>`` marker. Qwen2.5 leaves
    ``<|fim_prefix|>``, ``<|file_sep|>``… unflagged; tokenizers that add plain text
    (runs of spaces, for instance) as tokens must not have those end a generation."""
    text = token.content
    return bool(token.special or _MARKER.fullmatch(text))


def _eos_token(folder: Path) -> str | None:
    """``eos_token`` of a ``tokenizer_config.json`` beside the tokenizer (a string or
    an AddedToken-shaped object), when there is one."""
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    eos = config.get("eos_token") if isinstance(config, dict) else None
    if isinstance(eos, dict):
        eos = eos.get("content")
    return eos if isinstance(eos, str) else None


class Tokenizer(TokenTable):
    """A Hugging Face ``tokenizer.json``."""

    def __init__(self, path: str | Path) -> None:
        path = str(path)
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        # Two instances rather than toggling one flag: encode and encode_prompt may
        # be called from different threads (tokenize RPC vs the worker).
        self._prompt = HFTokenizer.from_str(json.dumps(spec))
        self._prompt.encode_special_tokens = False
        # `encode_special_tokens` only stops *special* added tokens from being matched,
        # and Qwen2.5 adds its FIM and repository markers unflagged: the data instance
        # flags every added token special so that no marker is parsed out of a file.
        for tok in spec.get("added_tokens", []):
            tok["special"] = True
        self._data = HFTokenizer.from_str(json.dumps(spec))
        self._data.encode_special_tokens = True
        added = self._prompt.get_added_tokens_decoder()  # {id: AddedToken}
        self.special_ids: dict[str, int] = {
            tok.content: i for i, tok in sorted(added.items()) if _is_control(tok)
        }
        self.vocab_size = self._prompt.get_vocab_size(with_added_tokens=True)
        eos = self.special_ids.get(_eos_token(Path(path).parent) or EOS_TOKEN)
        self.eos_id: int | None = eos
        self._token_bytes = self._build_token_bytes(path, added)
        # The first encode pays one-off setup (~10 ms); pay it at load, not in a request.
        self.encode("warm up")
        self.encode_prompt("warm up")

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> Tokenizer:
        return cls(Path(model_dir) / "tokenizer.json")

    def _build_token_bytes(self, path: str, added: dict) -> list[bytes]:
        """The exact bytes each token id stands for (for incremental decoding)."""
        decoder = json.loads(Path(path).read_text(encoding="utf-8")).get("decoder") or {}
        byte_level = decoder.get("type") == "ByteLevel" or any(
            d.get("type") == "ByteLevel" for d in decoder.get("decoders", [])
        )
        byte_of = _byte_decoder()
        table: list[bytes] = []
        for i in range(self.vocab_size):
            if i in added:
                table.append(added[i].content.encode("utf-8"))
                continue
            piece = self._prompt.id_to_token(i)
            if piece is None:
                table.append(b"")
            elif byte_level:
                table.append(bytes(byte_of[ch] for ch in piece))
            elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                table.append(bytes([int(piece[3:5], 16)]))  # sentencepiece byte fallback
            else:
                table.append(piece.replace("\u2581", " ").encode("utf-8"))
        return table

    def encode(self, text: str) -> list[int]:
        """Token ids for text taken literally (special-token strings not parsed)."""
        return self._data.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """`encode` for many texts at once (the library spreads them over its threads)."""
        return [enc.ids for enc in self._data.encode_batch(texts, add_special_tokens=False)]

    def encode_prompt(self, text: str) -> list[int]:
        """Token ids for a prompt whose special-token strings are real markers."""
        return self._prompt.encode(text, add_special_tokens=False).ids

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids plus (start, end) character offsets into ``text`` for each token.

        Byte-level BPE can split one character over several tokens; those tokens
        then share the character's offsets.
        """
        enc = self._data.encode(text, add_special_tokens=False)
        return enc.ids, [tuple(o) for o in enc.offsets]


def load_tokenizer(source: str | Path, *, gguf_model: object | None = None) -> TokenTable:
    """The tokenizer of a model: a folder's ``tokenizer.json``; for a ``.gguf`` file the
    ``tokenizer.json`` beside it when there is one, else llama.cpp's vocabulary inside
    the file (``gguf_model``: an already loaded engine.ggml.model.GgmlModel to take it
    from; otherwise only the vocabulary is loaded). Raises OSError or ValueError."""
    source = Path(source)
    if source.is_dir():
        return Tokenizer.from_dir(source)
    beside = source.with_name("tokenizer.json")
    if beside.is_file():
        return Tokenizer(beside)
    from engine.ggml.vocab import GgufTokenizer

    return GgufTokenizer.from_model(gguf_model) if gguf_model is not None \
        else GgufTokenizer.from_file(source)
