"""What a training run starts from: where it keeps its files, which corpus and example mix
it trains on, which arithmetic the CPU is fast at, and the weights it may warm-start from.

Kept apart from train_tiny_model.py (the model and the loop) so that each stays short.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import training_data as td
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parent.parent


def train_root() -> Path:
    """Training files live outside the work tree (a fresh checkout must not lose them):
    $SPARKEDIT_TRAIN_DIR, else ~/.cache/sparkedit/train."""
    env = os.environ.get("SPARKEDIT_TRAIN_DIR")
    return Path(env) if env else Path.home() / ".cache" / "sparkedit" / "train"


def fetched_corpus(root: Path) -> Path | None:
    path = root / "corpus" / "files.jsonl"
    return path if path.exists() else None


def load_files(corpus: str, root: Path) -> tuple[list[td.SourceFile], dict[str, str]]:
    """The source files to train on and {source: licence}.

    "fetched": the eight-language corpus written by scripts/fetch_corpus.py (split by
    package); "local": Python found on this machine (split by file path; the v1 corpus);
    "auto": fetched when it exists."""
    if corpus == "auto":
        corpus = "fetched" if fetched_corpus(root) else "local"
        if corpus == "local":
            print(f"no fetched corpus in {root / 'corpus'} (run scripts/fetch_corpus.py): "
                  "training on local Python only", file=sys.stderr)
    if corpus == "local":
        return td.corpus()
    from corpus_lib import load_corpus

    files = load_corpus(root)
    if not files:
        raise SystemExit(f"the corpus in {root / 'corpus'} is empty")
    licences = {f.package: f.licence for f in files if f.package}
    return files, licences


def release_pairs(root: Path) -> list:
    """Consecutive-release file pairs for mined edits (training side only)."""
    path = root / "corpus" / "release_pairs.jsonl"
    if not path.exists():
        return []
    from edit_examples import load_release_pairs

    return [p for p in load_release_pairs(path) if getattr(p, "split", "train") != "held_out"]


def example_stream(files: list[td.SourceFile], seed: int, max_chars: int, pairs: list,
                   language_weights: dict[str, float] | None = None) -> Iterator[td.Pieces]:
    """lm / repo / fim examples from training_data, edits from the multilingual mix
    (edit_mix.py: propagation, typing, no-edit, instructions, mined) when the files are not
    all Python, else training_data's v1 edit kinds."""
    if all(f.language == "python" and not f.package for f in files):
        return td.examples(files, seed, max_chars)
    from edit_mix import edit_examples

    edits = edit_examples(files, seed + 17, max_chars, release_pairs=pairs)
    return td.examples(files, seed, max_chars, edit_stream=edits,
                       language_weights=language_weights)


def fast_dtype() -> torch.dtype:
    """bf16 autocast where the CPU has bf16 arithmetic (AVX512-BF16 or AMX), else float32:
    without it bf16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.float32
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


def token_stream(examples: Iterator[td.Pieces], encoder: td.Encoder, n_tokens: int,
                 progress_every: int = 5_000_000) -> np.ndarray:
    out = np.empty(n_tokens, dtype=np.uint16)
    filled, next_report = 0, progress_every
    for pieces in examples:
        ids = encoder.encode(pieces)
        take = min(len(ids), n_tokens - filled)
        out[filled:filled + take] = ids[:take]
        filled += take
        if filled >= next_report:
            print(f"  {filled:,} / {n_tokens:,} tokens", file=sys.stderr, flush=True)
            next_report += progress_every
        if filled >= n_tokens:
            return out
    raise AssertionError("the example stream is endless")


def warm_start_weights(folder: Path, vocab_size: int) -> dict[str, torch.Tensor] | None:
    """The state dict (float32, without the "model." prefix) of an exported model folder,
    or None when there is none or its vocabulary differs."""
    weights, config = folder / "model.safetensors", folder / "config.json"
    if not weights.exists() or not config.exists():
        return None
    if json.loads(config.read_text()).get("vocab_size") != vocab_size:
        return None
    from safetensors.torch import load_file

    return {k.removeprefix("model."): v.float() for k, v in load_file(str(weights)).items()}


def tokenizer_of(folder: Path) -> Tokenizer | None:
    path = folder / "tokenizer.json"
    return Tokenizer.from_file(str(path)) if path.exists() else None
