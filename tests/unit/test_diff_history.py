"""Unified diffs as edit history: parsed, reversed exactly, replayed as the server's bursts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.diff_history import (
    DiffError,
    parse_unified_diff,
    record_history,
    reverse_apply,
)
from lsp_server.history import EditHistory, unified_diff

lines = st.lists(st.sampled_from(["a\n", "b\n", "\n", "c = 1\n", "  d\n", "e"]), max_size=12)


def texts(parts: list[str]) -> str:
    # "e" has no newline: only at the end may a line lack one
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts[:-1]) + \
        ("".join(parts[-1:]))


@settings(max_examples=300, deadline=None)
@given(lines, lines, st.integers(0, 4))
def test_reversing_a_diff_gives_back_the_text_before(before, after, context):
    before_text, after_text = texts(before), texts(after)
    diff = unified_diff("f.py", before_text, after_text, context_lines=context)
    sections = parse_unified_diff(diff)
    if before_text == after_text:
        assert sections == []
        return
    (section,) = sections
    assert section.path == "f.py"
    assert reverse_apply(after_text, section.hunks, "f.py") == before_text


def test_a_git_diff_with_a_lost_newline_and_a_blank_context_line():
    before = "x = 1\n\ny = 2"
    after = "x = 1\n\ny = 3\n"
    diff = ("diff --git a/m.py b/m.py\nindex 1..2 100644\n--- a/m.py\n+++ b/m.py\n"
            "@@ -1,3 +1,3 @@\n x = 1\n\n-y = 2\n\\ No newline at end of file\n+y = 3\n")
    (section,) = parse_unified_diff(diff)
    assert reverse_apply(after, section.hunks, "m.py") == before


def test_a_hunk_is_found_a_few_lines_from_its_header():
    before = "a\nb\nc\n"
    after = "a\nB\nc\n"
    (section,) = parse_unified_diff("--- a/f\n+++ b/f\n@@ -2 +2 @@\n-b\n+B\n")
    moved = "new\nlines\n" + after  # lines added above since the diff was taken
    assert reverse_apply(after, section.hunks, "f") == before
    assert reverse_apply(moved, section.hunks, "f") == "new\nlines\n" + before


def test_a_diff_that_does_not_describe_the_text_is_refused():
    (section,) = parse_unified_diff("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-b\n+B\n")
    with pytest.raises(DiffError, match="does not match f"):
        reverse_apply("a\nb\n", section.hunks, "f")
    with pytest.raises(DiffError, match="ends early"):
        parse_unified_diff("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-b\n")
    with pytest.raises(DiffError, match="before any"):
        parse_unified_diff("@@ -1 +1 @@\n-b\n+B\n")


def test_hunks_become_closed_bursts_the_one_nearest_the_cursor_last():
    before = "".join(f"line {i}\n" for i in range(40))
    after = before.replace("line 3\n", "LINE 3\n").replace("line 30\n", "LINE 30\n")
    (section,) = parse_unified_diff(unified_diff("f.py", before, after))
    for cursor, last in ((2, "+LINE 3\n"), (31, "+LINE 30\n")):
        history = EditHistory()
        assert record_history(history, "f.py", after, section.hunks, "f.py",
                              cursor_line=cursor, now=1000.0) == 2
        entries = history.entries(include_open=True)
        assert [e.closed for e in entries] == [True, True]
        assert last in entries[-1].diff and last not in entries[0].diff
        assert all(e.path == "f.py" and e.diff.startswith("--- a/f.py\n") for e in entries)
