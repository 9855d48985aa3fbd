"""The embedded tokenizer: literal vs prompt encoding, offsets, incremental decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.tokenizer import Tokenizer

SPECIALS = [
    "<|endoftext|>", "<|repo_name|>", "<|file_sep|>", "<|fim_prefix|>", "<|fim_suffix|>",
    "<|fim_middle|>", "<|fim_pad|>", "<|edit_history|>", "<|instruction|>",
    "<|region_start|>", "<|cursor|>", "<|region_end|>", "<|rewrite|>",
]


def test_special_tokens(tok: Tokenizer) -> None:
    assert list(tok.special_ids) == SPECIALS
    assert tok.eos_id == tok.special_ids["<|endoftext|>"] == 0
    assert tok.vocab_size == 8192


def test_special_strings_in_user_text_are_literal(tok: Tokenizer) -> None:
    text = 'x = "<|endoftext|>"  # <|fim_middle|>\n'
    ids = tok.encode(text)
    assert not set(ids) & set(tok.special_ids.values())
    assert tok.decode(ids) == text


def test_prompt_encoding_parses_markers(tok: Tokenizer) -> None:
    s = tok.special_ids
    ids = tok.encode_prompt("<|fim_suffix|>b<|fim_prefix|>a<|fim_middle|>")
    assert ids[0] == s["<|fim_suffix|>"] and ids[-1] == s["<|fim_middle|>"]
    assert s["<|fim_prefix|>"] in ids
    assert tok.decode(ids) == "<|fim_suffix|>b<|fim_prefix|>a<|fim_middle|>"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_roundtrip_random_unicode(tok: Tokenizer, text: str) -> None:
    assert tok.decode(tok.encode(text)) == text


def test_offsets_are_character_offsets(tok: Tokenizer) -> None:
    text = "def f():\n    return '😀 中文'\n"
    ids, offsets = tok.encode_with_offsets(text)
    assert len(ids) == len(offsets)
    assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
    assert all(0 <= a <= b <= len(text) for a, b in offsets)
    assert "".join(text[a:b] for a, b in dict.fromkeys(offsets)) == text


def _stream(tok: Tokenizer, ids: list[int]) -> list[str]:
    dec = tok.incremental_decoder()
    deltas = [dec.push([i]) for i in ids]
    return deltas + [dec.flush()]


@pytest.mark.parametrize("text", ["😀🎉 emoji", "中文字符和日本語", "naïve café ✓", "𝔘𝔫𝔦"])
def test_incremental_decoder_whole_characters(tok: Tokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert len(ids) > len(text) // 2  # byte-level: multi-byte chars span tokens
    deltas = _stream(tok, ids)
    assert "".join(deltas) == text
    assert not any("\ufffd" in d for d in deltas)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_incremental_decoder_split_at_every_byte(tok: Tokenizer, text: str) -> None:
    """Feed the bytes one at a time via single-byte tokens: never a U+FFFD."""
    byte_token = {}
    for i in range(tok.vocab_size):
        b = tok.token_bytes([i])
        if len(b) == 1 and i not in tok.special_ids.values():
            byte_token.setdefault(b, i)
    ids = [byte_token[bytes([b])] for b in text.encode("utf-8")]
    deltas = _stream(tok, ids)
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas) or "\ufffd" in text


def test_incremental_decoder_invalid_bytes_become_replacement(tok: Tokenizer) -> None:
    lone = next(i for i in range(tok.vocab_size) if tok.token_bytes([i]) == b"\xf0")
    dec = tok.incremental_decoder()
    assert dec.push([lone]) == ""
    assert dec.flush() == "\ufffd"
