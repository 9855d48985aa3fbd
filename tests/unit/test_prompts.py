"""prompts.py: the budget is never exceeded, cuts fall at line starts, FIM order."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.prompts import (
    FimOrder,
    FimTokens,
    Tokenized,
    build_fim_prompt,
    keep_prefix,
    keep_suffix,
)

SPECIAL = FimTokens(prefix=1, suffix=2, middle=3)
_PIECES = re.compile(r"\n|[^\S\n]+|\w+|[^\w\s]")


def tokenize(text: str) -> Tokenized:
    """A stand-in for the engine's BPE: words, runs of spaces, punctuation and newlines.

    Ids are >= 10 so they never collide with the special ids above.
    """
    matches = list(_PIECES.finditer(text))
    return Tokenized(text=text, ids=[10 + len(m.group()) for m in matches],
                     offsets=[m.span() for m in matches])


CODE = st.lists(st.sampled_from(["def", "x", " ", "    ", "(", ")", ":", "\n", "é", "return"]),
                max_size=80).map("".join)


@settings(max_examples=400, deadline=None)
@given(prefix=CODE, suffix=CODE, budget=st.integers(3, 120),
       order=st.sampled_from(list(FimOrder)))
def test_budget_never_exceeded_and_all_specials_present(prefix, suffix, budget, order):
    prompt = build_fim_prompt(prefix=tokenize(prefix), suffix=tokenize(suffix),
                              budget=budget, special=SPECIAL, order=order)
    assert len(prompt.tokens) <= budget
    assert sorted(t for t in prompt.tokens if t < 10) == [1, 2, 3]
    assert prompt.tokens[-1] == SPECIAL.middle


@settings(max_examples=400, deadline=None)
@given(prefix=CODE, suffix=CODE, budget=st.integers(3, 120))
def test_kept_text_is_a_tail_of_the_prefix_and_a_head_of_the_suffix(prefix, suffix, budget):
    pre, suf = tokenize(prefix), tokenize(suffix)
    prompt = build_fim_prompt(prefix=pre, suffix=suf, budget=budget, special=SPECIAL)
    # SPM: <suffix> suffix <prefix> prefix <middle>
    split = prompt.tokens.index(SPECIAL.prefix)
    assert prompt.tokens[1:split] == list(suf.ids[:prompt.suffix_tokens])
    assert prompt.tokens[split + 1:-1] == list(pre.ids[len(pre.ids) - prompt.prefix_tokens:])
    # When everything fits nothing is dropped.
    if len(pre.ids) + len(suf.ids) + 3 <= budget:
        assert prompt.prefix_chars_dropped == prompt.suffix_chars_dropped == 0


def test_cuts_fall_at_line_starts():
    prefix = "import os\nimport sys\n\ndef main():\n    x = 1\n    y"
    suffix = " = 2\n    return x\n\nmain()\n"
    pre, suf = tokenize(prefix), tokenize(suffix)
    start = keep_prefix(pre, 18)  # 18 allowed: the first line start inside wins
    assert len(pre.ids) - start == 17
    kept = prefix[pre.offsets[start][0]:]
    assert kept == "\ndef main():\n    x = 1\n    y"
    end = keep_suffix(suf, 6)
    assert suffix[:suf.offsets[end - 1][1]] == " = 2\n"


def test_a_line_longer_than_the_window_is_cut_inside():
    pre = tokenize("a b c d e f g h")
    assert keep_prefix(pre, 4) == len(pre.ids) - 4
    suf = tokenize("a b c d e f g h")
    assert keep_suffix(suf, 4) == 4


def test_budget_split_favours_the_prefix():
    line = "abc def ghi\n"  # 6 tokens per line
    pre, suf = tokenize(line * 40), tokenize(line * 40)
    prompt = build_fim_prompt(prefix=pre, suffix=suf, budget=103, special=SPECIAL)
    assert prompt.prefix_tokens == 72  # 3/4 of 100, rounded down to whole lines
    assert prompt.suffix_tokens == 24
    assert prompt.prefix_chars_dropped > 0 and prompt.suffix_chars_dropped > 0


def test_a_short_side_gives_its_share_to_the_other():
    pre, suf = tokenize("x\n" * 200), tokenize("y\n")
    prompt = build_fim_prompt(prefix=pre, suffix=suf, budget=53, special=SPECIAL)
    assert prompt.suffix_tokens == 2 and prompt.prefix_tokens == 48


def test_orders():
    pre, suf = tokenize("a"), tokenize("b")
    spm = build_fim_prompt(prefix=pre, suffix=suf, budget=10, special=SPECIAL,
                           order=FimOrder.SPM)
    psm = build_fim_prompt(prefix=pre, suffix=suf, budget=10, special=SPECIAL,
                           order=FimOrder.PSM)
    assert spm.tokens == [2, 11, 1, 11, 3]
    assert psm.tokens == [1, 11, 2, 11, 3]


def test_too_small_a_budget_is_a_value_error():
    with pytest.raises(ValueError, match="budget"):
        build_fim_prompt(prefix=tokenize("a"), suffix=tokenize(""), budget=2, special=SPECIAL)


def test_special_ids_from_info_with_or_without_brackets():
    assert FimTokens.from_info({"<|fim_prefix|>": 5, "<|fim_suffix|>": 6,
                                "<|fim_middle|>": 7}) == FimTokens(prefix=5, suffix=6, middle=7)
    assert FimTokens.from_info({"fim_prefix": 5, "fim_suffix": 6, "fim_middle": 7}).middle == 7
    with pytest.raises(KeyError, match="fim_middle"):
        FimTokens.from_info({"fim_prefix": 5, "fim_suffix": 6})


def _real_tokenized(text: str) -> Tokenized:
    from engine.models import untrained_model_dir
    from engine.tokenizer import Tokenizer

    ids, offsets = Tokenizer.from_dir(untrained_model_dir()).encode_with_offsets(text)
    return Tokenized(text=text, ids=ids, offsets=offsets)


@pytest.mark.parametrize("prefix, healed", [
    ("path = os.path.jo", True),      # a word cut by the cursor: re-chosen by the engine
    ("x = compute(", True),           # punctuation on the line is healed too
    ("def f():\n", False),            # a line end is a place the model saw prefixes end
    ("def f():\n    ", False),        # so is indentation
])
def test_healing_drops_the_token_the_cursor_splits(prefix: str, healed: bool) -> None:
    pre, suf = _real_tokenized(prefix), _real_tokenized("\nprint(path)\n")
    special = FimTokens(prefix=1, suffix=2, middle=3)
    plain = build_fim_prompt(prefix=pre, suffix=suf, budget=200, special=special)
    healing = build_fim_prompt(prefix=pre, suffix=suf, budget=200, special=special, heal=True)
    assert plain.heal == ""
    if healed:
        last = pre.offsets[-1]
        assert healing.heal == prefix[last[0]:last[1]] and prefix.endswith(healing.heal)
        assert healing.tokens == plain.tokens[:-2] + plain.tokens[-1:]  # SPM: ... prefix, middle
    else:
        assert healing.heal == "" and healing.tokens == plain.tokens
