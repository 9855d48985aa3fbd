"""DocumentTree: random edit sequences keep the text, offsets and tree in step."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tree_sitter import Parser, Tree

from lsp_server.context import trees
from lsp_server.context.languages import LanguageRegistry, LanguageSpec
from lsp_server.context.trees import DocumentTree

DATA = Path(__file__).parent.parent / "data" / "context"
SAMPLES = {"python": "sample.py", "javascript": "sample.js", "typescript": "sample.ts",
           "tsx": "sample.tsx", "rust": "sample.rs", "go": "sample.go",
           "java": "sample.java", "c": "sample.c", "cpp": "sample.cpp"}
PIECES = ["é", "→", "𝄞", "\n", "\n    ", "(", ")", "{", "}", "[", "]", ";", ":", ",", "x",
          "foo", " ", "\t", '"', "'", "/*", "*/", "#", "//", "def ", "fn ", "return 1;\n"]

REGISTRY = LanguageRegistry()

# one edit: (where, as a fraction of the text; how many characters it removes; what it inserts)
edit_strategy = st.tuples(
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from([0, 0, 0, 1, 1, 2, 3, 7, 30]),
    st.lists(st.sampled_from(PIECES), max_size=4).map("".join),
)


def _spec(name: str) -> LanguageSpec:
    spec = REGISTRY.get(name)
    assert spec is not None
    return spec


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _point(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset), len(_utf8(text[line_start:offset]))


class NaiveTree:
    """The same incremental parse with every offset computed the slow, obvious way."""

    def __init__(self, spec: LanguageSpec, text: str) -> None:
        self.parser = Parser(spec.language)
        self.text = text
        self.tree: Tree = self.parser.parse(_utf8(text))

    def apply_edit(self, start: int, removed: str, inserted: str) -> None:
        old, new = self.text, self.text[:start] + inserted + self.text[start + len(removed):]
        start_byte = len(_utf8(old[:start]))
        self.tree.edit(
            start_byte=start_byte,
            old_end_byte=start_byte + len(_utf8(removed)),
            new_end_byte=start_byte + len(_utf8(inserted)),
            start_point=_point(old, start),
            old_end_point=_point(old, start + len(removed)),
            new_end_point=_point(new, start + len(inserted)),
        )
        self.text = new
        self.tree = self.parser.parse(_utf8(new), self.tree)


def _run(name: str, text: str, edits: list[tuple[float, int, str]]) -> None:
    spec = _spec(name)
    doc = DocumentTree(spec, text, REGISTRY.parser(spec))
    naive = NaiveTree(spec, text)
    for where, n_removed, inserted in edits:
        start = round(where * len(naive.text))
        removed = naive.text[start:start + n_removed]
        doc.apply_edit(start, removed, inserted)
        naive.apply_edit(start, removed, inserted)
        assert doc.char_count == len(naive.text)
    assert doc.text == naive.text
    assert doc.source == _utf8(naive.text)
    # Tree-sitter may recover from a syntax error differently when it reuses an old tree,
    # so a broken file is held to the same incremental parse computed independently, and a
    # file that parses cleanly to a parse from scratch.
    assert str(doc.tree.root_node) == str(naive.tree.root_node)
    fresh = Parser(spec.language).parse(doc.source)
    if not fresh.root_node.has_error:
        assert doc.matches_fresh_parse()
    for offset in sorted({0, len(naive.text), *(round(f * len(naive.text)) for f, _, _ in edits)}):
        assert doc.byte_offset(offset) == len(_utf8(naive.text[:offset]))
        assert doc.point_at(offset) == _point(naive.text, offset)
        assert doc.char_offset(doc.byte_offset(offset)) == offset


@pytest.mark.parametrize("name", ["python", "javascript", "typescript", "tsx", "rust", "go",
                                  "java", "c", "cpp"])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(edit_strategy, min_size=1, max_size=25))
def test_random_edits_keep_text_and_tree_in_step(
    name: str, edits: list[tuple[float, int, str]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tiny strides, so that the offset marks are shifted, dropped and refilled constantly
    monkeypatch.setattr(trees, "_STRIDE", 16)
    _run(name, (DATA / SAMPLES[name]).read_text(encoding="utf-8"), edits)


@settings(max_examples=30, deadline=None)
@given(text=st.lists(st.sampled_from(PIECES + ["\ud800", "\udfff", "a", "\r\n"]),
                    max_size=30).map("".join),
       edits=st.lists(edit_strategy, min_size=1, max_size=12))
def test_arbitrary_text_and_surrogates_do_not_raise(
    text: str, edits: list[tuple[float, int, str]],
) -> None:
    _run("python", text, edits)


def test_matches_a_fresh_parse_after_typing_a_function() -> None:
    spec = _spec("python")
    doc = DocumentTree(spec, "x = 1\n")
    typed = "\ndef add(a, b):\n    return a + b  # é → 𝄞\n"
    for i, ch in enumerate(typed):
        doc.apply_edit(len("x = 1\n") + i, "", ch)
    assert doc.text == "x = 1\n" + typed
    assert not doc.has_error
    assert doc.matches_fresh_parse()


def test_syntax_errors_do_not_raise() -> None:
    spec = _spec("rust")
    doc = DocumentTree(spec, "fn main() {\n    let x = 1;\n}\n")
    assert not doc.has_error
    doc.apply_edit(11, "", "((( ]] {{ 'é")
    assert doc.has_error
    doc.apply_edit(11, "((( ]] {{ 'é", "")
    assert not doc.has_error
    assert doc.matches_fresh_parse()


def test_whole_document_replacement_and_empty_edits() -> None:
    spec = _spec("go")
    doc = DocumentTree(spec, "package a\n")
    doc.apply_edit(0, "package a\n", "package b\n\nfunc F() {}\n")
    doc.apply_edit(3, "", "")
    assert doc.text == "package b\n\nfunc F() {}\n"
    assert doc.matches_fresh_parse()
    doc.apply_edit(0, doc.text, "")
    assert doc.text == "" and doc.source == b""


def test_offsets_with_non_ascii_text() -> None:
    doc = DocumentTree(_spec("python"), "é = '→'\ns = '𝄞'\n")
    assert doc.byte_offset(1) == 2
    assert doc.byte_offset(8) == len("é = '→'\n".encode())
    assert doc.point_at(9) == (1, 1)
    assert doc.point_at(13) == (1, 5)
    assert doc.char_offset(len("é = '→'\ns = '𝄞".encode())) == 14
    assert doc.char_offset(1) == 0  # inside "é": that character's start
    assert doc.byte_offset(10_000) == len(doc.source)


def test_an_edit_that_does_not_fit_is_refused() -> None:
    doc = DocumentTree(_spec("c"), "int x;\n")
    with pytest.raises(ValueError):
        doc.apply_edit(0, "long", "short")
    with pytest.raises(ValueError):
        doc.apply_edit(6, "\n\n", "")
    with pytest.raises(ValueError):
        doc.apply_edit(-1, "", "x")
    assert doc.text == "int x;\n"


def test_default_parser() -> None:
    doc = DocumentTree(_spec("java"), "class A {}\n")
    doc.apply_edit(6, "A", "B")
    assert doc.text == "class B {}\n" and doc.matches_fresh_parse()


def test_a_tree_taken_before_an_edit_is_left_as_it_was() -> None:
    doc = DocumentTree(_spec("python"), "x = 1\n")
    tree, source = doc.tree, doc.source
    doc.apply_edit(0, "", "def f():\n    pass\n")
    assert tree.root_node.end_byte == len(source) == 6
    assert str(tree.root_node) == (
        "(module (expression_statement (assignment left: (identifier) right: (integer))))")
    assert doc.tree is not tree and doc.source == b"def f():\n    pass\nx = 1\n"
