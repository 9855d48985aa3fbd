"""LanguageRegistry: every grammar and tag query loads; detection by path and languageId."""

from __future__ import annotations

import pytest

from lsp_server.context.languages import QUERIES_DIR, LanguageRegistry

ALL = ["c", "cpp", "go", "java", "javascript", "python", "rust", "tsx", "typescript"]


@pytest.fixture(scope="module")
def registry() -> LanguageRegistry:
    return LanguageRegistry()


def test_names(registry: LanguageRegistry) -> None:
    assert registry.names() == ALL
    assert sorted(p.name for p in QUERIES_DIR.glob("*-tags.scm")) == [f"{n}-tags.scm" for n in ALL]


@pytest.mark.parametrize("name", ALL)
def test_every_query_compiles_with_the_capture_convention(
    registry: LanguageRegistry, name: str,
) -> None:
    spec = registry.get(name)
    assert spec is not None and spec.name == name
    query = spec.tags_query
    assert query.pattern_count > 0
    captures = {query.capture_name(i) for i in range(query.capture_count)}
    assert "name" in captures
    kinds = {"definition.function", "definition.method", "definition.class",
             "definition.interface", "definition.type", "definition.module",
             "definition.constant", "definition.macro", "reference.call", "reference.type",
             "reference.import", "reference.reference"}
    assert captures - {"name"} <= kinds
    assert any(c.startswith("definition.") for c in captures)
    assert any(c.startswith("reference.") for c in captures)


@pytest.mark.parametrize(("path", "name"), [
    ("a.py", "python"), ("stubs/a.pyi", "python"), ("A.PY", "python"),
    ("x.js", "javascript"), ("x.mjs", "javascript"), ("x.cjs", "javascript"),
    ("x.jsx", "javascript"), ("x.ts", "typescript"), ("x.tsx", "tsx"),
    ("src/lib.rs", "rust"), ("main.go", "go"), ("Main.java", "java"),
    ("x.c", "c"), ("x.h", "c"), ("x.hpp", "cpp"), ("x.cc", "cpp"), ("x.cpp", "cpp"),
    ("x.cxx", "cpp"), ("x.hh", "cpp"), ("X.CPP", "cpp"),
])
def test_for_path(registry: LanguageRegistry, path: str, name: str) -> None:
    spec = registry.for_path(path)
    assert spec is not None and spec.name == name


@pytest.mark.parametrize(("language_id", "name"), [
    ("python", "python"), ("javascript", "javascript"), ("javascriptreact", "javascript"),
    ("typescript", "typescript"), ("typescriptreact", "tsx"), ("rust", "rust"),
    ("go", "go"), ("java", "java"), ("c", "c"), ("cpp", "cpp"),
])
def test_for_language_id(registry: LanguageRegistry, language_id: str, name: str) -> None:
    spec = registry.for_language_id(language_id)
    assert spec is not None and spec.name == name


def test_unknown_is_none(registry: LanguageRegistry) -> None:
    assert registry.for_path("README.md") is None
    assert registry.for_path("Makefile") is None
    assert registry.for_language_id("markdown") is None
    assert registry.for_language_id("") is None
    assert registry.for_document("file:///tmp/notes.txt", "plaintext") is None
    assert registry.get("cobol") is None


def test_for_document_prefers_the_language_id(registry: LanguageRegistry) -> None:
    spec = registry.for_document("file:///w/header.h", "cpp")
    assert spec is not None and spec.name == "cpp"
    spec = registry.for_document("file:///w/My%20Dir/app.tsx")
    assert spec is not None and spec.name == "tsx"
    spec = registry.for_document("/w/app.py", "unknown-id")
    assert spec is not None and spec.name == "python"


def test_specs_and_parsers_are_cached_per_registry(registry: LanguageRegistry) -> None:
    spec = registry.for_path("a.py")
    assert spec is registry.for_language_id("python")
    assert spec is not None
    assert registry.parser(spec) is registry.parser(spec)
    assert LanguageRegistry().parser(spec) is not registry.parser(spec)


def test_scope_and_block_types_are_node_types_of_the_grammar(registry: LanguageRegistry) -> None:
    for name in ALL:
        spec = registry.get(name)
        assert spec is not None
        for node_type in spec.scope_types | spec.block_types | spec.transparent_types:
            assert spec.language.id_for_node_kind(node_type, True) is not None, (name, node_type)
