"""What an instruction edit changes, planned from the syntax tree: documentation, type hints,
a rename and f-strings (extract a constant and error handling are in
instruction_refactors.py). A plan names the selection and the replacements that carry out
the instruction; instruction_examples.py turns it into a checked example.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field

from edit_conversions import python_fstrings
from edit_core import Replacement
from edit_propagation import new_name, rename_candidates
from edit_syntax import COMMENTS, FUNCTIONS, Parsed, indent_of, line_start, words_of
from instruction_checks import doc_comment_above, python_return_type
from tree_sitter import Node

_ANONYMOUS = frozenset({"arrow_function", "function_expression", "func_literal"})
_WRAPPERS = frozenset({"decorated_definition", "export_statement", "template_declaration"})
_VERBS = {"parse": "parses", "add": "adds", "remove": "removes", "get": "gets",
          "set": "sets", "load": "loads", "save": "saves", "compute": "computes",
          "check": "checks", "build": "builds", "make": "makes", "create": "creates",
          "update": "updates", "find": "finds", "read": "reads", "write": "writes",
          "format": "formats", "render": "renders", "describe": "describes",
          "validate": "validates", "handle": "handles", "process": "processes",
          "convert": "converts", "reset": "resets", "send": "sends", "run": "runs",
          "apply": "applies", "count": "counts", "clear": "clears", "close": "closes",
          "open": "opens", "print": "prints", "checkout": "checks out", "init": "initializes"}
_IMPERATIVE = {"init": "initialize", "checkout": "check out"}


@dataclass(frozen=True)
class Plan:
    """Select characters [start, end) (extended to whole lines) and make `replacements`;
    `args` go to check_instruction, `values` fill the instruction's phrasing."""

    kind: str
    start: int
    end: int
    replacements: list[Replacement]
    args: dict[str, str | int]
    values: dict[str, str] = field(default_factory=dict)
    satisfied: bool = False


def named_functions(p: Parsed) -> list[Node]:
    return [fn for fn in p.nodes(FUNCTIONS[p.language])
            if fn.type not in _ANONYMOUS and p.function_name(fn) is not None
            and fn.end_point[0] > fn.start_point[0]]


def selection(p: Parsed, fn: Node) -> tuple[int, int]:
    """The function with its decorators, attributes, `export` or `template` head."""
    node = fn.parent if fn.parent is not None and fn.parent.type in _WRAPPERS else fn
    start = p.start(node)
    previous = node.prev_named_sibling
    while p.language == "rust" and previous is not None and previous.type == "attribute_item":
        start, previous = p.start(previous), previous.prev_named_sibling
    return start, p.end(node)


def function_args(p: Parsed, fn: Node, start: int) -> dict[str, str | int]:
    return {"name": p.text_of(p.function_name(fn)), "line": p.text.count("\n", 0, start)}


def parameter_names(p: Parsed, fn: Node) -> list[str]:
    params = p.parameters(fn)
    if params is None:
        return []
    names = [p.text_of(n) for n in p.nodes(frozenset({"identifier"}), params)
             if p.is_definition(n)]
    return [n for n in names if n not in ("self", "cls")]


def summary(name: str, third_person: bool) -> str:
    words = words_of(name.strip("_")) or [name]
    verb, rest = words[0], " ".join(words[1:])
    if verb in _VERBS:
        said = _VERBS[verb] if third_person else _IMPERATIVE.get(verb, verb)
        return f"{said.capitalize()} the {rest or 'value'}."
    return f"{'Returns' if third_person else 'Return'} the {' '.join(words)}."


def _doc_lines(rng: random.Random, language: str, name: str, params: list[str]) -> list[str]:
    """A documentation comment's lines (without indentation)."""
    long = bool(params) and rng.random() < 0.5
    described = [(p, f"The {' '.join(words_of(p)) or p}.") for p in params]
    if language == "rust":
        lines = [f"/// {summary(name, True)}"]
        if long:
            lines += ["///", "/// # Arguments", "///"]
            lines += [f"/// * `{p}` - {d}" for p, d in described]
        return lines
    if language == "go":
        text = summary(name, True)
        return [f"// {name} {text[0].lower()}{text[1:]}"]
    if not long and rng.random() < 0.5:
        return [f"/** {summary(name, True)} */"]
    lines = ["/**", f" * {summary(name, True)}"]
    if long:
        lines += [" *"] + [f" * @param {p} {d}" for p, d in described]
    return [*lines, " */"]


