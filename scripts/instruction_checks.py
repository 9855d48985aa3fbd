"""Program checks of instruction edits: did the rewrite do what the instruction asked?

`check_instruction(kind, language, before, after, args)` scores a rewrite: `before` is the
document, `after` the document with the rewrite in place of the region, and `args` come
with the task (`start`: where the region starts, `tail`: how many characters follow it,
plus what the kind needs). Outside the region nothing may change, the result must parse
(tree-sitter without ERROR or MISSING nodes, and `ast.parse` for Python), and a
kind-specific structural check must pass. A task whose selection already satisfied the
instruction (`args["satisfied"]`) passes only when nothing changed.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edit_conversions import PERCENT_SPEC
from edit_syntax import COMMENTS, STRINGS, Parsed, Syntax, default_syntax
from tree_sitter import Node

from lsp_server.edit_gates import parses

Args = Mapping[str, str | int]
TRY_TYPES = frozenset({"try_statement"})
HANDLERS = frozenset({"except_clause", "catch_clause"})


@dataclass(frozen=True)
class Pair:
    """The document before and after, and the region in each (character offsets)."""

    before: Parsed
    after: Parsed
    start: int
    before_end: int
    after_end: int


def tokens(p: Parsed, start: int, end: int, skip: frozenset[str] = frozenset()) -> list[str]:
    """Leaf texts of the syntax tree within characters [start, end), a string literal as one
    token; comments and subtrees of the `skip` types left out."""
    lo, hi = p.doc.byte_offset(start), p.doc.byte_offset(end)
    whole = STRINGS[p.language] | {"preproc_arg"}
    leave_out = COMMENTS[p.language] | skip
    out: list[str] = []
    stack = [p.root]
    while stack:
        node = stack.pop()
        if node.end_byte <= lo or node.start_byte >= hi or node.type in leave_out:
            continue
        if node.type in whole or node.child_count == 0:
            if lo <= node.start_byte and node.end_byte <= hi:
                text = p.text_of(node).strip()
                if text:
                    out.append(text)
            continue
        stack.extend(reversed(node.children))
    return out


def _function_at(p: Parsed, name: str, line: int) -> Node | None:
    """The first function named `name` that starts at or below 0-based `line`."""
    found = [fn for fn in p.nodes(frozenset({"function_declaration", "method_definition"}))
             if fn.start_point[0] >= line and p.text_of(p.function_name(fn)) == name]
    return min(found, key=lambda fn: fn.start_byte, default=None)


# -- Python (ast) --------------------------------------------------------------------------

def _py_function(tree: ast.Module, name: str, line: int) -> ast.FunctionDef | None:
    """The first function named `name` whose `def` is at or below 0-based `line`."""
    found = [node for node in ast.walk(tree)
             if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
             and node.name == name and node.lineno >= line + 1]
    return min(found, key=lambda node: node.lineno, default=None)  # type: ignore[arg-type]


def _py_trees(pair: Pair, args: Args) -> tuple[ast.Module, ast.Module,
                                                 ast.FunctionDef, ast.FunctionDef] | None:
    tb, ta = ast.parse(pair.before.text), ast.parse(pair.after.text)
    fb = _py_function(tb, str(args["name"]), int(args["line"]))
    fa = _py_function(ta, str(args["name"]), int(args["line"]))
    return None if fb is None or fa is None else (tb, ta, fb, fa)


def _literal_type(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and type(node.value) in (bool, int, float, str):
        return type(node.value).__name__
    return None


def _own_nodes(fn: ast.AST) -> list[ast.AST]:
    """Nodes of a function's body, nested functions and classes left out."""
    out: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda |
                          ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))
    return out


def python_return_type(fn: ast.FunctionDef) -> str | None:
    """The return type that is certain: None without a returned value (and no yield), the
    literal type when every return returns a literal of one type."""
    own = _own_nodes(fn)
    if any(isinstance(n, ast.Yield | ast.YieldFrom | ast.Await | ast.Raise) for n in own):
        return None  # a generator, a coroutine, or a stub that raises: not certain
    if all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and
                                       isinstance(s.value, ast.Constant)) for s in fn.body):
        return None  # a stub (`...`, `pass`, a docstring)
    returns = [n for n in own if isinstance(n, ast.Return)]
    if all(r.value is None for r in returns):
        return "None"
    types = {_literal_type(r.value) for r in returns}
    return types.pop() if len(types) == 1 and None not in types else None


def _py_docstring(pair: Pair, args: Args) -> bool:
    trees = _py_trees(pair, args)
    if trees is None:
        return False
    tb, ta, fb, fa = trees
    if ast.get_docstring(fb) is not None or not (ast.get_docstring(fa) or "").strip():
        return False
    fa.body = fa.body[1:]
    return ast.dump(tb) == ast.dump(ta)


