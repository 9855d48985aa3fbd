"""Tree-sitter facts that the edit and instruction example builders share, per language.

The eight languages are the language server's (`LanguageRegistry`): python, javascript,
typescript, tsx, rust, go, java, c, cpp. Everything here reads syntax trees; no regex
decides what a name, a call or a literal is.
"""

from __future__ import annotations

import ast
import functools
import warnings
from dataclasses import dataclass

from tree_sitter import Node, Parser

from lsp_server.context.languages import LanguageRegistry, LanguageSpec
from lsp_server.context.trees import DocumentTree

LANGUAGES = ("python", "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp")
_JS = ("javascript", "typescript", "tsx")
_C = ("c", "cpp")


def _per(table: dict[tuple[str, ...] | str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for keys, values in table.items():
        for key in (keys,) if isinstance(keys, str) else keys:
            out[key] = frozenset(values)
    return out


FUNCTIONS = _per({
    "python": ("function_definition",),
    _JS: ("function_declaration", "method_definition", "function_expression",
          "arrow_function", "generator_function_declaration"),
    "rust": ("function_item",),
    "go": ("function_declaration", "method_declaration", "func_literal"),
    "java": ("method_declaration", "constructor_declaration"),
    _C: ("function_definition",),
})
CALLS = _per({"python": ("call",), _JS: ("call_expression",), "rust": ("call_expression",),
              "go": ("call_expression",), "java": ("method_invocation",),
              _C: ("call_expression",)})
STRINGS = _per({
    "python": ("string",), _JS: ("string", "template_string"),
    "rust": ("string_literal", "raw_string_literal", "char_literal"),
    "go": ("interpreted_string_literal", "raw_string_literal", "rune_literal"),
    "java": ("string_literal", "character_literal", "text_block"),
    _C: ("string_literal", "raw_string_literal", "char_literal", "concatenated_string"),
})
NUMBERS = _per({
    "python": ("integer", "float"), _JS: ("number",),
    "rust": ("integer_literal", "float_literal"), "go": ("int_literal", "float_literal"),
    "java": ("decimal_integer_literal", "decimal_floating_point_literal",
             "hex_integer_literal"),
    _C: ("number_literal",),
})
COMMENTS = _per({"python": ("comment",), _JS: ("comment",),
                 "rust": ("line_comment", "block_comment"), "go": ("comment",),
                 "java": ("line_comment", "block_comment"), _C: ("comment",)})
# Where a name is bound: (parent type, field of the name or "" for any child).
_DEFINITIONS = {
    "python": {("parameters", ""), ("default_parameter", "name"), ("typed_parameter", ""),
               ("typed_default_parameter", "name"), ("assignment", "left"),
               ("pattern_list", ""), ("for_statement", "left"),
               ("function_definition", "name"), ("lambda_parameters", ""),
               ("as_pattern_target", "")},
    "js": {("variable_declarator", "name"), ("formal_parameters", ""),
           ("required_parameter", "pattern"), ("optional_parameter", "pattern"),
           ("assignment_pattern", "left"), ("function_declaration", "name"),
           ("arrow_function", "parameter"), ("for_in_statement", "left")},
    "rust": {("let_declaration", "pattern"), ("parameter", "pattern"),
             ("function_item", "name"), ("for_expression", "pattern"),
             ("closure_parameters", ""), ("tuple_pattern", "")},
    "go": {("var_spec", "name"), ("const_spec", "name"), ("parameter_declaration", "name"),
           ("function_declaration", "name")},
    "java": {("variable_declarator", "name"), ("formal_parameter", "name"),
             ("method_declaration", "name"), ("enhanced_for_statement", "name"),
             ("catch_formal_parameter", "name")},
    "c": {("init_declarator", "declarator"), ("declaration", "declarator"),
          ("parameter_declaration", "declarator"), ("pointer_declarator", "declarator"),
          ("reference_declarator", ""), ("array_declarator", "declarator"),
          ("function_declarator", "declarator")},
}
# Identifier positions that are not a reference to a variable (a member, a keyword name).
_NOT_NAMES = {"python": {("attribute", "attribute"), ("keyword_argument", "name")},
              "java": {("field_access", "field")}, "cpp": {("qualified_identifier", "name")}}
# Shorthands that a rename would have to expand (`{x}` in JavaScript, `S { x }` in Rust).
SHORTHANDS = frozenset({"shorthand_property_identifier", "shorthand_property_identifier_pattern",
                        "shorthand_field_initializer", "shorthand_field_identifier"})


def family(language: str) -> str:
    return "js" if language in _JS else "c" if language in _C else language


@functools.cache
def default_syntax() -> Syntax:
    """One `Syntax` per process: the grammars and query are loaded once (read-only after)."""
    return Syntax(LanguageRegistry())


class Syntax:
    """Parsers by language name, over one `LanguageRegistry` (one thread per instance)."""

    def __init__(self, registry: LanguageRegistry) -> None:
        self.registry = registry

    def spec(self, language: str) -> LanguageSpec | None:
        return self.registry.get(language)

    def parser(self, language: str) -> Parser | None:
        spec = self.spec(language)
        return self.registry.parser(spec) if spec is not None else None

    def parse(self, language: str, text: str) -> Parsed | None:
        spec = self.spec(language)
        if spec is None:
            return None
        parser = self.registry.parser(spec)
        return Parsed(language, spec, parser, DocumentTree(spec, text, parser))

    def parses(self, language: str, text: str) -> bool:
        """No ERROR or MISSING node anywhere; Python must also pass `ast.parse`."""
        parsed = self.parse(language, text)
        return parsed is not None and parsed.ok


@dataclass(frozen=True)
class Parsed:
    language: str
    spec: LanguageSpec
    parser: Parser
    doc: DocumentTree

    @property
    def text(self) -> str:
        return self.doc.text

    @property
    def root(self) -> Node:
        return self.doc.tree.root_node

    @functools.cached_property
    def ok(self) -> bool:
        if self.root.has_error:
            return False
        if self.language != "python":
            return True
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes in sample code
                ast.parse(self.text)
        except (SyntaxError, ValueError):
            return False
        return True

    @functools.cached_property
    def error_share(self) -> float:
        """The share of the source's bytes inside ERROR nodes."""
        size, stack = 0, [self.root]
        while stack:  # down the nodes that hold an error only
            node = stack.pop()
            if node.is_error:
                size += node.end_byte - node.start_byte
            else:
                stack.extend(c for c in node.children if c.has_error)
        return size / max(1, len(self.doc.source))

    def start(self, node: Node) -> int:
        return self.doc.char_offset(node.start_byte)

    def end(self, node: Node) -> int:
        return self.doc.char_offset(node.end_byte)

    def text_of(self, node: Node | None) -> str:
        if node is None:
            return ""
        return self.doc.source[node.start_byte:node.end_byte].decode("utf-8", "surrogatepass")

    @functools.cached_property
    def _by_type(self) -> dict[str, list[Node]]:
        """Every node by type, each list in document order (preorder)."""
        out: dict[str, list[Node]] = {}
        cursor = self.root.walk()
        while True:
            node = cursor.node
            assert node is not None
            out.setdefault(node.type, []).append(node)
            # what an ERROR node holds is not what it seems: no kind builds on it
            if not node.is_error and cursor.goto_first_child():
                continue
            while not cursor.goto_next_sibling():
                if not cursor.goto_parent():
                    return out

    def nodes(self, types: frozenset[str] | None = None, under: Node | None = None
              ) -> list[Node]:
        """Nodes of `types` (default: all) under `under` (default: the root), in document
        order; none inside an ERROR node."""
        keys = self._by_type.keys() if types is None else types
        found = [n for key in keys for n in self._by_type.get(key, ())]
        if under is not None:
            lo, hi = under.start_byte, under.end_byte
            found = [n for n in found if lo <= n.start_byte and n.end_byte <= hi]
        if types is None or len(types) > 1:
            found.sort(key=lambda n: (n.start_byte, -n.end_byte))
        return found

    def within(self, node: Node, start: int, end: int) -> bool:
        """Is the node inside characters [start, end)?"""
        return start <= self.start(node) and self.end(node) <= end

    # -- names -----------------------------------------------------------------------

    def is_name(self, node: Node) -> bool:
        """An identifier that refers to a variable or function (not a member or keyword)."""
        if node.type != "identifier" or node.parent is None:
            return False
        parent = node.parent
        field = _field_of(node)
        if (parent.type, field) in _NOT_NAMES.get(self.language, ()):
            return False
        if self.language == "java" and parent.type == "method_invocation" and field == "name":
            obj = parent.child_by_field_name("object")
            return obj is None or obj.type == "this"
        if self.language == "go" and parent.type == "literal_element":
            return _field_of(parent) != "key"
        return True

    def is_definition(self, node: Node) -> bool:
        parent = node.parent
        if parent is None:
            return False
        if self.language == "go" and parent.type == "expression_list":
            outer = parent.parent
            return outer is not None and outer.type in ("short_var_declaration",
                                                        "range_clause") \
                and _field_of(parent) == "left"
        rules = _DEFINITIONS[family(self.language)]
        return (parent.type, "") in rules or (parent.type, _field_of(node)) in rules

    @functools.cached_property
    def _names(self) -> dict[str, list[Node]]:
        """Identifier text -> the identifiers that are names (`is_name`), in order."""
        out: dict[str, list[Node]] = {}
        for node in self.nodes(frozenset({"identifier"})):
            if self.is_name(node):
                out.setdefault(self.text_of(node), []).append(node)
        return out

    def names(self, name: str, under: Node | None = None) -> list[Node]:
        found = self._names.get(name, [])
        if under is None:
            return list(found)
        return [n for n in found if under.start_byte <= n.start_byte and
                n.end_byte <= under.end_byte]

    @functools.cached_property
    def _shorthands(self) -> frozenset[str]:
        out = {self.text_of(node) for node in self.nodes(SHORTHANDS)}
        if self.language == "rust":  # inline format arguments: "{name}", "{name:>4}"
            for node in self.nodes(STRINGS["rust"]):
                for part in self.text_of(node).split("{")[1:]:
                    name = part.split("}")[0].split(":")[0]
                    if name.isidentifier():
                        out.add(name)
        return frozenset(out)

    def has_shorthand(self, name: str) -> bool:
        """Does `name` appear in a shorthand that a plain rename would break (`{x}` in
        JavaScript, `S { x }` in Rust), or inside a Rust format string (`{x}`)?"""
        return name in self._shorthands

    # -- functions and calls -------------------------------------------------------------

    def enclosing_function(self, node: Node) -> Node | None:
        current = node.parent
        while current is not None:
            if current.type in FUNCTIONS[self.language]:
                return current
            current = current.parent
        return None

    def function_name(self, fn: Node) -> Node | None:
        if fn.type == "arrow_function" or fn.type == "function_expression":
            parent = fn.parent
            if parent is not None and parent.type == "variable_declarator":
                return parent.child_by_field_name("name")
            return fn.child_by_field_name("name")
        if family(self.language) == "c":
            node = fn.child_by_field_name("declarator")
            while node is not None and node.type not in ("identifier", "field_identifier"):
                if node.type == "qualified_identifier":
                    node = node.child_by_field_name("name")
                    continue
                node = node.child_by_field_name("declarator")
            return node
        return fn.child_by_field_name("name")

    def parameters(self, fn: Node) -> Node | None:
        if family(self.language) == "c":
            node = fn.child_by_field_name("declarator")
            while node is not None and node.type != "function_declarator":
                node = node.child_by_field_name("declarator")
            return node.child_by_field_name("parameters") if node is not None else None
        return fn.child_by_field_name("parameters")

    def callee(self, call: Node) -> Node | None:
        """The node naming the function a call calls (the last part of `a.b.c(...)`)."""
        if self.language == "java":
            return call.child_by_field_name("name")
        fn = call.child_by_field_name("function")
        while fn is not None and fn.type == "generic_function":
            fn = fn.child_by_field_name("function")
        if fn is None:
            return None
        if fn.type in ("identifier", "field_identifier", "property_identifier"):
            return fn
        for field in ("attribute", "property", "field", "name"):
            child = fn.child_by_field_name(field)
            if child is not None and child.child_count == 0:
                return child
        return None

    def callee_key(self, call: Node) -> str:
        """The text that names the called function, object included (`self.log`)."""
        if self.language == "java":
            obj = call.child_by_field_name("object")
            return (self.text_of(obj) + "." if obj is not None else "") + \
                self.text_of(call.child_by_field_name("name"))
        return self.text_of(call.child_by_field_name("function"))

    def arguments(self, call: Node) -> Node | None:
        return call.child_by_field_name("arguments")


def _field_of(node: Node) -> str:
    parent = node.parent
    if parent is None:
        return ""
    for i, child in enumerate(parent.children):
        if child.id == node.id:
            return parent.field_name_for_child(i) or ""
    return ""


def line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def line_end(text: str, offset: int) -> int:
    """Offset after the "\\n" that ends the line holding `offset` (or the text's end)."""
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1


def indent_of(text: str, offset: int) -> str:
    start = line_start(text, offset)
    line = text[start:line_end(text, offset)]
    return line[:len(line) - len(line.lstrip(" \t"))]


def indent_unit(text: str) -> str:
    """The file's indentation step: a tab, or the smallest run of leading spaces."""
    sizes = []
    for line in text.split("\n"):
        stripped = line.lstrip(" \t")
        if not stripped:
            continue
        if line.startswith("\t"):
            return "\t"
        if line.startswith(" "):
            sizes.append(len(line) - len(stripped))
    return " " * min([s for s in sizes if s >= 2] or [4])


def words_of(name: str) -> list[str]:
    """`parsePrice`, `parse_price`, `ParsePrice` -> ["parse", "price"]."""
    out: list[str] = []
    current = ""
    for i, ch in enumerate(name):
        if ch == "_":
            if current:
                out.append(current)
            current = ""
        elif ch.isupper() and current and (not name[i - 1].isupper() or (
                i + 1 < len(name) and name[i + 1].islower())):
            out.append(current)
            current = ch
        else:
            current += ch
    if current:
        out.append(current)
    return [w.lower() for w in out]


def styled(name_like: str, words: list[str], language: str) -> str:
    """`words` joined in the naming style of `name_like` (snake, camel, Pascal, UPPER), or
    the language's usual style for local names when `name_like` is one lower-case word."""
    if name_like.isupper() and len(name_like) > 1:
        return "_".join(words).upper()
    snake = "_" in name_like.strip("_") or (
        name_like.islower() and language in ("python", "rust", "c", "cpp"))
    if snake:
        joined = "_".join(words)
        return joined.capitalize() if name_like[:1].isupper() else joined
    camel = words[0] + "".join(w.capitalize() for w in words[1:])
    return camel[:1].upper() + camel[1:] if name_like[:1].isupper() else camel

