"""Mechanical rewrites of one construct, found in the syntax tree, per language.

Each converter finds every site of its construct in a parsed document and says what the
site becomes: `x = x + y` -> `x += y`, `var` -> `let`, `==` -> `===`, `'a'` -> `"a"`,
`"%s" % x` -> `f"{x}"`, `.unwrap()` -> `?`, `NULL` -> `nullptr`, `new A<B>()` -> `new A<>()`.
A next edit shows the user converting one site; the rewrite converts its siblings.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from edit_core import Replacement
from edit_syntax import Parsed
from tree_sitter import Node

_ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "//"})
_ASSIGNMENTS = {"python": "assignment", "javascript": "assignment_expression",
                "typescript": "assignment_expression", "tsx": "assignment_expression",
                "rust": "assignment_expression", "go": "assignment_statement",
                "java": "assignment_expression", "c": "assignment_expression",
                "cpp": "assignment_expression"}
PERCENT_SPEC = re.compile(r"%(%|[-+ 0#]*\d*(?:\.\d+)?[sdirf])")
_UNSAFE_IN_FSTRING = frozenset("'\"\\{}\n#")


def _sole(node: Node | None) -> Node | None:
    """The one named child of an expression list (Go), or the node itself."""
    if node is not None and node.type == "expression_list":
        return node.named_children[0] if node.named_child_count == 1 else None
    return node


def compound_assignment(p: Parsed) -> list[Replacement]:
    out: list[Replacement] = []
    for node in p.nodes(frozenset({_ASSIGNMENTS[p.language]})):
        if p.language == "python" and (node.child_by_field_name("type") is not None or
                                       node.parent is None or
                                       node.parent.type != "expression_statement"):
            continue
        operator = node.child_by_field_name("operator")
        if operator is not None and p.text_of(operator) != "=":
            continue
        left, right = _sole(node.child_by_field_name("left")), \
            _sole(node.child_by_field_name("right"))
        if left is None or right is None or right.type not in ("binary_expression",
                                                                "binary_operator"):
            continue
        op = p.text_of(right.child_by_field_name("operator"))
        inner_left = right.child_by_field_name("left")
        operand = right.child_by_field_name("right")
        if op not in _ARITHMETIC or (op == "//" and p.language != "python") or \
                p.text_of(inner_left) != p.text_of(left) or operand is None:
            continue
        new = f"{p.text_of(left)} {op}= {p.text_of(operand)}"
        out.append((p.start(node), p.end(node), new))
    return out


def _quoted_sites(p: Parsed, types: frozenset[str]) -> list[Replacement]:
    out: list[Replacement] = []
    for node in p.nodes(types):
        text = p.text_of(node)
        prefix = text[:len(text) - len(text.lstrip("rRuUbBfF"))]
        body = text[len(prefix):]
        if len(body) < 2 or body[0] != "'" or body[-1] != "'" or body.startswith("'''"):
            continue
        if '"' in body or "\\" in body or "\n" in body:
            continue
        out.append((p.start(node), p.end(node), f'{prefix}"{body[1:-1]}"'))
    return out


def python_quotes(p: Parsed) -> list[Replacement]:
    return _quoted_sites(p, frozenset({"string"}))


def js_quotes(p: Parsed) -> list[Replacement]:
    return _quoted_sites(p, frozenset({"string"}))


def var_to_let(p: Parsed) -> list[Replacement]:
    out = []
    for node in p.nodes(frozenset({"variable_declaration"})):
        keyword = node.children[0] if node.child_count else None
        if keyword is not None and p.text_of(keyword) == "var":
            out.append((p.start(keyword), p.end(keyword), "let"))
    return out


def strict_equality(p: Parsed) -> list[Replacement]:
    out = []
    for node in p.nodes(frozenset({"binary_expression"})):
        operator = node.child_by_field_name("operator")
        if operator is not None and p.text_of(operator) in ("==", "!="):
            out.append((p.start(operator), p.end(operator), p.text_of(operator) + "="))
    return out


def _fstring_safe(expression: str) -> bool:
    return bool(expression.strip()) and not (set(expression) & _UNSAFE_IN_FSTRING)


def _plain_string(p: Parsed, node: Node | None) -> tuple[str, str] | None:
    """(quote, body) of a one-line Python string without prefix or interpolation."""
    if node is None or node.type != "string":
        return None
    text = p.text_of(node)
    quote = text[:1]
    if quote not in ("'", '"') or text.startswith(quote * 3) or "\n" in text or \
            "\\" in text or len(text) < 2:
        return None
    return quote, text[1:-1]


def percent_to_fstring(quote: str, body: str, args: list[str]) -> str | None:
    """`quote body quote % (args)` as an f-string, or None when not simple."""
    pieces, used, at = [], 0, 0
    for match in PERCENT_SPEC.finditer(body):
        pieces.append(body[at:match.start()].replace("{", "{{").replace("}", "}}"))
        at = match.end()
        spec = match.group(1)
        if spec == "%":
            pieces.append("%")
            continue
        if used >= len(args) or not _fstring_safe(args[used]):
            return None
        kind, fmt = spec[-1], spec[:-1]
        if kind == "f":
            suffix = f":{fmt}f"
        elif fmt:
            return None  # flags or a width: keep the old style
        else:
            suffix = "!r" if kind == "r" else ""
        pieces.append("{" + args[used].strip() + suffix + "}")
        used += 1
    rest = body[at:]
    if used != len(args) or "%" in rest:
        return None
    pieces.append(rest.replace("{", "{{").replace("}", "}}"))
    return f"f{quote}{''.join(pieces)}{quote}"


def format_to_fstring(quote: str, body: str, args: list[str], kwargs: dict[str, str]
                      ) -> str | None:
    """`quote body quote .format(args, kwargs)` as an f-string, or None when not simple."""
    pieces, auto = [], 0
    try:
        fields = list(string.Formatter().parse(body))
    except ValueError:
        return None
    seen_auto = seen_index = False
    for literal, field, spec, conversion in fields:
        pieces.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        if field == "":
            seen_auto, expression = True, args[auto] if auto < len(args) else None
            auto += 1
        elif field.isdigit():
            seen_index = True
            expression = args[int(field)] if int(field) < len(args) else None
        else:
            expression = kwargs.get(field)
        if expression is None or not _fstring_safe(expression) or "{" in (spec or "") \
                or (seen_auto and seen_index):
            return None
        pieces.append("{" + expression.strip() + (f"!{conversion}" if conversion else "")
                      + (f":{spec}" if spec else "") + "}")
    return f"f{quote}{''.join(pieces)}{quote}"


def python_fstrings(p: Parsed) -> list[Replacement]:
    """`"..." % args` and `"...".format(args)` sites with simple arguments."""
    out: list[Replacement] = []
    for node in p.nodes(frozenset({"binary_operator", "call"})):
        new: str | None = None
        if node.type == "binary_operator":
            string_ = _plain_string(p, node.child_by_field_name("left"))
            right = node.child_by_field_name("right")
            if string_ is None or p.text_of(node.child_by_field_name("operator")) != "%" \
                    or right is None:
                continue
            args = [p.text_of(c) for c in right.named_children] if right.type == "tuple" \
                else [p.text_of(right)]
            new = percent_to_fstring(*string_, args)
        else:
            function = node.child_by_field_name("function")
            if function is None or function.type != "attribute" or \
                    p.text_of(function.child_by_field_name("attribute")) != "format":
                continue
            string_ = _plain_string(p, function.child_by_field_name("object"))
            arguments = node.child_by_field_name("arguments")
            if string_ is None or arguments is None:
                continue
            args, kwargs = [], {}
            children = arguments.named_children
            if any(c.type in ("list_splat", "dictionary_splat", "comment") for c in children):
                continue
            for child in children:
                if child.type == "keyword_argument":
                    kwargs[p.text_of(child.child_by_field_name("name"))] = \
                        p.text_of(child.child_by_field_name("value"))
                else:
                    args.append(p.text_of(child))
            new = format_to_fstring(*string_, args, kwargs)
        if new is not None:
            out.append((p.start(node), p.end(node), new))
    return out


def _in_function_returning(p: Parsed, node: Node, prefixes: tuple[str, ...]) -> bool:
    current = node.parent
    while current is not None:
        if current.type == "closure_expression":
            return False
        if current.type == "function_item":
            returns = p.text_of(current.child_by_field_name("return_type"))
            return returns.startswith(prefixes)
        current = current.parent
    return False


def unwrap_to_question(p: Parsed) -> list[Replacement]:
    out = []
    for node in p.nodes(frozenset({"call_expression"})):
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        if function is None or function.type != "field_expression" or arguments is None or \
                p.text_of(function.child_by_field_name("field")) != "unwrap" or \
                arguments.named_child_count or \
                not _in_function_returning(p, node, ("Result", "Option")):
            continue
        value = function.child_by_field_name("value")
        out.append((p.start(node), p.end(node), p.text_of(value) + "?"))
    return out


def to_string_to_from(p: Parsed) -> list[Replacement]:
    out = []
    for node in p.nodes(frozenset({"call_expression"})):
        function = node.child_by_field_name("function")
        if function is None or function.type != "field_expression" or \
                p.text_of(function.child_by_field_name("field")) != "to_string":
            continue
        value = function.child_by_field_name("value")
        if value is not None and value.type == "string_literal":
            out.append((p.start(node), p.end(node), f"String::from({p.text_of(value)})"))
    return out


def null_to_nullptr(p: Parsed) -> list[Replacement]:
    return [(p.start(n), p.end(n), "nullptr") for n in p.nodes(frozenset({"null"}))
            if p.text_of(n) == "NULL"]


def java_diamond(p: Parsed) -> list[Replacement]:
    out = []
    for node in p.nodes(frozenset({"object_creation_expression"})):
        type_ = node.child_by_field_name("type")
        parent = node.parent
        if type_ is None or type_.type != "generic_type" or parent is None or \
                parent.type not in ("variable_declarator", "assignment_expression"):
            continue
        arguments = next((c for c in type_.children if c.type == "type_arguments"), None)
        if arguments is not None and arguments.named_child_count:
            out.append((p.start(arguments), p.end(arguments), "<>"))
    return out


def go_increment(p: Parsed) -> list[Replacement]:
    out = []
    for node in p.nodes(frozenset({"assignment_statement"})):
        operator = p.text_of(node.child_by_field_name("operator"))
        left, right = _sole(node.child_by_field_name("left")), \
            _sole(node.child_by_field_name("right"))
        if operator in ("+=", "-=") and left is not None and p.text_of(right) == "1":
            out.append((p.start(node), p.end(node), p.text_of(left) + operator[0] * 2))
    return out


@dataclass(frozen=True)
class Converter:
    name: str
    languages: tuple[str, ...]
    sites: Callable[[Parsed], list[Replacement]]


_ALL = ("python", "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp")
_JS = ("javascript", "typescript", "tsx")
CONVERTERS = (
    Converter("compound_assignment", _ALL, compound_assignment),
    Converter("python_quotes", ("python",), python_quotes),
    Converter("python_fstring", ("python",), python_fstrings),
    Converter("js_quotes", _JS, js_quotes),
    Converter("var_to_let", _JS, var_to_let),
    Converter("strict_equality", _JS, strict_equality),
    Converter("unwrap_to_question", ("rust",), unwrap_to_question),
    Converter("string_from", ("rust",), to_string_to_from),
    Converter("nullptr", ("cpp",), null_to_nullptr),
    Converter("java_diamond", ("java",), java_diamond),
    Converter("go_increment", ("go",), go_increment),
)


def converters_for(language: str) -> list[Converter]:
    return [c for c in CONVERTERS if language in c.languages]
