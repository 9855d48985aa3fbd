"""Which tree-sitter grammar, tag query and node types serve a document.

`LanguageRegistry` maps a path's extension or an LSP languageId to a `LanguageSpec`; an
unknown language gives None and the caller treats the document as plain text.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tree_sitter import Language, Parser, Query, QueryError

log = logging.getLogger(__name__)

QUERIES_DIR = Path(__file__).parent / "queries"

# Containers whose named children are statements, declarations or members, per grammar
# family; the syntax helpers cut and grow regions along their children.
_PY_BLOCKS = ("module", "block")
_JS_BLOCKS = ("program", "statement_block", "class_body", "switch_body")
_TS_BLOCKS = (*_JS_BLOCKS, "interface_body", "enum_body", "object_type")
_C_BLOCKS = ("translation_unit", "compound_statement", "field_declaration_list",
             "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif")
_C_TRANSPARENT = ("preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif")
_JS_SCOPES = ("function_declaration", "function_expression", "arrow_function",
              "generator_function", "generator_function_declaration", "method_definition",
              "class_declaration", "class")
_TS_SCOPES = (*_JS_SCOPES, "abstract_class_declaration", "interface_declaration",
              "enum_declaration", "internal_module", "module")
_C_SCOPES = ("function_definition", "struct_specifier", "union_specifier", "enum_specifier")


@dataclass(frozen=True)
class _Grammar:
    module: str
    function: str
    extensions: tuple[str, ...]
    language_ids: tuple[str, ...]
    scope_types: tuple[str, ...]
    block_types: tuple[str, ...]
    transparent_types: tuple[str, ...] = ()
    indentation_blocks: bool = False


_GRAMMARS: dict[str, _Grammar] = {
    "python": _Grammar(
        "tree_sitter_python", "language", (".py", ".pyi"), ("python",),
        ("function_definition", "class_definition"), _PY_BLOCKS, indentation_blocks=True),
    "javascript": _Grammar(
        "tree_sitter_javascript", "language", (".js", ".mjs", ".cjs", ".jsx"),
        ("javascript", "javascriptreact"), _JS_SCOPES, _JS_BLOCKS),
    "typescript": _Grammar(
        "tree_sitter_typescript", "language_typescript", (".ts", ".mts", ".cts"),
        ("typescript",), _TS_SCOPES, _TS_BLOCKS, ("internal_module", "module")),
    "tsx": _Grammar(
        "tree_sitter_typescript", "language_tsx", (".tsx",), ("typescriptreact",),
        _TS_SCOPES, _TS_BLOCKS, ("internal_module", "module")),
    "rust": _Grammar(
        "tree_sitter_rust", "language", (".rs",), ("rust",),
        ("function_item", "impl_item", "trait_item", "mod_item", "struct_item", "enum_item",
         "union_item", "macro_definition"),
        ("source_file", "block", "declaration_list", "field_declaration_list",
         "enum_variant_list", "match_block"),
        ("mod_item",)),
    "go": _Grammar(
        "tree_sitter_go", "language", (".go",), ("go",),
        ("function_declaration", "method_declaration", "func_literal", "type_declaration"),
        ("source_file", "block", "statement_list", "field_declaration_list", "interface_type"),
        ("statement_list",)),
    "java": _Grammar(
        "tree_sitter_java", "language", (".java",), ("java",),
        ("class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
         "annotation_type_declaration", "method_declaration", "constructor_declaration"),
        ("program", "block", "class_body", "interface_body", "enum_body_declarations",
         "constructor_body", "switch_block", "annotation_type_body")),
    "c": _Grammar(
        "tree_sitter_c", "language", (".c", ".h"), ("c",),
        _C_SCOPES, _C_BLOCKS, _C_TRANSPARENT),
    "cpp": _Grammar(
        "tree_sitter_cpp", "language", (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx"),
        ("cpp", "cuda-cpp"),
        (*_C_SCOPES, "class_specifier", "namespace_definition"),
        (*_C_BLOCKS, "declaration_list"),
        (*_C_TRANSPARENT, "namespace_definition", "linkage_specification")),
}

_BY_EXTENSION = {ext: name for name, g in _GRAMMARS.items() for ext in g.extensions}
_BY_LANGUAGE_ID = {lid: name for name, g in _GRAMMARS.items() for lid in g.language_ids}


@dataclass(frozen=True, eq=False)  # one instance per registry; compared by identity
class LanguageSpec:
    """A grammar and what the context engine knows about its node types.

    `scope_types`: nodes that enclose code and have a header worth showing (functions,
    classes, impl blocks, namespaces). `block_types`: containers whose named children are
    statements or members (the places a context may be cut). `transparent_types`: scopes
    (namespaces, preprocessor conditionals) whose bodies do not count as a level of
    nesting when cutting. `indentation_blocks`: blocks end at a dedent (Python), so blank
    space after a block still belongs to it when indented at least as far as its body.
    """

    name: str
    language: Language
    tags_query: Query
    extensions: tuple[str, ...]
    language_ids: tuple[str, ...]
    scope_types: frozenset[str]
    block_types: frozenset[str]
    transparent_types: frozenset[str]
    indentation_blocks: bool


def read_query(name: str, kind: str, queries_dir: Path = QUERIES_DIR) -> str:
    """The text of `queries/<name>-<kind>.scm`. A first line `; inherits: other` (the
    nvim-treesitter convention) puts `other`'s query of the same kind before it, so a
    dialect (TSX over TypeScript) writes only what it adds."""
    source = (queries_dir / f"{name}-{kind}.scm").read_text(encoding="utf-8")
    first = source.split("\n", 1)[0]
    if first.startswith("; inherits:"):
        parents = [p.strip() for p in first.removeprefix("; inherits:").split(",") if p.strip()]
        source = "\n".join([*(read_query(p, kind, queries_dir) for p in parents), source])
    return source


def load_spec(name: str) -> LanguageSpec:
    """Build the spec for a known language name; raises ImportError, OSError or QueryError."""
    grammar = _GRAMMARS[name]
    module = importlib.import_module(grammar.module)
    language = Language(getattr(module, grammar.function)())
    source = read_query(name, "tags")
    return LanguageSpec(
        name=name,
        language=language,
        tags_query=Query(language, source),
        extensions=grammar.extensions,
        language_ids=grammar.language_ids,
        scope_types=frozenset(grammar.scope_types),
        block_types=frozenset(grammar.block_types),
        transparent_types=frozenset(grammar.transparent_types),
        indentation_blocks=grammar.indentation_blocks,
    )


def _path_of(path_or_uri: str | Path) -> str:
    text = str(path_or_uri)
    if "://" in text:
        text = unquote(urlsplit(text).path)
    return text


class LanguageRegistry:
    """Specs and parsers by language name, created on first use.

    Cache: one `LanguageSpec` and one `Parser` per language name (at most one entry per
    supported language, so bounded); never invalidated. A grammar that fails to load is
    cached as None and logged once.
    """

    def __init__(self) -> None:
        self._specs: dict[str, LanguageSpec | None] = {}
        self._parsers: dict[str, Parser] = {}

    def names(self) -> list[str]:
        return sorted(_GRAMMARS)

    def get(self, name: str) -> LanguageSpec | None:
        if name not in _GRAMMARS:
            return None
        if name not in self._specs:
            try:
                self._specs[name] = load_spec(name)
            except (ImportError, OSError, QueryError, AttributeError, ValueError) as exc:
                log.warning("no syntax support for %s: %s", name, exc)
                self._specs[name] = None
        return self._specs[name]

    def for_path(self, path: str | Path) -> LanguageSpec | None:
        suffix = Path(_path_of(path)).suffix.lower()
        name = _BY_EXTENSION.get(suffix)
        return self.get(name) if name else None

    def for_language_id(self, language_id: str) -> LanguageSpec | None:
        name = _BY_LANGUAGE_ID.get(language_id.strip().lower())
        return self.get(name) if name else None

    def for_document(self, path_or_uri: str, language_id: str = "") -> LanguageSpec | None:
        """The languageId decides when it is known; otherwise the extension."""
        return (language_id and self.for_language_id(language_id)) or self.for_path(path_or_uri)

    def parser(self, spec: LanguageSpec) -> Parser:
        """The shared parser for `spec`'s language (not thread-safe: one thread per registry)."""
        parser = self._parsers.get(spec.name)
        if parser is None:
            parser = self._parsers[spec.name] = Parser(spec.language)
        return parser
