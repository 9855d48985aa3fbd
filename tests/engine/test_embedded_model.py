"""The shipped default model: trained, small enough to ship, and better than chance.

These tests would fail if the shipped weights were replaced, truncated or corrupted, or if
the engine's numerics drifted from the ones the model was trained with.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.generate import generate
from engine.model import Transformer, load_model
from engine.models import default_model_dir, untrained_model_dir
from engine.request import GenerateParams
from engine.tokenizer import Tokenizer
from lsp_server.prompts import FimTokens, Tokenized, build_fim_prompt

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = (ROOT / "examples" / "sample.py").read_text()  # our own code: never trained on


@pytest.fixture(scope="module")
def trained() -> tuple[Transformer, Tokenizer]:
    return load_model(default_model_dir()), Tokenizer.from_dir(default_model_dir())


def bits_per_char(model: Transformer, tok: Tokenizer, text: str) -> float:
    ids = tok.encode(text)[: model.context_limit]
    logits = model.forward(np.asarray(ids[:-1]), model.new_cache())  # [T-1, V]
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nats = -float(logp[np.arange(len(ids) - 1), ids[1:]].sum())
    return nats / len(tok.decode(ids[1:])) / math.log(2)


def test_the_default_model_is_trained_and_ships_within_30_mb() -> None:
    folder = default_model_dir()
    model = load_model(folder)
    assert not model.config.untrained
    assert (folder / "README.md").exists(), "a model card ships with the weights"
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 30 * 1024 * 1024


def test_trained_model_predicts_unseen_code_far_better_than_the_untrained_one(trained) -> None:
    model, tok = trained
    untrained = load_model(untrained_model_dir())
    ours = bits_per_char(model, tok, SNIPPET)
    baseline = bits_per_char(untrained, Tokenizer.from_dir(untrained_model_dir()), SNIPPET)
    assert ours < 0.5 * baseline, (ours, baseline)


def complete(model: Transformer, tok: Tokenizer, prefix: str, suffix: str) -> str:
    def tokenized(text: str) -> Tokenized:
        ids, offsets = tok.encode_with_offsets(text)
        return Tokenized(text=text, ids=ids, offsets=offsets)

    prompt = build_fim_prompt(prefix=tokenized(prefix), suffix=tokenized(suffix), budget=900,
                              special=FimTokens.from_info(tok.special_ids), heal=True)
    params = GenerateParams(tokens=tuple(prompt.tokens), max_tokens=24, stop=("\n",),
                            heal=prompt.heal or None)
    return generate(model, tok, params).text


def test_fill_in_the_middle_finishes_an_obvious_line(trained) -> None:
    model, tok = trained
    prefix = SNIPPET[:SNIPPET.index("from __future__ i") + len("from __future__ i")]
    suffix = SNIPPET[SNIPPET.index("\n", len(prefix)):]
    assert complete(model, tok, prefix, suffix) == "mport annotations"


def test_token_healing_lets_a_half_typed_word_finish(trained) -> None:
    # Without healing the prompt ends in the token "jo" and the model answers "n()".
    model, tok = trained
    got = complete(model, tok, "import os\n\n\ndef main():\n    path = os.path.jo", "\n")
    assert got.startswith("in(")
