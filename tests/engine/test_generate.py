"""Sampling, wire validation and the generate loop on the embedded model."""

from __future__ import annotations

import numpy as np
import pytest

from engine.generate import DecodeState, StopMatcher, generate
from engine.model import Transformer
from engine.models import untrained_model_dir
from engine.request import ContextOverflowError, GenerateParams, GenerateResult
from engine.sampling import probabilities, sample
from engine.speculative import PLAIN
from engine.tokenizer import Tokenizer
from engine.weights import load_checkpoint


@pytest.fixture(scope="module")
def short_model(model: Transformer) -> Transformer:
    """The embedded model with a 16-token context."""
    cfg = model.config.replace(max_position_embeddings=16)
    return Transformer(cfg, load_checkpoint(untrained_model_dir()))


def params(**kw) -> GenerateParams:
    return GenerateParams.from_wire({"prompt": "def add(a, b):\n    return"} | kw)


# --- sampling -------------------------------------------------------------------------

def test_greedy_and_seeded_sampling() -> None:
    logits = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert sample(logits, temperature=0, top_p=1, rng=None) == int(np.argmax(logits))

    def draw(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        return [sample(logits, temperature=0.8, top_p=0.9, rng=rng) for _ in range(50)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_top_p_keeps_smallest_nucleus() -> None:
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    p = probabilities(logits, 1.0, 0.7)
    np.testing.assert_allclose(p, [0.5 / 0.8, 0.3 / 0.8, 0, 0])
    p = probabilities(logits, 1.0, 0.5)
    np.testing.assert_allclose(p, [1, 0, 0, 0])
    rng = np.random.default_rng(0)
    assert {sample(logits, temperature=1.0, top_p=0.7, rng=rng) for _ in range(200)} == {0, 1}


# --- wire validation ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("wire", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "a", "tokens": [1]}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"tokens": []}, "tokens"),
        ({"tokens": [1, -1]}, "tokens"),
        ({"tokens": [1, True]}, "tokens"),
        ({"tokens": [1, 9000]}, "tokens"),
        ({"prompt": "a", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "a", "max_tokens": 2.5}, "max_tokens"),
        ({"prompt": "a", "temperature": -0.1}, "temperature"),
        ({"prompt": "a", "temperature": "hot"}, "temperature"),
        ({"prompt": "a", "top_p": 0}, "top_p"),
        ({"prompt": "a", "top_p": 1.5}, "top_p"),
        ({"prompt": "a", "seed": "x"}, "seed"),
        ({"prompt": "a", "stop": [1]}, "stop"),
        ({"prompt": "a", "stop": [""]}, "stop"),
        ({"prompt": "a", "stop": ["s"] * 17}, "stop"),
        ({"prompt": "a", "draft": 5}, "draft"),
        ({"prompt": "a", "stream": "yes"}, "stream"),
    ],
)
def test_from_wire_errors_name_the_field(wire: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        GenerateParams.from_wire(wire, vocab_size=8192)


def test_from_wire_defaults_and_unknown_keys() -> None:
    p = GenerateParams.from_wire({"tokens": [1, 2], "stop": "\n", "future_field": 1,
                                  "temperature": 1, "stream": True})
    assert p.tokens == (1, 2) and p.stop == ("\n",) and p.stream
    assert p.temperature == 1.0 and p.max_tokens >= 1 and p.top_p == 1.0


def test_context_overflow_names_both_numbers(short_model: Transformer, tok: Tokenizer) -> None:
    assert issubclass(ContextOverflowError, ValueError)
    with pytest.raises(ContextOverflowError, match=r"70\b.*\b64\b"):
        GenerateParams.from_wire({"tokens": [1] * 70}, context_limit=64)
    with pytest.raises(ContextOverflowError, match=r"\b20\b.*\b16\b"):
        generate(short_model, tok, GenerateParams(tokens=tuple(range(1, 21))))


# --- generate -------------------------------------------------------------------------

def test_greedy_is_deterministic_and_streams(model: Transformer, tok: Tokenizer) -> None:
    chunks: list[tuple[str, list[int]]] = []
    plain = DecodeState(speculation=PLAIN)  # one token per pass, no drafts
    a = generate(model, tok, params(max_tokens=12), on_text=lambda t, ids: chunks.append((t, ids)),
                 state=plain)
    b = generate(model, tok, params(max_tokens=12))
    assert a.tokens == b.tokens and a.text == b.text
    assert a.finish_reason == "length" and len(a.tokens) == 12
    assert "".join(t for t, _ in chunks) == a.text == tok.decode(a.tokens)
    assert [i for _, ids in chunks for i in ids] == a.tokens
    assert a.stats == {"prompt_tokens": len(tok.encode_prompt("def add(a, b):\n    return")),
                       "cached_prompt_tokens": 0, "output_tokens": 12,
                       "forward_passes": 12, "accepted_draft_tokens": 0, "drafters": {}}
    t = a.timing
    assert t["queue_ms"] is None and t["simulated"] is None and t["context_ms"] is None
    assert 0 < t["prefill_ms"] <= t["ttft_ms"] <= t["total_ms"]


def test_greedy_matches_manual_argmax_loop(model: Transformer, tok: Tokenizer) -> None:
    ids = tok.encode_prompt("import os\n")
    cache = model.new_cache()
    logits = model.forward(np.array(ids), cache)
    manual = []
    for _ in range(6):
        manual.append(int(np.argmax(logits[-1])))
        logits = model.forward([manual[-1]], cache)
    result = generate(model, tok, GenerateParams(tokens=tuple(ids), max_tokens=6))
    assert result.tokens == manual


def test_seeded_sampling_reproducible(model: Transformer, tok: Tokenizer) -> None:
    p = params(max_tokens=10, temperature=1.5, top_p=0.95, seed=3)
    assert generate(model, tok, p).tokens == generate(model, tok, p).tokens
    other = generate(model, tok, params(max_tokens=10, temperature=1.5, top_p=0.95, seed=4))
    assert other.tokens != generate(model, tok, p).tokens


def test_stop_string_spanning_tokens_is_trimmed(model: Transformer, tok: Tokenizer) -> None:
    base = generate(model, tok, params(max_tokens=8))
    text = base.text
    pieces = [tok.decode([t]) for t in base.tokens]
    # A stop string that starts inside token 2 and ends inside token 3.
    start = len(pieces[0]) + len(pieces[1]) - 1
    stop = text[start : start + 3]
    assert len(stop) == 3
    streamed: list[str] = []
    r = generate(model, tok, params(max_tokens=8, stop=[stop]),
                 on_text=lambda t, ids: streamed.append(t))
    assert r.finish_reason == "stop"
    assert r.text == text[: text.find(stop)]
    assert "".join(streamed) == r.text  # nothing past the cut was ever streamed


def test_stop_matcher_holds_back_possible_prefix() -> None:
    m = StopMatcher(("STOP",))
    assert m.feed("abc ST") == "abc "
    assert m.feed("OX") == "STOX"
    assert m.feed("xS") == "x"
    assert m.feed("TOP tail") == "" and m.stopped and m.text == "abc STOXx"


@pytest.fixture(scope="module")
def tied_model(model: Transformer) -> Transformer:
    """The embedded weights with the output head tied to the embeddings: a random tied
    model repeats its last input token, which makes any token the greedy choice on demand."""
    weights = load_checkpoint(untrained_model_dir())
    weights.pop("lm_head.weight")
    return Transformer(model.config.replace(tie_word_embeddings=True), weights)


@pytest.mark.parametrize("marker", ["<|endoftext|>", "<|file_sep|>", "<|fim_middle|>"])
def test_control_tokens_end_generation(tied_model: Transformer, tok: Tokenizer,
                                       marker: str) -> None:
    ids = tok.encode_prompt(f"x = 1{marker}")
    first = int(np.argmax(tied_model.forward(np.array(ids), tied_model.new_cache())[-1]))
    assert first == tok.special_ids[marker]
    r = generate(tied_model, tok, GenerateParams(tokens=tuple(ids), max_tokens=5))
    assert r.finish_reason == "eos" and r.tokens == [] and r.text == ""
    assert r.stats["forward_passes"] == 1


def test_ordinary_tokens_do_not_end_generation(tied_model: Transformer, tok: Tokenizer) -> None:
    ids = tok.encode_prompt("x = value")
    r = generate(tied_model, tok, GenerateParams(tokens=tuple(ids), max_tokens=5))
    assert r.finish_reason == "length" and len(r.tokens) == 5


def test_should_stop_is_polled_per_pass(model: Transformer, tok: Tokenizer) -> None:
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 5  # one poll before the (single-slice) prefill, then per pass

    plain = DecodeState(speculation=PLAIN)
    r = generate(model, tok, params(max_tokens=50), should_stop=should_stop, state=plain)
    assert r.finish_reason == "cancelled"
    assert r.stats["forward_passes"] == 4 and len(r.tokens) == 4
    r = generate(model, tok, params(max_tokens=50), should_stop=lambda: True)
    assert r.finish_reason == "cancelled" and r.tokens == [] and r.stats["forward_passes"] == 0


def test_length_stops_at_context_limit(short_model: Transformer, tok: Tokenizer) -> None:
    r = generate(short_model, tok, GenerateParams(tokens=tuple(range(1, 11)), max_tokens=100))
    assert r.finish_reason == "length" and len(r.tokens) == 7  # 10 + 6 fed = 16


def test_to_wire_is_plain(model: Transformer, tok: Tokenizer) -> None:
    wire = generate(model, tok, params(max_tokens=3)).to_wire()
    assert set(wire) == {"text", "tokens", "finish_reason", "stats", "timing"}
    assert all(type(t) is int for t in wire["tokens"])
    assert isinstance(GenerateResult(**wire), GenerateResult)
