"""Token healing: the first token is constrained to begin with the healed text, which
is then removed from the answer and from the stream."""

from __future__ import annotations

import pytest

from engine.generate import generate
from engine.model import Transformer
from engine.request import GenerateParams
from engine.tokenizer import Tokenizer


def test_tokens_starting_with_is_exact_and_skips_control_tokens(tok: Tokenizer) -> None:
    ids = tok.tokens_starting_with(b"de")
    assert len(ids) > 3
    assert all(tok.token_bytes([int(i)]).startswith(b"de") for i in ids)
    assert not set(ids.tolist()) & set(tok.special_ids.values())
    assert tok.encode("def")[0] in ids.tolist()


@pytest.mark.parametrize("heal", ["de", "sel", "."])
def test_the_answer_starts_at_the_cursor_after_healing(model: Transformer, tok: Tokenizer,
                                                       heal: str) -> None:
    streamed: list[str] = []
    prompt = tuple(tok.encode("import os\n\n\nclass Cart:\n    "))
    result = generate(model, tok, GenerateParams(tokens=prompt, max_tokens=6, heal=heal),
                      on_text=lambda delta, _ids: streamed.append(delta))
    full = tok.decode(result.tokens)
    assert full.startswith(heal), "the first token carries the healed text"
    assert result.text == full[len(heal):]
    assert "".join(streamed) == result.text


def test_healing_that_no_token_can_carry_is_ignored(model: Transformer, tok: Tokenizer) -> None:
    prompt = tuple(tok.encode("x = 1\n"))
    plain = generate(model, tok, GenerateParams(tokens=prompt, max_tokens=4))
    odd = generate(model, tok, GenerateParams(tokens=prompt, max_tokens=4,
                                              heal="\x00\x01never a token prefix"))
    assert odd.tokens == plain.tokens and odd.text == plain.text


def test_heal_must_be_a_short_string() -> None:
    with pytest.raises(ValueError, match="heal"):
        GenerateParams.from_wire({"prompt": "x", "heal": 3})
    with pytest.raises(ValueError, match="heal"):
        GenerateParams.from_wire({"prompt": "x", "heal": "y" * 65})
    assert GenerateParams.from_wire({"prompt": "x", "heal": ""}).heal is None
