"""Refactoring instructions planned from the syntax tree: extract a literal into a named
constant before the function, and wrap statements in error handling (try/except or
try/catch; not Go, C or Rust, where errors are values or there are no exceptions).
"""

from __future__ import annotations

import random

from edit_core import Replacement
from edit_propagation import taken
from edit_syntax import (
    COMMENTS,
    NUMBERS,
    STRINGS,
    Parsed,
    indent_of,
    indent_unit,
    line_end,
    line_start,
    styled,
    words_of,
)
from instruction_plans import Plan, function_args, selection
from tree_sitter import Node

_TOP = frozenset({"module", "program", "source_file", "translation_unit"})
# Literals that cannot become a name where they are (a macro's tokens, a type, JSX...).
_NO_EXTRACT = frozenset({"token_tree", "attribute_item", "annotation", "marker_annotation",
                         "literal_type", "concatenated_string", "case_pattern",
                         "jsx_attribute", "preproc_include", "import_spec"})
_PLAIN = frozenset({"integer", "float", "number", "integer_literal", "float_literal",
                    "int_literal", "decimal_integer_literal", "decimal_floating_point_literal",
                    "hex_integer_literal", "number_literal", "string", "string_literal",
                    "interpreted_string_literal", "raw_string_literal"})
_TRIVIAL = frozenset({"0", "1", "2", "0.0", "1.0"})
_NAMED_BY = {"assignment": "left", "variable_declarator": "name", "let_declaration": "pattern",
             "init_declarator": "declarator", "keyword_argument": "name",
             "default_parameter": "name", "required_parameter": "pattern", "pair": "key",
             "short_var_declaration": "left", "var_spec": "name"}
WRAP_LANGUAGES = ("python", "javascript", "typescript", "tsx", "java", "cpp")
_HANDLERS = {
    "python": ("{i}try:\n{body}{i}except Exception as exc:\n"
               "{i}{u}raise RuntimeError(\"{name} failed\") from exc\n"),
    "js": ("{i}try {{\n{body}{i}}} catch (err) {{\n{i}{u}console.error(err);\n"
           "{i}{u}throw err;\n{i}}}\n"),
    "java": ("{i}try {{\n{body}{i}}} catch (Exception e) {{\n"
             "{i}{u}throw new RuntimeException(\"{name} failed\", e);\n{i}}}\n"),
    "cpp": ("{i}try {{\n{body}{i}}} catch (const std::exception &e) {{\n"
            "{i}{u}std::cerr << \"{name} failed: \" << e.what() << std::endl;\n"
            "{i}{u}throw;\n{i}}}\n"),
}


def _home(p: Parsed, fn: Node) -> bool:
    """Can a constant go right before this function (file level, or a Java class body)?"""
    node = fn.parent if fn.parent is not None and fn.parent.type in (
        "decorated_definition", "export_statement", "template_declaration") else fn
    parent = node.parent
    if p.language == "java":
        return parent is not None and parent.type == "class_body"
    return parent is not None and parent.type in _TOP


def _extractable(p: Parsed, node: Node, fn: Node) -> bool:
    text = p.text_of(node)
    if node.type not in _PLAIN or "\n" in text or (p.language == "rust" and
                                                   node.type != "string_literal"):
        return False
    if p.language == "python" and node.type == "string":
        if text[:1] not in ("'", '"') or text.startswith(('"""', "'''")):
            return False
        statement = node.parent
        if statement is not None and statement.type == "expression_statement":
            return False  # a docstring or a bare string
    current = node.parent
    while current is not None and current.id != fn.id:
        if current.type in _NO_EXTRACT:
            return False
        current = current.parent
    return True


def _context_words(p: Parsed, node: Node) -> list[str]:
    """Words for a constant's name from where the literal is: the name it initializes
    (`retries = 3` -> default retries), the name it is compared with (max total)."""
    parent = node.parent
    if parent is not None and parent.type == "expression_list":  # Go
        parent = parent.parent
    if parent is None:
        return []
    if parent.type in _NAMED_BY:
        named = parent.child_by_field_name(_NAMED_BY[parent.type])
        words = words_of(p.text_of(named)) if named is not None and named.id != node.id else []
        if words and all(w.isalnum() for w in words):
            return ["default", *words]
    operator = p.text_of(parent.child_by_field_name("operator"))
    if parent.type == "comparison_operator" or operator in ("<", ">", "<=", ">=", "==", "!="):
        other = [c for c in parent.named_children if c.id != node.id]
        if other and other[0].type == "identifier":
            return ["max", *words_of(p.text_of(other[0]))]
    return []