def docstring(rng: random.Random, p: Parsed, fn: Node) -> Plan | None:
    name = p.text_of(p.function_name(fn))
    if name.startswith("__") and name != "__init__":
        return None
    start, end = selection(p, fn)
    args = function_args(p, fn, start)
    params = parameter_names(p, fn)
    if p.language != "python":
        if doc_comment_above(p, int(args["line"])):
            return Plan("docstring", start, end, [], args, {"name": name}, satisfied=True)
        indent = indent_of(p.text, start)
        at = line_start(p.text, start)
        text = "".join(f"{indent}{line}\n" for line in _doc_lines(rng, p.language, name, params))
        return Plan("docstring", start, end, [(at, at, text)], args, {"name": name})
    body = fn.child_by_field_name("body")
    statements = [s for s in body.named_children if s.type != "comment"] if body else []
    if not statements or body is None or body.start_point[0] == fn.start_point[0]:
        return None
    first = statements[0]
    if first.type == "expression_statement" and first.named_child_count and \
            first.named_children[0].type == "string":
        return Plan("docstring", start, end, [], args, {"name": name}, satisfied=True)
    indent = indent_of(p.text, p.start(first))
    text = f'{indent}"""{summary(name, False)}'
    if params and rng.random() < 0.5:
        text += f"\n\n{indent}Args:\n" + "".join(
            f"{indent}    {q}: The {' '.join(words_of(q)) or q}.\n" for q in params) + indent
    at = line_start(p.text, p.start(first))
    return Plan("docstring", start, end, [(at, at, text + '"""\n')], args, {"name": name})


_PY_TYPES = {"integer": "int", "float": "float", "string": "str", "true": "bool",
             "false": "bool"}
_TS_TYPES = {"number": "number", "string": "string", "true": "boolean", "false": "boolean"}


def _literal_type(p: Parsed, node: Node | None) -> str | None:
    if node is None:
        return None
    if p.language == "python":
        if node.type == "string" and (p.text_of(node)[:1] not in ("'", '"') or
                                      any(c.type == "interpolation" for c in node.children)):
            return None
        return _PY_TYPES.get(node.type)
    return _TS_TYPES.get(node.type)


def _python_hints(p: Parsed, fn: Node, params: Node) -> tuple[list[Replacement], bool]:
    """The certain hints of a Python function, and whether it is fully annotated."""
    out: list[Replacement] = []
    complete = fn.child_by_field_name("return_type") is not None
    for i, child in enumerate(params.named_children):
        if child.type == "identifier" and i == 0 and p.text_of(child) in ("self", "cls"):
            continue
        if child.type in ("typed_parameter", "typed_default_parameter", "keyword_separator",
                          "positional_separator", "comment"):
            continue
        complete = False
        if child.type == "default_parameter":
            value = child.child_by_field_name("value")
            kind = _literal_type(p, value)
            if kind is not None:
                name = p.text_of(child.child_by_field_name("name"))
                out.append((p.start(child), p.end(child), f"{name}: {kind} = {p.text_of(value)}"))
    if fn.child_by_field_name("return_type") is None:
        try:
            tree = ast.parse(p.text)
        except SyntaxError:  # tree-sitter accepts some code that Python does not (Python 2)
            return out, False
        row = fn.start_point[0] + 1
        defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.lineno == row]
        kind = python_return_type(defs[0]) if len(defs) == 1 else None
        if kind is not None:
            out.append((p.end(params), p.end(params), f" -> {kind}"))
    return out, complete


