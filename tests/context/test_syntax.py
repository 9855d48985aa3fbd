"""Syntax helpers: enclosing scopes, cut lines, editable region, block end."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.context.languages import LanguageRegistry, LanguageSpec
from lsp_server.context.syntax import (
    Scope,
    block_end_line,
    cut_lines,
    editable_region,
    enclosing_scopes,
)
from lsp_server.context.trees import DocumentTree

DATA = Path(__file__).parent.parent / "data" / "context"
REGISTRY = LanguageRegistry()


def _doc(name: str, text: str) -> DocumentTree:
    spec = REGISTRY.get(name)
    assert spec is not None
    return DocumentTree(spec, text)


def _sample(name: str, file: str) -> DocumentTree:
    return _doc(name, (DATA / file).read_text(encoding="utf-8"))


def _at(doc: DocumentTree, marker: str, delta: int = 0) -> int:
    """Byte offset of `marker` in the document (plus `delta` characters)."""
    return doc.byte_offset(doc.text.index(marker) + delta)


def _line_of(doc: DocumentTree, marker: str) -> int:
    return doc.text[:doc.text.index(marker)].count("\n")


def _scopes(doc: DocumentTree, byte: int) -> list[tuple[str, str | None]]:
    return [(s.kind, s.name) for s in enclosing_scopes(doc.spec, doc.tree, byte)]


def test_enclosing_scopes_inside_a_method() -> None:
    doc = _sample("python", "sample.py")
    scopes = enclosing_scopes(doc.spec, doc.tree, _at(doc, "self.items.popitem"))
    assert scopes == [
        Scope(kind="class_definition", name="Cache", start_line=18, end_line=32,
              start_byte=_at(doc, "class Cache"), end_byte=scopes[0].end_byte,
              header="class Cache(Base):"),
        Scope(kind="function_definition", name="put", start_line=29, end_line=32,
              start_byte=_at(doc, "def put"), end_byte=scopes[1].end_byte,
              header="def put(self, key: str, value: int) -> None:"),
    ]
    assert _scopes(doc, _at(doc, "MAX_ITEMS = 10")) == []


@pytest.mark.parametrize(("name", "file", "marker", "expected"), [
    ("javascript", "sample.js", "this.items.clear()",
     [("class_declaration", "Cache"), ("method_definition", "put")]),
    ("typescript", "sample.ts", "cache.put(",
     [("internal_module", "Util"), ("function_declaration", "main")]),
    ("rust", "sample.rs", "self.items.clear()",
     [("impl_item", "Cache"), ("function_item", "put")]),
    ("go", "sample.go", "total += v", [("function_declaration", "helper")]),
    ("java", "sample.java", "items.clear()",
     [("class_declaration", "Cache"), ("method_declaration", "put")]),
    ("c", "sample.c", "total += values", [("function_definition", "helper")]),
    ("cpp", "sample.cpp", "items_.clear()",
     [("namespace_definition", "store"), ("class_specifier", "Cache"),
      ("function_definition", "put")]),
    ("cpp", "sample.cpp", "auto it",
     [("namespace_definition", "store"), ("function_definition", "Cache::get")]),
])
def test_enclosing_scopes_in_each_language(
    name: str, file: str, marker: str, expected: list[tuple[str, str]],
) -> None:
    doc = _sample(name, file)
    assert _scopes(doc, _at(doc, marker)) == expected


def test_scopes_headers() -> None:
    doc = _sample("rust", "sample.rs")
    headers = [s.header for s in enclosing_scopes(doc.spec, doc.tree, _at(doc, "copied()"))]
    assert headers == ["impl Store for Cache {", "fn get(&self, key: &str) -> Option<i64> {"]
    doc = _doc("javascript", "const add = (a, b) => {\n  return a + b;\n};\n")
    [scope] = enclosing_scopes(doc.spec, doc.tree, _at(doc, "return"))
    assert (scope.kind, scope.name, scope.header) == ("arrow_function", "add", "(a, b) => {")


def test_python_blank_lines_belong_to_the_block_by_indentation() -> None:
    doc = _doc("python", "def f():\n    x = 1\n    \n\ndef g():\n    pass\n")
    assert _scopes(doc, _at(doc, "x = 1", 6 + 4)) == [("function_definition", "f")]
    assert _scopes(doc, _at(doc, "def g", -1)) == []
    assert block_end_line(doc.spec, doc.tree, _at(doc, "x = 1", 6 + 4)) == 2


def test_cut_lines_contain_definition_starts() -> None:
    doc = _sample("python", "sample.py")
    lines = cut_lines(doc.spec, doc.tree)
    assert lines == sorted(set(lines))
    for marker in ("import os", "MAX_ITEMS", "def helper", "class Base", "class Cache",
                   "def __init__", "@property", "def put", "def main", "total = 0"):
        assert _line_of(doc, marker) in lines, marker
    # statements three levels deep are not cut points
    assert _line_of(doc, "self.items.popitem") not in lines
    assert _line_of(doc, "total += value") not in lines


@pytest.mark.parametrize(("name", "file", "inside", "too_deep"), [
    ("cpp", "sample.cpp", ["class Cache", "void put", "int Cache::get", "int main"],
     ["items_.clear"]),
    ("rust", "sample.rs", ["impl Cache", "pub fn put", "mod util", "pub fn main"],
     ["self.items.clear"]),
    ("java", "sample.java", ["public class Cache", "public void put"], ["items.clear"]),
    ("go", "sample.go", ["func (c *Cache) Put", "if len(c.items)"], ["c.items = map"]),
])
def test_cut_lines_in_other_languages(
    name: str, file: str, inside: list[str], too_deep: list[str],
) -> None:
    doc = _sample(name, file)
    lines = cut_lines(doc.spec, doc.tree)
    for marker in inside:
        assert _line_of(doc, marker) in lines, marker
    for marker in too_deep:
        assert _line_of(doc, marker) not in lines, marker


def test_editable_region_spans_a_short_function() -> None:
    doc = _sample("python", "sample.py")
    for marker in ("total = 0", "total += value", "return total"):
        assert editable_region(doc.spec, doc.tree, doc.source, _at(doc, marker)) == (7, 11)
    doc = _sample("go", "sample.go")
    assert editable_region(doc.spec, doc.tree, doc.source, _at(doc, "v, ok :=")) == (24, 27)


def _long_function(spec: LanguageSpec) -> DocumentTree:
    body = "".join(f"    value_{i} = compute({i})\n" for i in range(100))
    return DocumentTree(spec, f"import os\n\n\ndef long():\n{body}    return value_0\n")


def test_editable_region_is_bounded_in_a_long_function() -> None:
    spec = REGISTRY.get("python")
    assert spec is not None
    doc = _long_function(spec)
    cursor = _at(doc, "value_50 =")
    row = _line_of(doc, "value_50 =")
    start, end = editable_region(spec, doc.tree, doc.source, cursor, min_lines=3, max_lines=40)
    assert start <= row <= end
    assert 3 <= end - start + 1 <= 40
    start, end = editable_region(spec, doc.tree, doc.source, cursor, min_lines=2, max_lines=5)
    assert start <= row <= end and 2 <= end - start + 1 <= 5
    # the function's header line: the statement is huge, the window around it is not
    header = _at(doc, "def long")
    start, end = editable_region(spec, doc.tree, doc.source, header, max_lines=40)
    assert start == 3 and end - start + 1 == 40


def test_editable_region_grows_by_neighbours_at_the_top_level() -> None:
    doc = _doc("python", "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n")
    start, end = editable_region(doc.spec, doc.tree, doc.source, _at(doc, "c = 3"))
    assert (start, end) == (1, 3)


@pytest.mark.parametrize("text", [
    "def f(a, b):\n    x = 1\n    y = foo(((\n    return x\n\n\n",
    "fn main() {\n    let x = [1, 2\n    let y = 3;\n}\n\n\n",
])
def test_editable_region_falls_back_to_a_window_in_broken_code(text: str) -> None:
    name = "python" if text.startswith("def") else "rust"
    doc = _doc(name, text)
    assert doc.has_error
    marker = "foo(((" if name == "python" else "[1, 2"
    row = _line_of(doc, marker)
    start, end = editable_region(doc.spec, doc.tree, doc.source, _at(doc, marker, 4),
                                 min_lines=2, max_lines=40)
    assert (start, end) == (max(0, row - 2), row + 2)


def test_helpers_on_empty_and_odd_input() -> None:
    doc = _doc("python", "")
    assert enclosing_scopes(doc.spec, doc.tree, 0) == []
    assert cut_lines(doc.spec, doc.tree) == []
    assert editable_region(doc.spec, doc.tree, doc.source, 0) == (0, 0)
    assert block_end_line(doc.spec, doc.tree, 0) is None
    doc = _doc("c", "int \ud800 = {{{;\n#if X\n")
    for byte in (-5, 0, 3, len(doc.source), len(doc.source) + 10):
        enclosing_scopes(doc.spec, doc.tree, byte)
        start, end = editable_region(doc.spec, doc.tree, doc.source, byte)
        assert 0 <= start <= end <= doc.text.count("\n")
        block_end_line(doc.spec, doc.tree, byte)
    cut_lines(doc.spec, doc.tree)


def test_block_end_line() -> None:
    doc = _sample("python", "sample.py")
    assert block_end_line(doc.spec, doc.tree, _at(doc, "self.items.popitem")) == 31
    assert block_end_line(doc.spec, doc.tree, _at(doc, "self.items[key] =")) == 32
    assert block_end_line(doc.spec, doc.tree, _at(doc, "MAX_ITEMS")) is None
    doc = _sample("javascript", "sample.js")
    assert block_end_line(doc.spec, doc.tree, _at(doc, "this.items.clear")) == 27
    assert block_end_line(doc.spec, doc.tree, _at(doc, "this.items.set")) == 29
    doc = _sample("go", "sample.go")  # the closing brace, not the last statement
    assert block_end_line(doc.spec, doc.tree, _at(doc, "total := 0")) == 43
