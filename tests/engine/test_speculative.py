"""Speculative decoding: drafters, the verification rule, the draft-length tuner, and the
end-to-end guarantees -- greedy output equals plain greedy, sampled output has the
target's distribution, a rolled-back cache computes what a fresh one would."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.drafters import CopyDrafter, PromptLookup, SuggestionMemory
from engine.generate import DecodeState, generate
from engine.kv_cache import KVCache
from engine.model import ModelConfig, Transformer
from engine.prefix_cache import PrefixCache
from engine.request import GenerateParams
from engine.speculative import PLAIN, DraftTuner, SpecConfig, expected_tokens, verify
from engine.tokenizer import Tokenizer

FIRST_TEXT_ID = 13  # ids below are control tokens of the embedded tokenizer


# --- drafters --------------------------------------------------------------------------

def test_copy_drafter_follows_and_resynchronises() -> None:
    region = [10, 11, 12, 13, 14, 15, 16, 17]
    d = CopyDrafter("region", region, from_start=True)
    prompt = [1, 2, 3]
    assert d.propose(prompt, 0, 4) == [10, 11, 12, 13]  # a rewrite starts at the region
    assert d.propose(prompt + [10, 11], 2, 3) == [12, 13, 14]
    # The model inserted 99 after 12: no tail of length >= 2 matches; the single 99 not either.
    assert d.propose(prompt + [10, 11, 12, 99], 4, 3) == []
    # ... then it went back to the original: 13 picks the region up again.
    assert d.propose(prompt + [10, 11, 12, 99, 13], 5, 3) == [14, 15, 16]
    # A deletion (14, 15 dropped): 16 is near the last point, so copying resumes after it.
    assert d.propose(prompt + [10, 11, 12, 99, 13, 16], 6, 5) == [17]


def test_copy_drafter_without_anchor_matches_the_prompt_tail() -> None:
    previous = [5, 6, 7, 8, 9]
    d = CopyDrafter("previous", previous, from_start=False)
    assert d.propose([1, 2, 5, 6], 0, 2) == [7, 8]  # the user typed 5 6 of the last one
    d = CopyDrafter("previous", previous, from_start=False)
    assert d.propose([1, 2, 3], 0, 2) == [5, 6]  # nothing typed through: from its start


def test_prompt_lookup_takes_the_latest_earlier_occurrence_never_itself() -> None:
    prompt = [1, 2, 3, 4, 9, 1, 2, 3, 5, 6, 7, 1, 2, 3]
    lookup = PromptLookup(prompt, vocab_size=100)
    assert lookup.propose(prompt, 0, 3) == [5, 6, 7]  # most recent "1 2 3" before the tail
    seq = prompt + [5, 8, 8]
    assert lookup.propose(seq, 3, 2) == []  # "5 8 8" and "8 8" never occurred earlier
    seq += [7, 1]
    assert lookup.propose(seq, 5, 4) == [2, 3, 5, 8]  # 2-gram "7 1" -> continuation
    seq += [2, 3, 5, 8]
    assert lookup.propose(seq, 9, 3) == [8, 7, 1]  # found in the output itself


def test_suggestion_memory_keys() -> None:
    memory = SuggestionMemory(max_entries=2)
    memory.remember("a.py", [1, 2, 3], [7, 8])
    memory.remember(None, [4, 5, 6, 7], [9])
    assert memory.recall("a.py", [0]) == [7, 8]
    assert memory.recall("b.py", [1, 2, 3]) is None
    assert memory.recall(None, [4, 5, 6, 7, 8, 9]) == [9]  # shares 4 of 6 tokens
    assert memory.recall(None, [4, 0, 0, 0, 0]) is None  # shares too little
    memory.remember("c.py", [1], [1])
    assert memory.recall("a.py", [0]) is None  # bounded: the oldest entry left


# --- verification and K ------------------------------------------------------------------

def test_verify_greedy_rule() -> None:
    logits = np.full((4, 10), -1.0, np.float32)
    for row, best in enumerate([3, 4, 5, 6]):
        logits[row, best] = 1.0
    rng = np.random.default_rng(0)
    assert verify(logits, [3, 4, 5], temperature=0, top_p=1, rng=rng) == [3, 4, 5, 6]  # bonus
    assert verify(logits, [3, 9, 5], temperature=0, top_p=1, rng=rng) == [3, 4]  # correction
    assert verify(logits[:1], [], temperature=0, top_p=1, rng=rng) == [3]


def test_tuner_drafts_more_when_acceptance_is_high_and_passes_are_cheap() -> None:
    assert expected_tokens(0.5, 0) == 1 and expected_tokens(0.5, 1) == 1.5
    assert expected_tokens(1.0, 4) == 5
    tuner = DraftTuner()
    for _ in range(50):  # measured: a pass costs 1 ms + 0.01 ms per token
        for n in (1, 5, 17):
            tuner.record_pass(n, 1e-3 + 1e-5 * n)
    assert tuner.cost(33) == pytest.approx(1e-3 + 33e-5, rel=0.05)
    for _ in range(30):
        tuner.record_draft("good", 10, 10)
        tuner.record_draft("bad", 10, 0)
    assert tuner.alpha("good") > 0.9 > 0.1 > tuner.alpha("bad")
    assert tuner.choose("good", 64) >= 16
    assert tuner.choose("bad", 64) <= 1  # a draft token costs 1% of a pass: one may pay
    assert tuner.choose("good", 3) == 3  # never more than the drafter offers
    steep = DraftTuner()
    for _ in range(50):  # a token costs as much as the pass itself: drafts rarely pay
        for n in (1, 2, 3):
            steep.record_pass(n, 1e-3 * n)
    assert steep.choose("new", 64) <= 1


# --- greedy speculation equals plain greedy ------------------------------------------------

def _mutate(tokens: list[int], data: st.DataObject) -> list[int]:
    out = list(tokens)
    for _ in range(data.draw(st.integers(0, 3))):
        i = data.draw(st.integers(0, len(out)))
        how = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        new = data.draw(st.lists(st.integers(FIRST_TEXT_ID, 8191), min_size=1, max_size=3))
        if how == "insert":
            out[i:i] = new
        elif how == "delete":
            del out[i : i + len(new)]
        else:
            out[i : i + len(new)] = new
    return out


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.lists(st.integers(FIRST_TEXT_ID, 8191), min_size=1, max_size=40),
       data=st.data())
def test_speculative_greedy_equals_plain_greedy(model: Transformer, tok: Tokenizer,
                                                prompt: list[int], data) -> None:
    # Repeating part of the prompt gives prompt lookup something to find.
    prompt = prompt + prompt[: data.draw(st.integers(0, len(prompt)))]
    n = data.draw(st.integers(1, 24))
    plain = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=n),
                     state=DecodeState(speculation=PLAIN))
    kind = data.draw(st.sampled_from(["exact", "mutated", "random", "none"]))
    draft_ids = {"exact": plain.tokens, "mutated": _mutate(plain.tokens, data), "none": [],
                 "random": data.draw(st.lists(st.integers(FIRST_TEXT_ID, 8191), max_size=30))}
    draft = tok.decode(draft_ids[kind]) or None
    state = DecodeState(prefix_cache=PrefixCache(max_bytes=1 << 22, block_size=8),
                        suggestions=SuggestionMemory())
    for _ in range(2):  # the second run also drafts from its previous suggestion
        spec = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=n,
                                                   draft=draft), state=state)
        assert spec.tokens == plain.tokens and spec.text == plain.text
        assert spec.finish_reason == plain.finish_reason
        assert spec.stats["forward_passes"] <= plain.stats["forward_passes"]


def test_copy_friendly_drafts_are_accepted_and_streamed(model: Transformer,
                                                        tok: Tokenizer) -> None:
    prompt = tok.encode("def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n")
    plain = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=40),
                     state=DecodeState(speculation=PLAIN))
    # The draft as token ids round-trips through text only when its tokenization is
    # canonical; the previous-suggestion drafter copies the ids themselves.
    state = DecodeState(suggestions=SuggestionMemory(), speculation=SpecConfig(
        drafters=("previous",)))
    state.suggestions.remember("doc", prompt, plain.tokens)
    chunks: list[list[int]] = []
    spec = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=40,
                                               document="doc"),
                    on_text=lambda text, ids: chunks.append(ids), state=state)
    assert spec.tokens == plain.tokens
    passes = spec.stats["forward_passes"]
    assert passes < 10
    # Every drafted token was accepted; each pass added one token of its own.
    assert spec.stats["accepted_draft_tokens"] == 40 - passes
    assert spec.stats["drafters"]["previous"] == {"drafted": 40 - passes,
                                                  "accepted": 40 - passes, "passes": passes}
    assert [t for ids in chunks for t in ids] == plain.tokens
    assert max(len(ids) for ids in chunks) > 1  # accepted drafts stream together


# --- sampling keeps the target's distribution ----------------------------------------------

class ByteTokenizer:
    """Token i is the letter chr(97 + i); no control tokens."""

    special_ids: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        return [ord(c) - 97 for c in text]

    encode_prompt = encode

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(97 + i) for i in ids)

    def incremental_decoder(self) -> ByteTokenizer._Decoder:
        return ByteTokenizer._Decoder()

    class _Decoder:
        def push(self, ids: list[int]) -> str:
            return "".join(chr(97 + i) for i in ids)

        def flush(self) -> str:
            return ""


def tiny_model(vocab: int = 16, seed: int = 0) -> Transformer:
    """A one-layer random model whose next-token distributions are peaked (a few likely
    tokens), so drafts of likely tokens are often accepted when sampling."""
    rng = np.random.default_rng(seed)
    d, hd = 32, 16
    cfg = ModelConfig(vocab_size=vocab, hidden_size=d, intermediate_size=48,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      head_dim=hd, max_position_embeddings=64)

    def w(*shape: int, s: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * s).astype(np.float32)

    p = "model.layers.0."
    return Transformer(cfg, {
        "model.embed_tokens.weight": w(vocab, d, s=1.0), "model.norm.weight": 1 + w(d),
        "lm_head.weight": w(vocab, d, s=0.5),
        p + "self_attn.q_proj.weight": w(2 * hd, d), p + "self_attn.k_proj.weight": w(hd, d),
        p + "self_attn.v_proj.weight": w(hd, d), p + "self_attn.o_proj.weight": w(d, 2 * hd),
        p + "mlp.gate_proj.weight": w(48, d), p + "mlp.up_proj.weight": w(48, d),
        p + "mlp.down_proj.weight": w(d, 48), p + "input_layernorm.weight": 1 + w(d),
        p + "post_attention_layernorm.weight": 1 + w(d)})


def _chi_square_ok(counts: Counter, probs: np.ndarray, n: int) -> tuple[float, float]:
    """Pearson statistic (cells with expected < 5 pooled) and the 0.1% critical value by
    the Wilson-Hilferty approximation."""
    expected = probs * n
    small = expected < 5
    obs = np.array([counts.get(i, 0) for i in range(len(probs))], float)
    cells_e = list(expected[~small]) + ([expected[small].sum()] if small.any() else [])
    cells_o = list(obs[~small]) + ([obs[small].sum()] if small.any() else [])
    stat = sum((o - e) ** 2 / e for o, e in zip(cells_o, cells_e, strict=True) if e > 0)
    df = len(cells_e) - 1
    z = 3.09  # one-sided 0.1%
    critical = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
    return stat, critical


def test_sampling_with_drafts_has_the_target_distribution() -> None:
    model, tok = tiny_model(), ByteTokenizer()
    prompt = [1, 2, 3]
    temp = 0.7
    logits = model.forward(np.array(prompt), model.new_cache())[-1] / temp
    p1 = np.exp(logits - logits.max())
    p1 /= p1.sum()
    # Exact marginal of the second token: sum over the first.
    p2 = np.zeros_like(p1, dtype=np.float64)
    for x in range(len(p1)):
        row = model.forward(np.array(prompt + [x]), model.new_cache())[-1] / temp
        q = np.exp(row - row.max())
        p2 += p1[x] * q / q.sum()
    greedy = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=3),
                      state=DecodeState(speculation=PLAIN)).tokens
    draft = tok.decode(greedy)
    n, first, second, accepted = 2500, Counter(), Counter(), 0
    tuner = DraftTuner()
    for seed in range(n):
        r = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=2,
                                                temperature=temp, seed=seed, draft=draft),
                     state=DecodeState(tuner=tuner, speculation=SpecConfig(drafters=("region",))))
        first[r.tokens[0]] += 1
        second[r.tokens[1]] += 1
        accepted += r.stats["accepted_draft_tokens"]
    assert accepted > n // 4, "the accept path was hardly exercised"
    for counts, probs in ((first, p1), (second, p2)):
        stat, critical = _chi_square_ok(counts, probs, n)
        assert stat < critical, (stat, critical)


def test_seeded_sampling_matches_plain_sampling(model: Transformer, tok: Tokenizer) -> None:
    # One random draw per emitted token, as plain sampling: the same seed, the same output.
    prompt = tuple(tok.encode("for i in range(10):\n    print(i)\nfor i in range(10):\n"))
    for seed in range(4):
        p = GenerateParams(tokens=prompt, max_tokens=16, temperature=0.8, top_p=0.95, seed=seed)
        plain = generate(model, tok, p, state=DecodeState(speculation=PLAIN))
        spec = generate(model, tok, dataclasses.replace(p, draft=plain.text))
        assert spec.tokens == plain.tokens


# --- rollback -----------------------------------------------------------------------------

def test_logits_after_rollback_equal_a_cache_that_never_saw_the_drafts(
        model: Transformer) -> None:
    rng = np.random.default_rng(1)
    prefix, rejected, good = (rng.integers(FIRST_TEXT_ID, 8192, n) for n in (30, 7, 5))
    rolled = KVCache(model.config, block_size=16)
    model.forward(prefix, rolled)
    model.forward(rejected, rolled)  # a verification pass whose drafts were all rejected
    rolled.truncate(len(prefix))
    after = model.forward(good, rolled)
    clean = KVCache(model.config, block_size=16)
    model.forward(prefix, clean)
    np.testing.assert_array_equal(after, model.forward(good, clean))  # bit for bit
    fresh = model.forward(np.concatenate([prefix, good]), KVCache(model.config))[-len(good):]
    np.testing.assert_allclose(after, fresh, rtol=1e-5, atol=1e-5)
