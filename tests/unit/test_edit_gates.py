"""The quality gates on edits (lsp_server/edit_gates.py): each refusal, and the edits that
must still pass them (a rename carried on, a sibling conversion, the cursor's own line)."""

from __future__ import annotations

import pytest

from lsp_server.context.languages import LanguageRegistry
from lsp_server.edit_gates import (
    check_instruction_edit,
    check_next_edit,
    parse_diff,
    undoes_last_edit,
    unpointed_lines,
)
from lsp_server.history import unified_diff

REGISTRY = LanguageRegistry()
PYTHON = REGISTRY.get("python")


def _check(before: str, after: str, cursor_line: int, history: list[str],
           spec_name: str = "python") -> str | None:
    spec = REGISTRY.get(spec_name)
    cursor = sum(len(line) + 1 for line in before.split("\n")[:cursor_line])
    return check_next_edit(text=before, start=0, end=len(before), new_region=after,
                           cursor=cursor, history=history, parser=REGISTRY.parser(spec))


SOURCE = """\
def report(rows):
    total = 0
    for row in rows:
        total += row.amount
    print("done")
    log_count(rows)
    return total
"""


def _renamed_history() -> list[str]:
    before = SOURCE
    after = SOURCE.replace("    total = 0", "    amount = 0")
    return [unified_diff("a.py", before, after)]


def test_a_rename_carried_to_the_next_lines_is_shown() -> None:
    text = SOURCE.replace("    total = 0", "    amount = 0")
    proposal = text.replace("total += row.amount", "amount += row.amount") \
        .replace("return total", "return amount")
    assert _check(text, proposal, cursor_line=1, history=_renamed_history()) is None


def test_deleting_untouched_lines_far_from_the_cursor_is_suppressed() -> None:
    text = SOURCE.replace("    total = 0", "    amount = 0")
    proposal = text.replace('    print("done")\n    log_count(rows)\n', "")
    assert _check(text, proposal, cursor_line=1, history=_renamed_history()) == "destructive"
    assert unpointed_lines(text, proposal, 0, 1, _renamed_history()) == [4, 5]


def test_a_line_sharing_a_renamed_name_may_change_but_not_vanish() -> None:
    """`rows` appears in the user's change, so `log_count(rows)` may be carried on, but
    replacing it with unrelated text is no propagation (found by the model evaluation)."""
    text = SOURCE.replace("def report(rows):", "def report(rows, limit):")
    history = [unified_diff("a.py", SOURCE, text)]
    carried = text.replace("    log_count(rows)", "    log_count(rows, limit)")
    assert _check(text, carried, cursor_line=0, history=history) is None
    vanished = text.replace("    log_count(rows)", "    # the rows are the rows are the rows")
    assert _check(text, vanished, cursor_line=0, history=history) == "destructive"


def test_lines_may_be_deleted_after_the_user_deleted_lines() -> None:
    """The user deleted the loop over `rows`; deleting the far `log_count(rows)` too is a
    deletion carried on, and is shown."""
    loop = "    for row in rows:\n        total += row.amount\n"
    text = SOURCE.replace(loop, "")
    history = [unified_diff("a.py", SOURCE, text)]
    proposal = text.replace("    log_count(rows)\n", "")
    assert _check(text, proposal, cursor_line=0, history=history) is None


def test_with_no_history_only_lines_near_the_cursor_may_change() -> None:
    near = SOURCE.replace('    print("done")', '    print("finished")')
    assert _check(SOURCE, near, cursor_line=5, history=[]) is None
    assert _check(SOURCE, near, cursor_line=0, history=[]) == "destructive"


def test_insertions_and_blank_lines_are_never_destructive() -> None:
    text = SOURCE + "\n\n"
    grown = text.replace("    return total\n", "    return total\n\n\ndef other():\n"
                         "    return 1\n")
    assert _check(SOURCE, SOURCE.replace("    return total\n",
                                         "    log_count(rows)\n    return total\n"),
                  cursor_line=0, history=[]) is None
    assert _check(text, grown.rstrip("\n") + "\n", cursor_line=0, history=[]) is None