def _declaration(p: Parsed, name: str, literal: Node, indent: str) -> str:
    text, kind = p.text_of(literal), literal.type
    number = kind in NUMBERS[p.language]
    if p.language == "python":
        return f"{name} = {text}\n\n\n"
    if p.language in ("javascript", "typescript", "tsx"):
        return f"const {name} = {text};\n\n"
    if p.language == "go":
        return f"const {name} = {text}\n\n"
    if p.language == "rust":
        return f"const {name}: &str = {text};\n\n"
    if p.language == "c":
        return f"#define {name} {text}\n\n"
    if p.language == "java":
        java = ("String" if not number else "long" if text[-1] in "lL" else
                "float" if text[-1] in "fF" else
                "double" if kind == "decimal_floating_point_literal" else "int")
        return f"{indent}private static final {java} {name} = {text};\n\n"
    integral = number and not any(c in text for c in ".eEfF") or text.startswith("0x")
    cpp = "int " if integral else "double " if number else "const char *"
    return f"constexpr {cpp}{name} = {text};\n\n"


def extract_constant(rng: random.Random, p: Parsed, fn: Node) -> Plan | None:
    if not _home(p, fn):
        return None
    literals = [n for n in p.nodes(NUMBERS[p.language] | STRINGS[p.language], fn)
                if _extractable(p, n, fn)]
    by_text: dict[str, list[Node]] = {}
    for node in literals:
        by_text.setdefault(p.text_of(node), []).append(node)
    repeated = sorted(t for t, nodes in by_text.items() if len(nodes) >= 2)
    magic = sorted(t for t in by_text if t not in _TRIVIAL and len(t) >= 2)
    pool = repeated if repeated and (rng.random() < 0.7 or not magic) else magic
    if not pool:
        return None
    literal = rng.choice(pool)
    nodes = by_text[literal]
    fn_name = p.text_of(p.function_name(fn))
    if nodes[0].type in STRINGS[p.language]:
        content = "".join(c if c.isalpha() else " " for c in literal).lower().split()[:3]
        words = [*(content or words_of(fn_name)), "text"]
    else:
        words = _context_words(p, nodes[0]) or [*words_of(fn_name), "limit"]
    name = styled("aB" if p.language == "go" else "A_B", words, p.language)
    if taken(p.text, name) or not name.replace("_", "").isalnum():
        return None
    start, end = selection(p, fn)
    at = line_start(p.text, start)
    replacements: list[Replacement] = [(at, at, _declaration(p, name, nodes[0],
                                                             indent_of(p.text, start)))]
    replacements += [(p.start(n), p.end(n), name) for n in nodes]
    args = {**function_args(p, fn, start), "literal": literal, "name": name}
    return Plan("extract_constant", start, end, replacements, args,
                {"literal": literal, "name": name})


def _own_lines(p: Parsed, first: Node, last: Node) -> bool:
    text = p.text
    before = text[line_start(text, p.start(first)):p.start(first)]
    after = text[p.end(last):line_end(text, p.end(last))]
    return not before.strip() and not after.strip() and after.endswith("\n")


def _escapes(p: Parsed, chunk: list[Node], fn: Node) -> bool:
    """Does a name declared in the statements get used after them (a try block would
    end its scope)?"""
    end = chunk[-1].end_byte
    for statement in chunk:
        for node in p.nodes(frozenset({"identifier"}), statement):
            if p.is_definition(node) and any(u.start_byte >= end for u in
                                             p.names(p.text_of(node), fn)):
                return True
    return False


def wrap(rng: random.Random, p: Parsed, fn: Node) -> Plan | None:
    if p.language not in WRAP_LANGUAGES:
        return None
    body = fn.child_by_field_name("body")
    statements = [s for s in body.named_children if s.type not in COMMENTS[p.language]] \
        if body is not None else []
    if p.language == "python" and statements and statements[0].type == "expression_statement" \
            and statements[0].named_child_count and statements[0].named_children[0].type == \
            "string":
        statements = statements[1:]
    if not statements:
        return None
    size = rng.randint(1, min(3, len(statements)))
    first = rng.randrange(len(statements) - size + 1)
    chunk = statements[first:first + size]
    if any(s.type in ("function_definition", "class_definition", "decorated_definition")
           for s in chunk) or not _own_lines(p, chunk[0], chunk[-1]):
        return None
    if any("\n" in p.text_of(s) for n in chunk for s in p.nodes(STRINGS[p.language], n)):
        return None  # re-indenting would change a multi-line string
    if p.language != "python" and _escapes(p, chunk, fn):
        return None
    text = p.text
    start, end = line_start(text, p.start(chunk[0])), line_end(text, p.end(chunk[-1]))
    unit = indent_unit(text)
    lines = text[start:end].splitlines(keepends=True)
    inner = "".join(unit + line if line.strip() else line for line in lines)
    family = "js" if p.language in ("javascript", "typescript", "tsx") else p.language
    name = p.text_of(p.function_name(fn))
    new = _HANDLERS[family].format(i=indent_of(text, start), u=unit, body=inner, name=name)
    args = function_args(p, fn, p.start(chunk[0]))
    return Plan("wrap", p.start(chunk[0]), p.end(chunk[-1]), [(start, end, new)], args,
                {"name": name})
