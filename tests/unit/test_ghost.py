"""ghost.py: one line mid-line, blocks stopped at their end, closers not repeated."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.context.languages import LanguageRegistry
from lsp_server.context.trees import DocumentTree
from lsp_server.ghost import shape_suggestion

REGISTRY = LanguageRegistry()


def shape(path: str, doc: str, suggestion: str, *, with_tree: bool = True) -> str:
    """Shape `suggestion` at the "|" in `doc`, with a real tree for `path`'s language."""
    offset = doc.index("|")
    doc = doc.replace("|", "", 1)
    spec = REGISTRY.for_path(path)
    tree = DocumentTree(spec, doc, REGISTRY.parser(spec)) if spec and with_tree else None
    return shape_suggestion(suggestion, doc, offset, tree=tree, spec=spec)


# -- in the middle of a line


@pytest.mark.parametrize(("doc", "suggestion", "expected"), [
    ("print(|)\n", "x)", "x"),  # the line already closes it
    ("print(|)\n", "x)\nprint(y)", "x"),  # one line only
    ("foo(|):\n", "a, b)", "a, b"),  # overlap with the start of the rest
    ("foo(|):\n", "a, b):", "a, b"),  # the whole rest repeated
    ("x = [|]\n", "1, 2]", "1, 2"),
    ("s = f'|'\n", "{x}'", "{x}"),
    ("x = |bar\n", "1 + bar", "1 + "),  # the whole rest, a word: still a repeat
    ("x = fo|o\n", "oo", "oo"),  # "o" ends a word: not a repeat of the next "o"
    ("call(|)\n", "a, f(b)", "a, f(b)"),  # ")" closes its own "(": nothing to trim...
    ("call(|)  \n", "x))", "x)"),  # ...but the line's own ")" is; trailing blanks ignored
    ("print(|)\r\n", "x)\r\ny", "x"),
    ("print(|)\n", "\nfoo()", ""),  # nothing on the cursor's line
    ("print(|)\n", ")", ""),  # only what is already there
    ("f(|)\n", "'a')", "'a'"),
    ('s = "|"\n', 'abc"', "abc"),  # an unmatched quote the line has
    ('s = "|"\n', '"abc"', '"abc"'),  # a matched one is the suggestion's own
])
def test_mid_line_is_one_line(doc: str, suggestion: str, expected: str) -> None:
    assert shape("a.py", doc, suggestion) == expected


def test_mid_line_without_a_language() -> None:
    assert shape("notes.txt", "see (|) here\n", "page 3)\nmore") == "page 3"


# -- indentation blocks (Python)


def test_python_stops_at_a_dedent_out_of_the_block() -> None:
    doc = "def f(x):\n    a = 1|\n\nz = 1\n"
    suggestion = "\n    b = 2\n    return a + b\n\ndef g():\n    pass\n"
    assert shape("a.py", doc, suggestion) == "\n    b = 2\n    return a + b"


def test_python_nested_block_keeps_its_own_indentation() -> None:
    doc = "def f(xs):\n    for x in xs:\n        total = x|\n    return total\n"
    suggestion = "\n        count += 1\n    return total, count\n"
    assert shape("a.py", doc, suggestion) == "\n        count += 1"


def test_python_header_opens_a_deeper_block() -> None:
    doc = "def f(x):|\n"
    suggestion = "\n    return x\n\ndef g():\n    pass\n"
    assert shape("a.py", doc, suggestion) == "\n    return x"


def test_python_else_continues_the_header() -> None:
    doc = "if x:|\n"
    suggestion = "\n    a()\nelse:\n    b()\nc()\n"
    assert shape("a.py", doc, suggestion) == "\n    a()\nelse:\n    b()"


def test_python_blank_line_uses_the_cursor_column() -> None:
    doc = "class A:\n    def f(self):\n        |\n"
    suggestion = "return 1\n\n    def g(self):\n        return 2\n"
    assert shape("a.py", doc, suggestion) == "return 1"


def test_python_blank_column_zero_inside_a_block_uses_the_tree() -> None:
    # the tree says the function goes on after the cursor: its indentation is the block's
    doc = "def f(x):\n    a = 1\n|\n    return a\n"
    suggestion = "    b = 2\n    c = 3\ndef g():\n    pass\n"
    assert shape("a.py", doc, suggestion) == "    b = 2\n    c = 3"
    # without the tree the cursor's column (0) is all there is
    assert shape("a.py", doc, suggestion, with_tree=False) == suggestion.rstrip("\n")


