"""extract_tags: definitions and references of a small sample in each language."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.context.languages import LanguageRegistry
from lsp_server.context.tags import Tag, extract_tags
from lsp_server.context.trees import DocumentTree

DATA = Path(__file__).parent.parent / "data" / "context"
REGISTRY = LanguageRegistry()

D, R = True, False
EXPECTED: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {
    "python": ("sample.py", [
        ("MAX_ITEMS", "constant", D), ("helper", "function", D), ("Cache", "class", D),
        ("__init__", "method", D), ("full", "method", D), ("put", "method", D),
        ("main", "function", D), ("helper", "call", R), ("popitem", "call", R),
        ("Cache", "call", R), ("Base", "type", R), ("int", "type", R),
        ("OrderedDict", "import", R), ("defaultdict", "import", R), ("path", "import", R),
    ]),
    "javascript": ("sample.js", [
        ("LIMIT", "constant", D), ("helper", "function", D), ("square", "function", D),
        ("Cache", "class", D), ("put", "method", D), ("main", "function", D),
        ("helper", "call", R), ("Map", "call", R), ("set", "call", R), ("Base", "type", R),
        ("readFile", "import", R), ("path", "import", R),
    ]),
    "typescript": ("sample.ts", [
        ("Store", "interface", D), ("Key", "type", D), ("Color", "type", D),
        ("helper", "function", D), ("Cache", "class", D), ("get", "method", D),
        ("put", "method", D), ("Util", "module", D), ("LIMIT", "constant", D),
        ("helper", "call", R), ("Key", "type", R), ("Readable", "import", R),
    ]),
    "tsx": ("sample.tsx", [
        ("Props", "interface", D), ("Header", "function", D), ("Page", "class", D),
        ("render", "method", D), ("formatTitle", "function", D),
        ("Header", "call", R), ("formatTitle", "call", R), ("Props", "type", R),
    ]),
    "rust": ("sample.rs", [
        ("LIMIT", "constant", D), ("square", "macro", D), ("Store", "interface", D),
        ("Cache", "class", D), ("new", "method", D), ("put", "method", D),
        ("helper", "function", D), ("util", "module", D),
        ("helper", "call", R), ("insert", "call", R), ("square", "call", R),
        ("HashMap", "type", R), ("HashMap", "import", R), ("Display", "import", R),
    ]),
    "go": ("sample.go", [
        ("cache", "module", D), ("Limit", "constant", D), ("Store", "interface", D),
        ("Cache", "class", D), ("Key", "type", D), ("NewCache", "function", D),
        ("Get", "method", D), ("Put", "method", D), ("helper", "function", D),
        ("helper", "call", R), ("ToLower", "call", R), ("Cache", "type", R),
        ("fmt", "import", R),
    ]),
    "java": ("sample.java", [
        ("Store", "interface", D), ("Cache", "class", D), ("get", "method", D),
        ("put", "method", D), ("helper", "method", D), ("Color", "type", D),
        ("helper", "call", R), ("HashMap", "call", R), ("String", "type", R),
        ("Map", "import", R),
    ]),
    "c": ("sample.c", [
        ("LIMIT", "macro", D), ("SQUARE", "macro", D), ("cache", "class", D),
        ("cache_t", "type", D), ("value", "class", D), ("color", "type", D),
        ("helper", "function", D), ("cache_items", "function", D),
        ("cache_put", "function", D), ("helper", "call", R), ("printf", "call", R),
        ("cache_t", "type", R), ("cache.h", "import", R),
    ]),
    "cpp": ("sample.cpp", [
        ("store", "module", D), ("Store", "class", D), ("Entry", "class", D),
        ("Cache", "class", D), ("put", "method", D), ("helper", "method", D),
        ("get", "method", D), ("twice", "function", D), ("main", "function", D),
        ("helper", "call", R), ("twice", "call", R), ("put", "call", R),
        ("string", "type", R), ("<map>", "import", R),
    ]),
}


def _tags(name: str, file: str) -> tuple[DocumentTree, list[Tag]]:
    spec = REGISTRY.get(name)
    assert spec is not None
    doc = DocumentTree(spec, (DATA / file).read_text(encoding="utf-8"))
    return doc, extract_tags(spec, doc.tree, doc.source)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_definitions_and_references(name: str) -> None:
    file, expected = EXPECTED[name]
    doc, tags = _tags(name, file)
    found = {(t.name, t.kind, t.is_definition) for t in tags}
    missing = [e for e in expected if e not in found]
    assert not missing, f"{name}: missing {missing}"
    # sorted, one tag per name, names are the source text they point at
    assert [t.start_byte for t in tags] == sorted(t.start_byte for t in tags)
    assert len({(t.start_byte, t.end_byte) for t in tags}) == len(tags)
    for tag in tags:
        assert doc.source[tag.start_byte:tag.end_byte].decode() == tag.name
        assert tag.def_start_line <= tag.line <= tag.def_end_line
        if not tag.is_definition:
            assert tag.def_start_line == tag.def_end_line == tag.line


def test_definition_spans_and_precedence() -> None:
    _, tags = _tags("python", "sample.py")
    by_name = {(t.name, t.is_definition): t for t in tags}
    cache = by_name["Cache", True]
    assert (cache.kind, cache.line) == ("class", 18)
    assert (cache.def_start_line, cache.def_end_line) == (18, 32)
    full = by_name["full", True]  # a decorated method: its span includes the decorator
    assert (full.kind, full.line, full.def_start_line, full.def_end_line) == ("method", 26, 25, 27)
    helper = by_name["helper", True]
    assert (helper.kind, helper.def_start_line, helper.def_end_line) == ("function", 7, 11)
    # a defined name is not also reported as a reference
    _, go_tags = _tags("go", "sample.go")
    store = [t for t in go_tags if t.name == "Store" and t.line == 9]
    assert [(t.kind, t.is_definition) for t in store] == [("interface", True)]


def test_byte_range_limits_the_tags() -> None:
    spec = REGISTRY.get("python")
    assert spec is not None
    doc, all_tags = _tags("python", "sample.py")
    start = doc.byte_offset(doc.text.index("class Cache"))
    end = doc.byte_offset(doc.text.index("def main"))
    some = extract_tags(spec, doc.tree, doc.source, byte_range=(start, end))
    assert some and len(some) < len(all_tags)
    assert {t.name for t in some} >= {"Cache", "put", "popitem"}
    assert "MAX_ITEMS" not in {t.name for t in some}


def test_broken_and_non_utf8_sources_do_not_raise() -> None:
    spec = REGISTRY.get("python")
    assert spec is not None
    doc = DocumentTree(spec, "def (:\n  class \ud800:\n    foo(\n")
    tags = extract_tags(spec, doc.tree, doc.source)
    assert all(t.name for t in tags)
    doc = DocumentTree(spec, "def caf\u00e9():\n    return b\u00e9()\n")
    names = {(t.name, t.is_definition) for t in extract_tags(spec, doc.tree, doc.source)}
    assert names == {("caf\u00e9", True), ("b\u00e9", False)}
