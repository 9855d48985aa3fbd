"""Edit regions, the edit prompt's layout and budget, minimal edits, rewrite parsing."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server.context.languages import LanguageRegistry
from lsp_server.context.tokens import TokenCounter
from lsp_server.context.trees import DocumentTree
from lsp_server.edits import (
    EditRegion,
    TextEdit,
    build_edit_prompt,
    choose_region,
    minimal_edits,
    missing_edit_tokens,
    parse_rewrite,
    selection_region,
)

REGISTRY = LanguageRegistry()

SOURCE = '''import os


def load(path):
    """Read a file."""
    with open(path) as handle:
        data = handle.read()
    return data


def total(items):
    count = 0
    for item in items:
        count += item
    return count


def main():
    print(total([1, 2, 3]))
'''


@cache
def _tokenizer() -> Tokenizer:
    return Tokenizer.from_dir(default_model_dir())


@cache
def _counter() -> TokenCounter:
    return TokenCounter.from_tokenizer(_tokenizer())


def _sp(name: str) -> int:
    return _tokenizer().special_ids[name]


def _ids(text: str) -> list[int]:
    return _tokenizer().encode(text)


def _tree(text: str) -> DocumentTree:
    spec = REGISTRY.get("python")
    assert spec is not None
    return DocumentTree(spec, text)


def _prompt(text: str, region: EditRegion, history: list[str] | None = None,
            instruction: str | None = None, budget: int = 4096, path: str = "pkg/mod.py"):
    return build_edit_prompt(counter=_counter(), special_ids=_tokenizer().special_ids,
                             path=path, text=text, region=region, history=history or [],
                             instruction=instruction, budget=budget)


# -- regions ---------------------------------------------------------------------------------

def test_region_from_the_tree_is_the_function_around_the_cursor():
    offset = SOURCE.index("count += item") + 3
    region = choose_region(SOURCE, offset, _tree(SOURCE), None)
    function = SOURCE[SOURCE.index("def total"):SOURCE.index("\n\n\ndef main") + 1]
    assert SOURCE[region.start:region.end] == function
    assert region.cursor == offset


def test_region_without_a_tree_is_a_window_of_lines_around_the_cursor():
    offset = SOURCE.index("count += item")
    region = choose_region(SOURCE, offset, None, None, min_lines=2)
    lines = SOURCE[region.start:region.end].splitlines()
    assert lines == ["    count = 0", "    for item in items:", "        count += item",
                     "    return count", ""]
    assert region.start == SOURCE.rfind("\n", 0, region.start) + 1  # whole lines
    assert SOURCE[region.end - 1] == "\n"


def test_a_stale_tree_is_not_used():
    tree = _tree(SOURCE)
    newer = SOURCE.replace("import os\n", "import os\nimport sys\n")
    offset = newer.index("count += item")
    assert choose_region(newer, offset, tree, None, min_lines=2) \
        == choose_region(newer, offset, None, None, min_lines=2)


def test_region_at_the_end_of_the_text():
    text = "a = 1\nb = 2"
    region = choose_region(text, len(text), None, None)
    assert (region.start, region.end, region.cursor) == (0, len(text), len(text))
    empty = choose_region("", 0, None, None)
    assert (empty.start, empty.end, empty.cursor) == (0, 0, 0)


def test_selection_is_extended_to_whole_lines_with_the_cursor_at_its_start():
    start = SOURCE.index("for item")
    end = SOURCE.index("+= item") + 2
    region = selection_region(SOURCE, start, end)
    assert SOURCE[region.start:region.end] == "    for item in items:\n        count += item\n"
    assert region.cursor == start
    # ending at the start of a line does not take that line; reversed ends are sorted
    line = SOURCE.index("    return count")
    assert selection_region(SOURCE, line, start).end == line
    assert selection_region(SOURCE, line, start).cursor == start


def test_a_region_must_hold_its_cursor():
    with pytest.raises(ValueError):
        EditRegion(start=5, end=10, cursor=11)


# -- the prompt ------------------------------------------------------------------------------

def test_prompt_layout_is_the_training_layout_token_by_token():
    region_start = SOURCE.index("def total")
    region_end = SOURCE.index("\n\ndef main") + 1
    cursor = SOURCE.index("count = 0") + 5
    diff = "--- a/pkg/mod.py\n+++ b/pkg/mod.py\n@@ -12 +12 @@\n-    n = 0\n+    count = 0\n"
    prompt = _prompt(SOURCE, EditRegion(region_start, region_end, cursor), history=[diff])
    region = SOURCE[region_start:region_end]
    c = cursor - region_start
    expected = [_sp("<|edit_history|>"), *_ids(diff), _sp("<|file_sep|>"), *_ids("pkg/mod.py\n"),
                *_ids(SOURCE[:region_start]), _sp("<|region_start|>"), *_ids(region[:c]),
                _sp("<|cursor|>"), *_ids(region[c:]), _sp("<|region_end|>"),
                *_ids(SOURCE[region_end:]), _sp("<|rewrite|>")]
    assert prompt.tokens == expected
    assert prompt.region_text == region
    assert prompt.region_tokens == len(_ids(region))
    assert (prompt.history_used, prompt.before_chars_dropped, prompt.after_chars_dropped) \
        == (1, 0, 0)


def test_an_instruction_comes_first():
    region = EditRegion(0, 10, 0)
    prompt = _prompt(SOURCE, region, instruction="add type hints")
    plain = _prompt(SOURCE, region)
    head = [_sp("<|instruction|>"), *_ids("add type hints\n")]
    assert prompt.tokens == head + plain.tokens


def test_special_token_strings_in_code_stay_literal():
    text = 'END = "<|endoftext|>"\nx = "<|cursor|>"\n'
    prompt = _prompt(text, EditRegion(0, len(text), 3))
    specials = set(_tokenizer().special_ids.values())
    assert [t for t in prompt.tokens if t in specials] == [
        _sp(n) for n in ("<|edit_history|>", "<|file_sep|>", "<|region_start|>", "<|cursor|>",
                         "<|region_end|>", "<|rewrite|>")]


def _long_source(n: int = 120) -> str:
    return "".join(f"def function_{i}(value):\n    return value * {i}\n\n" for i in range(n))


def _history(n: int = 6) -> list[str]:
    return [f"--- a/m.py\n+++ b/m.py\n@@ -{i} +{i} @@\n-x_{i} = {i}\n+y_{i} = {i}\n"
            for i in range(n)]


@settings(max_examples=40, deadline=None)
@given(budget=st.integers(min_value=60, max_value=3000), at=st.integers(0, 119),
       n_history=st.integers(0, 6), instruction=st.sampled_from([None, "rename it"]))
def test_the_budget_is_never_exceeded(budget, at, n_history, instruction):
    text = _long_source()
    offset = text.index(f"def function_{at}(")
    region = choose_region(text, offset, None, None, min_lines=1)
    try:
        prompt = _prompt(text, region, history=_history(n_history), instruction=instruction,
                         budget=budget)
    except ValueError as exc:
        assert str(budget) in str(exc)
        return
    assert len(prompt.tokens) <= budget
    assert _sp("<|region_start|>") in prompt.tokens


def test_a_region_that_does_not_fit_names_both_numbers():
    text = _long_source()
    with pytest.raises(ValueError, match=r"needs \d+ prompt tokens.*budget of 20"):
        _prompt(text, EditRegion(0, len(text) // 2, 0), budget=20)


def test_trimming_drops_old_history_first_then_cuts_before_and_after_at_lines():
    text = _long_source()
    offset = text.index("def function_60(")
    region = choose_region(text, offset, None, None, min_lines=1)
    history = _history(6)
    roomy = _prompt(text, region, history=history, budget=100_000)
    assert (roomy.history_used, roomy.before_chars_dropped, roomy.after_chars_dropped) \
        == (6, 0, 0)

    tight = _prompt(text, region, history=history, budget=400)
    assert 0 < tight.history_used < 6
    # the newest diffs are kept, oldest first
    kept = history[-tight.history_used:]
    start = tight.tokens.index(_sp("<|edit_history|>")) + 1
    assert tight.tokens[start:tight.tokens.index(_sp("<|file_sep|>"))] \
        == [t for d in kept for t in _ids(d)]
    assert tight.before_chars_dropped > 0 and tight.after_chars_dropped > 0
    before = text[:region.start][tight.before_chars_dropped:]
    after = text[region.end:][:len(text) - region.end - tight.after_chars_dropped]
    assert before.startswith("def ") or before.startswith("\n") or before.startswith("    ")
    assert text[:region.start][tight.before_chars_dropped - 1] == "\n"  # a line boundary
    assert after.endswith("\n")
    # `before` gets about two thirds of what history leaves
    n_before, n_after = len(_ids(before)), len(_ids(after))
    assert n_before > n_after
    assert len(tight.tokens) <= 400


def test_without_edit_tokens_the_prompt_is_refused():
    ids = {k: v for k, v in _tokenizer().special_ids.items() if k != "<|region_start|>"}
    assert missing_edit_tokens(ids) == ["<|region_start|>"]
    with pytest.raises(ValueError, match="no edit tokens"):
        build_edit_prompt(counter=_counter(), special_ids=ids, path="p", text="x\n",
                          region=EditRegion(0, 2, 0), history=[], instruction=None, budget=100)


# -- minimal edits ---------------------------------------------------------------------------

def _apply(text: str, edits: list[TextEdit], base: int = 0) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[:edit.start - base] + edit.new_text + text[edit.end - base:]
    return text


_lines = st.lists(st.sampled_from(["a\n", "b\n", "count = 0\n", "x = count\n", "\n", "c",
                                   "  return count\n", "é\n"]), max_size=8)


@settings(max_examples=300, deadline=None)
@given(old=_lines.map("".join), new=_lines.map("".join), base=st.integers(0, 50))
def test_minimal_edits_turn_old_into_new(old, new, base):
    edits = minimal_edits(old, new, base)
    assert _apply(old, edits, base) == new
    assert all(e.start - base >= 0 and e.end - base <= len(old) for e in edits)
    assert all(a.end <= b.start for a, b in zip(edits, edits[1:], strict=False))
    assert (edits == []) == (old == new)


@settings(max_examples=200, deadline=None)
@given(old=st.text(alphabet="ab\n xy", max_size=30), new=st.text(alphabet="ab\n xy", max_size=30))
def test_minimal_edits_on_any_text(old, new):
    assert _apply(old, minimal_edits(old, new, 0)) == new


def test_renaming_one_word_is_one_small_edit():
    old = "def f(total):\n    x = total + 1\n    return x\n"
    new = "def f(total):\n    x = total_count + 1\n    return x\n"
    assert minimal_edits(old, new, 100) == [
        TextEdit(start=100 + old.index(" + 1"), end=100 + old.index(" + 1"), new_text="_count")]


def test_renames_on_consecutive_lines_are_separate_edits():
    old = "a = total\nb = total\n"
    new = "a = total_n\nb = total_n\n"
    edits = minimal_edits(old, new, 0)
    assert [(e.start, e.end, e.new_text) for e in edits] == [(9, 9, "_n"), (19, 19, "_n")]


def test_no_change_no_edits():
    assert minimal_edits("x = 1\n", "x = 1\n", 7) == []


# -- rewrites --------------------------------------------------------------------------------

def test_parse_rewrite():
    assert parse_rewrite("x = 1\n", "eos") == "x = 1\n"
    assert parse_rewrite("x = 1\n<|endoftext|>junk", "stop") == "x = 1\n"
    assert parse_rewrite("x = 1\n<|region_end|>\ny", None) == "x = 1\n"
    assert parse_rewrite("x = 1\n<|file_sep|>other.py", "eos") == "x = 1\n"
    assert parse_rewrite("x = 1\n", "length") is None
    assert parse_rewrite("", "eos") == ""
    # a marker begun at the very end is cut off, unless the region ends the same way
    assert parse_rewrite("x = 1\n<|endof", "eos") == "x = 1\n"
    assert parse_rewrite("x = '<|", "eos", region="x = '<|") == "x = '<|"
    assert parse_rewrite("x < y\n<", "eos") == "x < y\n<"  # one character is no marker
    # another layout's markers
    assert parse_rewrite("a\n<END>b", "eos", ends=["<END>"], drop=["<C>"]) == "a\n"
    assert parse_rewrite("a<C>\n", "eos", ends=["<END>"], drop=["<C>"]) == "a\n"
    # a marker string that the region itself holds is code, not the end of the rewrite
    code = 'END = "<|endoftext|>"\n'
    assert parse_rewrite(code, "eos", region=code) == code


def test_redaction_spares_the_region():
    secret = 'API_KEY = "sk-abcdefghijklmnopqrstuvwxyz0123456789"\n'
    text = secret + "x = 1\n" + secret
    region = EditRegion(len(secret), len(secret) + 6, len(secret))
    prompt = build_edit_prompt(counter=_counter(), special_ids=_tokenizer().special_ids,
                               path="p.py", text=text, region=region,
                               history=[], instruction=None, budget=1000, redact=True)
    decoded = _tokenizer().decode(prompt.tokens)
    assert "sk-abc" not in decoded and "REDACTED" in decoded
    inside = selection_region(secret * 2, 0, 1)
    kept = build_edit_prompt(counter=_counter(), special_ids=_tokenizer().special_ids,
                             path="p.py", text=secret * 2, region=inside, history=[],
                             instruction=None, budget=1000, redact=True)
    assert kept.region_text == secret and secret in _tokenizer().decode(kept.tokens)