def test_python_stops_before_repeating_the_next_line_of_the_block() -> None:
    doc = "def f(x):\n    a = 1\n    |\n    return a\n"
    assert shape("a.py", doc, "b = 2\n    return a\n") == "b = 2"
    # the next existing line outside the block is not looked at
    doc = "def f(x):\n    a = 1|\n\nprint(f(1))\n"
    assert shape("a.py", doc, "\n    print(f(1))\n") == "\n    print(f(1))"


def test_python_top_level_runs_on() -> None:
    assert shape("a.py", "x = 1|\n", "\ny = 2\nz = 3\n\n\n") == "\ny = 2\nz = 3"


# -- brace blocks


def test_braces_stop_before_the_closer_the_document_has() -> None:
    doc = "function f() {\n  x = 1;|\n}\n"
    assert shape("a.js", doc, "\n  y();\n}\n\nfunction g() {}\n") == "\n  y();"
    assert shape("a.js", doc, "\n  return y; }\n") == "\n  return y;"


def test_braces_close_an_unclosed_block_and_stop() -> None:
    doc = "function f() {\n  x = 1;|\n"
    assert shape("a.js", doc, "\n  y();\n}\n\nfunction g() {}\n") == "\n  y();\n}"


def test_braces_stop_after_a_construct_opened_in_the_suggestion() -> None:
    doc = "function f() {\n  x = 1;|\n}\n"
    suggestion = "\n  if (x) {\n    y();\n  } else {\n    z();\n  }\n  w();\n}\n"
    assert shape("a.js", doc, suggestion) == "\n  if (x) {\n    y();\n  } else {\n    z();\n  }"


def test_braces_in_strings_and_comments_do_not_count() -> None:
    doc = "let s = 1;|\n"
    suggestion = "\nlet t = '}';  // }\nfoo({\n  a: \"{\",\n});\nbar();"
    assert shape("a.js", doc, suggestion) == "\nlet t = '}';  // }\nfoo({\n  a: \"{\",\n});"


def test_top_level_stray_closer_is_cut() -> None:
    assert shape("a.js", "let s = 1;|\n", "\nlet t = 2;\n}\nlet u;") == "\nlet t = 2;"


def test_braces_repeat_of_the_next_statement_stops() -> None:
    doc = "int f() {\n  int x = 1;|\n  return x;\n}\n"
    suggestion = "\n  x += 2;\n  return x;\n}\n"
    assert shape("a.c", doc, suggestion) == "\n  x += 2;"


def test_a_closing_line_alone_is_not_a_repeat() -> None:
    doc = "fn f() {\n    let x = 1;|\n}\n"
    suggestion = "\n    if x > 0 {\n        g();\n    }\n"
    assert shape("a.rs", doc, suggestion) == "\n    if x > 0 {\n        g();\n    }"


def test_braces_without_a_tree_treat_the_block_as_closed() -> None:
    doc = "function f() {\n  x = 1;|\n"
    assert shape("a.js", doc, "\n  y();\n}\n", with_tree=False) == "\n  y();"


# -- generic


@pytest.mark.parametrize("path", ["a.py", "a.js", "a.txt"])
@pytest.mark.parametrize("suggestion", ["", "\n", "   ", "\n\n   \n", "\t\n  "])
def test_blank_suggestions_give_nothing(path: str, suggestion: str) -> None:
    assert shape(path, "x = 1|\n", suggestion) == ""


def test_trailing_blank_lines_are_dropped_without_a_language() -> None:
    assert shape("a.txt", "hello|\n", " world\nagain\n  \n\n") == " world\nagain"


def test_a_tree_out_of_step_is_not_used() -> None:
    spec = REGISTRY.for_path("a.py")
    assert spec is not None
    doc = "def f(x):\n    a = 1\n\n    return a\n"
    stale = DocumentTree(spec, doc + "# more\n", REGISTRY.parser(spec))
    offset = doc.index("\n\n") + 1
    suggestion = "    b = 2\ndef g():\n    pass"
    assert shape_suggestion(suggestion, doc, offset, tree=stale, spec=spec) == suggestion


CODE = st.text(alphabet="ab :()}{[]'\"\n\t#/", max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["a.py", "a.js", "a.txt"]), CODE, CODE, st.data())
def test_result_is_always_a_prefix_of_the_suggestion(path: str, doc: str, suggestion: str,
                                                    data: st.DataObject) -> None:
    offset = data.draw(st.integers(0, len(doc)))
    shaped = shape(path, doc[:offset] + "|" + doc[offset:], suggestion)
    assert suggestion.startswith(shaped)
    assert shaped == "" or shaped.strip()