def _py_type_hints(pair: Pair, args: Args) -> bool:
    trees = _py_trees(pair, args)
    if trees is None:
        return False
    tb, ta, fb, fa = trees
    params_b = [*fb.args.posonlyargs, *fb.args.args, *fb.args.kwonlyargs]
    params_a = [*fa.args.posonlyargs, *fa.args.args, *fa.args.kwonlyargs]
    defaults = dict(zip([a.arg for a in [*fb.args.posonlyargs, *fb.args.args]][::-1],
                        fb.args.defaults[::-1], strict=False))
    defaults.update({a.arg: d for a, d in zip(fb.args.kwonlyargs, fb.args.kw_defaults,
                                              strict=True) if d is not None})
    added = 0
    for old, new in zip(params_b, params_a, strict=False):
        if old.annotation is not None:
            if new.annotation is None or ast.dump(old.annotation) != ast.dump(new.annotation):
                return False
        elif new.annotation is not None:
            added += 1
            certain = _literal_type(defaults.get(old.arg))
            if certain is not None and ast.unparse(new.annotation) != certain:
                return False
    if fb.returns is None and fa.returns is not None:
        added += 1
        certain = python_return_type(fb)
        if certain is not None and ast.unparse(fa.returns) != certain:
            return False
    elif fb.returns is not None and (fa.returns is None or
                                     ast.dump(fb.returns) != ast.dump(fa.returns)):
        return False
    for fn in (fb, fa):
        fn.returns = None
        for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs):
            a.annotation = None
    return added > 0 and ast.dump(tb) == ast.dump(ta)


class _Formats(ast.NodeTransformer):
    """Every string formatting as `__fmt__((literal chunks), *values)`: the same for an
    f-string and the `%` or `.format` it replaced."""

    def __init__(self) -> None:
        self.found = 0

    @staticmethod
    def _call(chunks: list[str], values: list[ast.expr]) -> ast.Call:
        return ast.Call(ast.Name("__fmt__", ast.Load()),
                        [ast.Constant(tuple(chunks)), *values], [])

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        self.found += 1
        chunks, values, current = [], [], ""
        for part in node.values:
            if isinstance(part, ast.Constant):
                current += str(part.value)
            elif isinstance(part, ast.FormattedValue):
                chunks.append(current)
                values.append(self.visit(part.value))
                current = ""
        return self._call([*chunks, current], values)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not (isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)
                and isinstance(node.left.value, str)):
            return node
        values = list(node.right.elts) if isinstance(node.right, ast.Tuple) else [node.right]
        chunks, at = [], 0
        current = ""
        for match in PERCENT_SPEC.finditer(node.left.value):
            current += node.left.value[at:match.start()]
            at = match.end()
            if match.group(1) == "%":
                current += "%"
            else:
                chunks.append(current)
                current = ""
        return self._call([*chunks, current + node.left.value[at:]], values)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        fn = node.func
        if not (isinstance(fn, ast.Attribute) and fn.attr == "format" and
                isinstance(fn.value, ast.Constant) and isinstance(fn.value.value, str)):
            return node
        keywords = {k.arg: k.value for k in node.keywords}
        chunks, values, current, auto = [], [], "", 0
        try:
            for literal, field, _, _ in string.Formatter().parse(fn.value.value):
                current += literal
                if field is None:
                    continue
                if field == "":
                    values.append(node.args[auto])
                    auto += 1
                else:
                    values.append(node.args[int(field)] if field.isdigit()
                                  else keywords[field])
                chunks.append(current)
                current = ""
        except (ValueError, IndexError, KeyError):
            return node
        return self._call([*chunks, current], values)


def _py_fstring(pair: Pair, args: Args) -> bool:
    first = pair.after.text.count("\n", 0, pair.start) + 1
    last = pair.after.text.count("\n", 0, pair.after_end) + 1
    after_tree = ast.parse(pair.after.text)
    for node in ast.walk(after_tree):
        if not first <= getattr(node, "lineno", 0) <= last:
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and \
                isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            return False
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "format" and isinstance(node.func.value, ast.Constant):
            return False
    after_formats, before_formats = _Formats(), _Formats()
    after = after_formats.visit(after_tree)
    before = before_formats.visit(ast.parse(pair.before.text))
    return after_formats.found > 0 and ast.dump(after) == ast.dump(before)


# -- any language (tree-sitter) --------------------------------------------------------------

def doc_comment_above(p: Parsed, line: int) -> bool:
    """Does a comment end just above 0-based `line` (a doc comment already there)? A Rust
    line comment ends at the start of the next line."""
    return any(c.start_point[0] < line and (
        c.end_point[0] == line - 1 or (c.end_point[0] == line and c.end_point[1] == 0))
        for c in p.nodes(COMMENTS[p.language]))


def _comment_docstring(pair: Pair, args: Args) -> bool:
    before = pair.before.text.split("\n")
    after = pair.after.text.split("\n")
    line, name = int(args["line"]), str(args["name"])
    added = len(after) - len(before)
    if added < 1 or after[:line] != before[:line] or after[line + added:] != before[line:]:
        return False
    lines = [x.strip() for x in after[line:line + added]]
    language = pair.before.language
    if language == "rust":
        ok = all(x.startswith("///") for x in lines)
    elif language == "go":
        ok = all(x.startswith("//") for x in lines) and lines[0][2:].strip().startswith(
            name + " ")
    else:
        block = lines[0].startswith("/**") and lines[-1].endswith("*/")
        ok = block or (language in ("c", "cpp") and all(x.startswith("///") for x in lines))
    words = " ".join(lines).replace("/", " ").replace("*", " ").split()
    return ok and len(words) >= 2 and not doc_comment_above(pair.before, line)