@pytest.mark.parametrize("before, change, carried", [
    # a conversion applied to a sibling line
    ('a = "%s" % x\nb = 1\nc = 2\nd = 3\ne = 4\nf = "%s" % y\n',
     ('a = "%s" % x', 'a = f"{x}"'), ('f = "%s" % y', 'f = f"{y}"')),
    # a new argument carried to a call site
    ("def area(w):\n    return w\n\n\n\n\nprint(area(3))\n",
     ("def area(w):", "def area(w, h):"), ("print(area(3))", "print(area(3, 4))")),
])
def test_a_change_carried_to_a_line_far_from_the_cursor_is_shown(
        before: str, change: tuple[str, str], carried: tuple[str, str]) -> None:
    text = before.replace(*change)
    history = [unified_diff("a.py", before, text)]
    assert _check(text, text.replace(*carried), cursor_line=0, history=history) is None


def test_an_edit_that_breaks_the_parse_is_suppressed() -> None:
    proposal = SOURCE.replace("    for row in rows:", "    for row in rows")
    assert _check(SOURCE, proposal, cursor_line=2, history=[]) == "breaks_parse"


def test_a_region_that_did_not_parse_before_is_not_held_to_it() -> None:
    broken = SOURCE.replace("    for row in rows:", "    for row in rows")
    still = broken.replace("print(\"done\")", "print(\"done\"")
    assert _check(broken, still, cursor_line=3, history=[]) is None


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("rust", "fn f() -> i32 {\n    1\n}\n", "fn f() -> i32 {\n    1\n"),
    ("go", "package a\n\nfunc f() int {\n\treturn 1\n}\n", "package a\n\nfunc f() int {\n"
     "\treturn (1\n}\n"),
    ("javascript", "function f() {\n  return 1;\n}\n", "function f() {\n  return [1;\n}\n"),
    ("c", "int f(void) {\n  return 1;\n}\n", "int f(void) {\n  return 1\n"),
])
def test_the_parse_gate_in_other_languages(name: str, good: str, bad: str) -> None:
    spec = REGISTRY.get(name)
    assert check_instruction_edit(text=good, start=0, end=len(good), new_region=bad,
                                  parser=REGISTRY.parser(spec)) == "breaks_parse"
    assert check_instruction_edit(text=good, start=0, end=len(good), new_region=good,
                                  parser=REGISTRY.parser(spec)) is None


def test_an_instruction_edit_that_parses_passes() -> None:
    region = "def f(x):\n    return x\n"
    docstring = 'def f(x):\n    """Return x."""\n    return x\n'
    assert check_instruction_edit(text=region, start=0, end=len(region), new_region=docstring,
                                  parser=REGISTRY.parser(PYTHON)) is None


def test_an_unknown_language_skips_the_parse_gate() -> None:
    assert check_instruction_edit(text="a\n", start=0, end=2, new_region="(\n",
                                  parser=None) is None


def test_undoing_the_last_edit_is_suppressed() -> None:
    before = "x = 1\ny = 2\n"
    text = "x = 10\ny = 2\n"
    history = [unified_diff("a.py", before, text)]
    assert undoes_last_edit(text, 0, len(text), before, history[-1])
    assert _check(text, before, cursor_line=0, history=history) == "undoes_last_edit"
    # the same line changed on to something new is not an undo
    assert not undoes_last_edit(text, 0, len(text), "x = 11\ny = 2\n", history[-1])


def test_undoing_one_hunk_of_several_is_suppressed_and_stale_diffs_are_ignored() -> None:
    before = "".join(f"v{i} = {i}\n" for i in range(20))
    text = before.replace("v1 = 1", "v1 = 100").replace("v15 = 15", "v15 = 150")
    diff = unified_diff("a.py", before, text)
    assert len(parse_diff(diff)) == 2
    assert undoes_last_edit(text, 0, len(text), text.replace("v15 = 150", "v15 = 15"), diff)
    moved_on = text.replace("v15 = 150", "v15 = 151")
    assert not undoes_last_edit(moved_on, 0, len(moved_on),
                                moved_on.replace("v15 = 151", "v15 = 15"), diff)