def _ts_hints(p: Parsed, fn: Node, params: Node) -> tuple[list[Replacement], bool]:
    out: list[Replacement] = []
    complete = fn.child_by_field_name("return_type") is not None
    for child in params.named_children:
        if child.type not in ("required_parameter", "optional_parameter"):
            continue
        if child.child_by_field_name("type") is not None:
            continue
        complete = False
        pattern, value = child.child_by_field_name("pattern"), child.child_by_field_name("value")
        kind = _literal_type(p, value)
        if kind is not None and pattern is not None and pattern.type == "identifier" and \
                child.type == "required_parameter":
            out.append((p.end(pattern), p.end(pattern), f": {kind}"))
    body = fn.child_by_field_name("body")
    plain = not any(c.type in ("async", "*", "get", "set") for c in fn.children)
    if fn.child_by_field_name("return_type") is None and body is not None and plain and \
            p.text_of(p.function_name(fn)) != "constructor":
        nested = [n for n in p.nodes(FUNCTIONS[p.language], body)]
        returns = [r for r in p.nodes(frozenset({"return_statement"}), body)
                   if not any(n.start_byte <= r.start_byte < n.end_byte for n in nested)]
        stub = not [s for s in body.named_children if s.type != "comment"]
        if stub or p.nodes(frozenset({"throw_statement"}), body):
            return out, complete  # a stub, or a function that throws: not certain
        values = [r.named_children[0] if r.named_child_count else None for r in returns]
        kinds = {_literal_type(p, v) if v is not None else "void" for v in values} or {"void"}
        if len(kinds) == 1 and None not in kinds:
            out.append((p.end(params), p.end(params), f": {kinds.pop()}"))
    return out, complete


def type_hints(rng: random.Random, p: Parsed, fn: Node) -> Plan | None:
    params = p.parameters(fn)
    if params is None or fn.type not in ("function_definition", "function_declaration",
                                         "method_definition"):
        return None
    hints, complete = (_python_hints if p.language == "python" else _ts_hints)(p, fn, params)
    start, end = selection(p, fn)
    args = function_args(p, fn, start)
    values = {"name": str(args["name"])}
    if complete:
        return Plan("type_hints", start, end, [], args, values, satisfied=True)
    return Plan("type_hints", start, end, hints, args, values) if hints else None


def rename(rng: random.Random, p: Parsed, fn: Node) -> Plan | None:
    fn_name = p.function_name(fn)
    candidates = [(name, uses) for name, uses in rename_candidates(p).items()
                  if all(fn.start_byte <= u.start_byte < fn.end_byte for u in uses)
                  and not any(fn_name is not None and u.id == fn_name.id for u in uses)]
    if not candidates:
        return None
    old, uses = rng.choice(candidates)
    new = new_name(rng, old, p.language, p.text)
    if new is None:
        return None
    start, end = selection(p, fn)
    args: dict[str, str | int] = {"old": old, "new": new}
    return Plan("rename", start, end, [(p.start(u), p.end(u), new) for u in uses], args,
                {"old": old, "new": new})


def _formatting_sites(p: Parsed, fn: Node) -> int:
    """`"..." % x` and `"...".format(...)` inside the function, convertible or not."""
    count = 0
    for node in p.nodes(frozenset({"binary_operator", "call"}), fn):
        if node.type == "binary_operator":
            left = node.child_by_field_name("left")
            count += left is not None and left.type == "string" and \
                p.text_of(node.child_by_field_name("operator")) == "%"
        else:
            function = node.child_by_field_name("function")
            obj = function.child_by_field_name("object") if function is not None and \
                function.type == "attribute" else None
            count += obj is not None and obj.type == "string" and \
                p.text_of(function.child_by_field_name("attribute")) == "format"
    return count


def fstring(rng: random.Random, p: Parsed, fn: Node) -> Plan | None:
    sites = [s for s in python_fstrings(p) if p.start(fn) <= s[0] and s[1] <= p.end(fn)]
    start, end = selection(p, fn)
    args = function_args(p, fn, start)
    values = {"name": str(args["name"])}
    found = _formatting_sites(p, fn)
    if found == 0:
        has_fstring = any(p.text_of(s)[:1] in "fF" for s in p.nodes(frozenset({"string"}), fn)
                          if s.parent is None or s.parent.type not in COMMENTS["python"])
        return Plan("fstring", start, end, [], args, values, satisfied=True) \
            if has_fstring else None
    return Plan("fstring", start, end, sites, args, values) if len(sites) == found else None