_TS_LITERALS = {"number": "number", "string": "string", "true": "boolean", "false": "boolean"}


def _ts_parameter_types(p: Parsed, fn: Node) -> dict[str, tuple[str | None, str | None]]:
    """Parameter name -> (its type annotation, the type of its literal default)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    params = p.parameters(fn)
    for child in params.named_children if params is not None else []:
        pattern, value = child.child_by_field_name("pattern"), child.child_by_field_name("value")
        annotation = child.child_by_field_name("type")
        if pattern is not None:
            out[p.text_of(pattern)] = (
                p.text_of(annotation).lstrip(":").strip() if annotation is not None else None,
                _TS_LITERALS.get(value.type) if value is not None else None)
    return out


def _ts_type_hints(pair: Pair, args: Args) -> bool:
    fb = _function_at(pair.before, str(args["name"]), int(args["line"]))
    fa = _function_at(pair.after, str(args["name"]), int(args["line"]))
    if fb is None or fa is None:
        return False
    skip = frozenset({"type_annotation"})
    same = tokens(pair.before, pair.before.start(fb), pair.before.end(fb), skip) == \
        tokens(pair.after, pair.after.start(fa), pair.after.end(fa), skip)
    types = frozenset({"type_annotation"})
    before, after = _ts_parameter_types(pair.before, fb), _ts_parameter_types(pair.after, fa)
    for name, (annotation, literal) in before.items():
        new = after.get(name, (None, None))[0]
        if (annotation is not None and new != annotation) or \
                (annotation is None and new is not None and literal not in (None, new)):
            return False  # an annotation changed, or contradicts the literal default
    return same and len(pair.after.nodes(types, fa)) > len(pair.before.nodes(types, fb))


def _rename(pair: Pair, args: Args) -> bool:
    old, new = str(args["old"]), str(args["new"])
    before = tokens(pair.before, pair.start, pair.before_end)
    after = tokens(pair.after, pair.start, pair.after_end)
    return old in before and [new if t == old else t for t in before] == after


def _extract_constant(pair: Pair, args: Args) -> bool:
    literal, name = str(args["literal"]), str(args["name"])
    before = tokens(pair.before, pair.start, pair.before_end)
    after = tokens(pair.after, pair.start, pair.after_end)
    expected = [name if t == literal else t for t in before]
    cut = len(after) - len(expected)
    if literal not in before or cut < 2 or after[cut:] != expected:
        return False
    declaration = after[:cut]
    return declaration.count(name) == 1 and declaration.count(literal) == 1


def _wrap(pair: Pair, args: Args) -> bool:
    p = pair.after
    expected = tokens(pair.before, pair.start, pair.before_end)
    for node in p.nodes(TRY_TYPES):
        if not p.within(node, pair.start, pair.after_end) or \
                not any(c.type in HANDLERS for c in node.children):
            continue
        body = node.child_by_field_name("body")
        if body is None:
            continue
        inner = [t for s in body.named_children if s.type not in COMMENTS[p.language]
                 for t in tokens(p, p.start(s), p.end(s))]
        if tokens(p, pair.start, p.start(node)) + inner + \
                tokens(p, p.end(node), pair.after_end) == expected:
            return True
    return False


def _docstring(pair: Pair, args: Args) -> bool:
    if pair.before.language == "python":
        return _py_docstring(pair, args)
    return _comment_docstring(pair, args)


def _type_hints(pair: Pair, args: Args) -> bool:
    if pair.before.language == "python":
        return _py_type_hints(pair, args)
    return _ts_type_hints(pair, args)


CHECKS: dict[str, Callable[[Pair, Args], bool]] = {
    "docstring": _docstring, "type_hints": _type_hints, "rename": _rename,
    "fstring": _py_fstring, "extract_constant": _extract_constant, "wrap": _wrap}


def check_instruction(kind: str, language: str, before: str, after: str, args: Args,
                      syntax: Syntax | None = None) -> bool:
    """Does `after` (the document with the rewritten region) do what the instruction of
    `kind` asked of `before`?"""
    start, tail = int(args["start"]), int(args["tail"])
    before_end, after_end = len(before) - tail, len(after) - tail
    if after_end < start or before[:start] != after[:start] or \
            before[before_end:] != after[after_end:]:
        return False
    if args.get("satisfied"):
        return before == after
    if before == after or kind not in CHECKS:
        return False
    syntax = syntax or default_syntax()
    parsed_before, parsed_after = syntax.parse(language, before), syntax.parse(language, after)
    if parsed_before is None or parsed_after is None:
        return False
    # where the file did not parse before (C macros), the region must parse after
    if not parsed_after.ok and (parsed_before.ok or not parses(
            parsed_after.parser, after, start, after_end)):
        return False
    try:
        return CHECKS[kind](Pair(parsed_before, parsed_after, start, before_end, after_end),
                            args)
    except (SyntaxError, ValueError, RecursionError):
        return False