def test_deleting_the_line_the_user_just_added_is_an_undo() -> None:
    before = "a = 1\nb = 2\n"
    text = "a = 1\nnew = 3\nb = 2\n"
    history = [unified_diff("a.py", before, text)]
    assert _check(text, before, cursor_line=1, history=history) == "undoes_last_edit"


@pytest.mark.parametrize("first_line", [0, 7])
def test_parse_diff_reads_what_history_writes(first_line: int) -> None:
    before = "".join(f"line {i}\n" for i in range(12))
    after = before.replace("line 3\n", "").replace("line 9\n", "line 9!\nline 9b\n")
    hunks = parse_diff(unified_diff("a.py", before, after, first_line=first_line))
    old_lines, new_lines = before.split("\n"), after.split("\n")
    for hunk in hunks:
        start, new_start = hunk.old_start - first_line, hunk.new_start - first_line
        assert tuple(old_lines[start:start + len(hunk.old)]) == hunk.old
        assert tuple(new_lines[new_start:new_start + len(hunk.new)]) == hunk.new
        for row, line in zip(hunk.added_rows, hunk.added, strict=True):
            assert new_lines[row - first_line] == line
    assert [h.removed for h in hunks] == [("line 3",), ("line 9",)]


def test_undo_is_judged_inside_a_region_in_the_middle_of_the_document() -> None:
    before = "".join(f"v{i} = {i}\n" for i in range(30))
    text = before.replace("v20 = 20", "v20 = 200")
    diff = unified_diff("a.py", before, text)
    start = text.index("v18 =")
    end = text.index("v24 =")
    region = text[start:end]
    assert undoes_last_edit(text, start, end, region.replace("v20 = 200", "v20 = 20"), diff)
    assert not undoes_last_edit(text, start, end, region.replace("v20 = 200", "v20 = 201"), diff)
    # a region that does not hold the change cannot undo it
    other = text.index("v2 =")
    assert not undoes_last_edit(text, other, start, text[other:start].replace("v3", "w3"), diff)


@pytest.mark.parametrize("with_tree", [False, True])
def test_the_parse_gate_gives_the_same_answer_from_the_servers_tree(with_tree: bool) -> None:
    parser = REGISTRY.parser(PYTHON)
    text = "# é ünïcode\n" + SOURCE + "\n\ndef other():\n    return 'ß'\n"
    start = text.index("def report")
    end = text.index("\n\n\ndef other") + 1
    tree = parser.parse(text.encode()) if with_tree else None
    region = text[start:end]
    broken = region.replace("    for row in rows:", "    for row in rows")
    fine = region.replace("total", "amount")
    assert check_instruction_edit(text=text, start=start, end=end, new_region=broken,
                                  parser=parser, tree=tree) == "breaks_parse"
    assert check_instruction_edit(text=text, start=start, end=end, new_region=fine,
                                  parser=parser, tree=tree) is None


def test_a_line_sharing_only_kept_words_is_not_carried_on() -> None:
    """The user replaced `repeat(byte)` with `repeat_count(byte)`; a proposal that rewrites
    the function's signature into another function's (sharing only `self` and `byte`,
    which the change kept) is no propagation (found by the model evaluation, in Rust)."""
    before = ("    pub fn match_byte(self, byte: u8) -> BitMask {\n"
              "        let x = 1;\n        let y = 2;\n        let z = 3;\n"
              "        let cmp = self.0 ^ repeat(byte);\n"
              "        BitMask(cmp & repeat(0x80))\n    }\n")
    text = before.replace("repeat(byte)", "repeat_count(byte)")
    history = [unified_diff("a.rs", before, text)]
    garbage = text.replace("pub fn match_byte(self, byte: u8) -> BitMask {",
                           "pub fn match_empty(self) -> Bit128 {")
    assert _check(text, garbage, cursor_line=4, history=history, spec_name="rust") \
        == "destructive"
    carried = text.replace("cmp & repeat(0x80)", "cmp & repeat_count(0x80)")
    assert _check(text, carried, cursor_line=0, history=history, spec_name="rust") is None
