"""Bits per byte of held-out code, per language: the measure that compares models whose
tokenizers differ (nats over the UTF-8 bytes of the same text, never over tokens).

Windows: for each language, held-out files in a seeded order, from each a window of whole
lines (at most `window_bytes` UTF-8 bytes, from a seeded line start when the file is
longer), until the language has its bytes (the same for every language). A window is laid
out as training lays out a file (`lm_example`): `<|file_sep|>path\\n` then the text, each
piece encoded on its own. Only the text's tokens are scored, and only the text's bytes are
counted. A window longer than the model's context is scored in chunks, each one after the
header again.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from training_data import SourceFile

from engine.model import Transformer
from engine.tokenizer import Tokenizer

BPB_LANGUAGES = ("python", "javascript", "typescript", "rust", "go", "java", "c", "cpp")
ROW_OF = {"tsx": "typescript"}  # tsx files are counted with typescript
CONTEXT_CAP = 2048  # tokens per scored chunk at most, whatever the model's context
SLICE = 256  # tokens per forward call: bounds the logits to [SLICE, vocab]


@dataclass(frozen=True)
class Window:
    language: str  # the row: one of BPB_LANGUAGES
    path: str
    text: str


@dataclass
class ByteScore:
    nats: float = 0.0
    tokens: int = 0
    bytes: int = 0
    chars: int = 0

    def add(self, other: ByteScore) -> None:
        self.nats += other.nats
        self.tokens += other.tokens
        self.bytes += other.bytes
        self.chars += other.chars

    @property
    def bits_per_byte(self) -> float | None:
        return self.nats / self.bytes / math.log(2) if self.bytes else None

    @property
    def bits_per_char(self) -> float | None:
        return self.nats / self.chars / math.log(2) if self.chars else None

    @property
    def bytes_per_token(self) -> float | None:
        return self.bytes / self.tokens if self.tokens else None


def row_language(language: str) -> str:
    return ROW_OF.get(language, language)


def window_of(rng: random.Random, text: str, window_bytes: int) -> str:
    """Whole lines of `text`, at most `window_bytes` UTF-8 bytes, from a seeded line start
    (the start of the file when it fits). A first line longer than the window is cut at a
    character boundary."""
    if len(text.encode("utf-8")) <= window_bytes:
        return text
    lines = text.splitlines(keepends=True)
    # a start that leaves at least a window's worth of text, where there is one
    tail, last_start = 0, 0
    for i in range(len(lines) - 1, -1, -1):
        tail += len(lines[i].encode("utf-8"))
        if tail >= window_bytes:
            last_start = i
            break
    start = rng.randint(0, last_start)
    out: list[str] = []
    size = 0
    for line in lines[start:]:
        n = len(line.encode("utf-8"))
        if size + n > window_bytes:
            if not out:  # one line longer than the window
                out.append(line.encode("utf-8")[:window_bytes].decode("utf-8", "ignore"))
            break
        out.append(line)
        size += n
    return "".join(out)


def bpb_windows(files: Iterable[SourceFile], bytes_per_language: int, window_bytes: int,
                seed: int) -> list[Window]:
    """The scored windows: per language (BPB_LANGUAGES order) windows of the files given
    (pass held-out ones), one per file in a seeded order, until the language has
    `bytes_per_language` bytes (the last window may pass it) or no file is left."""
    by_language: dict[str, list[SourceFile]] = {}
    for f in files:
        if f.text.strip() and row_language(f.language) in BPB_LANGUAGES:
            by_language.setdefault(row_language(f.language), []).append(f)
    out: list[Window] = []
    for language in BPB_LANGUAGES:
        rng = random.Random(f"{seed}:{language}")
        pool = sorted(by_language.get(language, []), key=lambda f: f.path)
        rng.shuffle(pool)
        total = 0
        for f in pool:
            if total >= bytes_per_language:
                break
            text = window_of(rng, f.text, window_bytes)
            if text.strip():
                out.append(Window(language, f.path, text))
                total += len(text.encode("utf-8"))
    return out


def header_ids(tok: Tokenizer, path: str) -> list[int]:
    sep = tok.special_ids.get("<|file_sep|>")
    return ([sep] if sep is not None else []) + tok.encode(f"{path}\n")


def _target_nats(model: Transformer, ids: Sequence[int], first: int) -> float:
    """-log p of ids[first + 1:] given what precedes each, one cache, SLICE tokens a call."""
    cache = model.new_cache()
    nats = 0.0
    targets = np.asarray(ids, np.int64)
    for s in range(0, len(ids) - 1, SLICE):
        piece = targets[s:min(s + SLICE, len(ids) - 1)]
        logits = model.forward(piece, cache).astype(np.float64)  # rows predict s+1..
        rows = np.arange(len(piece))
        keep = rows + s >= first
        if not keep.any():
            continue
        logits, rows = logits[keep], rows[keep]
        top = logits.max(-1)
        lse = top + np.log(np.exp(logits - top[:, None]).sum(-1))
        nats += float((lse - logits[np.arange(len(rows)), targets[rows + s + 1]]).sum())
    return nats


def score_window(model: Transformer, tok: Tokenizer, window: Window,
                 context_cap: int = CONTEXT_CAP) -> ByteScore:
    """Nats of the window's text after its header, in chunks that fit the context."""
    n_ctx = min(model.context_limit, context_cap)
    header = header_ids(tok, window.path)
    if len(header) > n_ctx // 2:  # an absurd path: keep its end
        header = header[-(n_ctx // 2):]
    body = tok.encode(window.text)
    step = n_ctx - len(header)
    nats = 0.0
    for s in range(0, len(body), step):
        chunk = body[s:s + step]
        nats += _target_nats(model, header + chunk, first=len(header) - 1)
    return ByteScore(nats=nats, tokens=len(body), bytes=len(window.text.encode("utf-8")),
                     chars=len(window.text))


def score_windows(model: Transformer, tok: Tokenizer, windows: Iterable[Window],
                  context_cap: int = CONTEXT_CAP) -> dict[str, ByteScore]:
    """{language: its windows' scores added up}, in BPB_LANGUAGES order."""
    out: dict[str, ByteScore] = {}
    for w in windows:
        out.setdefault(w.language, ByteScore()).add(score_window(model, tok, w, context_cap))
    return {language: out[language] for language in BPB_LANGUAGES if language in out}


def summary(scores: dict[str, ByteScore]) -> tuple[float | None, float | None]:
    """(mean, max) of the languages' bits per byte (each language weighs the same)."""
    values = [s.bits_per_byte for s in scores.values() if s.bits_per_byte is not None]
    return (sum(values) / len(values), max(values)) if values else (None, None)
