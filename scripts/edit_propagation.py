"""Propagation edits: the user made one change; the rewrite carries it to the region.

- rename: a local, a parameter or a top-level function renamed at one occurrence;
- replace_call: `foo(` changed to `bar(` at one call site (a method or macro name too);
- add_argument: a parameter added to a definition; the call sites in the region pass it
  (the cursor is at a call site, where the user went next);
- convert: one site of a mechanical conversion (edit_conversions.py) converted by hand.

Each kind is a function (rng, SourceFile, max_chars) -> EditExample | None; None when the
file has nothing of the kind or the example fails its checks (edit_core.next_edit).
"""

from __future__ import annotations

import random
import re

from edit_conversions import converters_for
from edit_core import EditExample, Replacement, next_edit, shift
from edit_syntax import (
    CALLS,
    Parsed,
    Syntax,
    default_syntax,
    line_end,
    line_start,
    styled,
    words_of,
)
from training_data import SourceFile
from tree_sitter import Node

DOCUMENT_LINES = 300  # a bigger file is cut down around the edit (the gates diff it whole)
MAX_ERROR_SHARE = 0.1  # of a file's bytes in ERROR nodes: more, and the file is not used
_SKIP_NAMES = frozenset({"self", "cls", "this", "_", "main", "super", "init", "new", "err",
                         "ok", "len", "print", "i", "j", "k"})
_TOP = frozenset({"module", "program", "source_file", "translation_unit", "export_statement"})
_PREFIXES = ("new", "current", "next", "base", "raw", "final", "local", "old")
_SUFFIXES = ("value", "count", "list", "items", "result", "info", "data", "entry")
# Kept in an excerpt wherever they are: what a file's code refers to.
_HEADERS = frozenset({"package_clause", "package_declaration", "import_declaration",
                      "import_statement", "import_from_statement", "future_import_statement",
                      "preproc_include", "use_declaration", "using_declaration"})
_SWAPS = {"log": ("error", "warn", "debug", "info"), "info": ("debug", "warning", "error"),
          "debug": ("info", "warning"), "println": ("eprintln",), "print": ("eprint",),
          "append": ("extend",), "push": ("unshift",), "Println": ("Print",),
          "Printf": ("Sprintf",), "printf": ("puts",), "add": ("remove",)}


def parsed_file(f: SourceFile, syntax: Syntax | None = None,
                rng: random.Random | None = None) -> Parsed | None:
    """The file's syntax tree, when its language is known and at most MAX_ERROR_SHARE of
    it is in ERROR nodes (C macros trip the grammar). With `rng`, a file over
    DOCUMENT_LINES lines is cut down to the statements around a random line (`excerpt`):
    the document of the example."""
    syntax = syntax or default_syntax()
    p = syntax.parse(f.language, f.text)
    if p is None or p.error_share > MAX_ERROR_SHARE:
        return None
    lines = f.text.count("\n")
    if rng is None or lines <= DOCUMENT_LINES:
        return p
    small = syntax.parse(f.language, excerpt(p, rng.randrange(lines), DOCUMENT_LINES))
    usable = small is not None and (not small.root.has_error or p.root.has_error)
    return small if usable and small.error_share <= MAX_ERROR_SHARE else p


def _own_lines(p: Parsed, node: Node) -> bool:
    """Does the node have its lines to itself (only blanks before and after it)?"""
    text = p.text
    start, end = p.start(node), p.end(node)
    return not text[line_start(text, start):start].strip() and \
        not text[end:line_end(text, end)].strip()


def excerpt(p: Parsed, center: int, max_lines: int) -> str:
    """The document without the statements and members (whole lines) that lie entirely
    outside the `max_lines` lines around 0-based line `center`: a big file made small
    enough for the gates, which diff whole documents. The declarations that remain are
    the file's own, so the excerpt parses wherever the file does (the caller checks)."""
    lo, hi = center - max_lines // 2, center + max_lines // 2
    cut: list[tuple[int, int]] = []  # line ranges [first, last] to drop

    def visit(container: Node, depth: int) -> None:
        for child in container.named_children:
            first, last = child.start_point[0], child.end_point[0]
            if (last < lo or first > hi) and child.type not in _HEADERS and \
                    _own_lines(p, child):
                cut.append((first, last))
            elif last - first > max_lines and depth < 3:
                for block in child.named_children:
                    if block.type in p.spec.block_types:
                        visit(block, depth + 1)

    visit(p.root, 0)
    if not cut:
        return p.text
    lines = p.text.split("\n")
    drop = {i for first, last in cut for i in range(first, last + 1)}
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def taken(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", text) is not None


def new_name(rng: random.Random, old: str, language: str, text: str) -> str | None:
    """A plausible new name for `old`, in its style, that the file does not use yet."""
    words = words_of(old) or [old.lower()]
    for _ in range(6):
        choice = rng.random()
        if choice < 0.4:
            candidate = [*words, rng.choice(_SUFFIXES)]
        elif choice < 0.8:
            candidate = [rng.choice(_PREFIXES), *words]
        else:
            candidate = [*words[:-1], rng.choice(_SUFFIXES)]
        name = styled(old, candidate, language)
        if name != old and not taken(text, name):
            return name
    return None


def _is_top_level(fn: Node) -> bool:
    return fn.parent is not None and fn.parent.type in _TOP


def rename_candidates(p: Parsed) -> dict[str, list[Node]]:
    """Names bound in the file -> their occurrences in the binding's scope (the function
    for a local or parameter, the file for a top-level function or global)."""
    out: dict[str, list[Node]] = {}
    for node in p.nodes(frozenset({"identifier"})):
        name = p.text_of(node)
        if name in out or name in _SKIP_NAMES or len(name) < 2 or not p.is_name(node) \
                or not p.is_definition(node):
            continue
        fn = p.enclosing_function(node)  # for a function's own name: that function
        fn_name = p.function_name(fn) if fn is not None else None
        if fn is not None and fn_name is not None and fn_name.id == node.id:
            if not _is_top_level(fn) and p.language != "java":
                continue
            scope = None
        else:
            scope = fn
        uses = p.names(name, scope)
        if (scope or p.root).has_error:
            continue  # some uses may be hidden in an ERROR node
        if len(uses) >= 2 and not p.has_shorthand(name):
            out[name] = uses
    return out


def rename(rng: random.Random, f: SourceFile, max_chars: int,
           syntax: Syntax | None = None) -> EditExample | None:
    p = parsed_file(f, syntax, rng)
    candidates = rename_candidates(p) if p is not None else {}
    if p is None or not candidates:
        return None
    old = rng.choice(sorted(candidates))
    uses = candidates[old]
    new = new_name(rng, old, f.language, p.text)
    if new is None:
        return None
    definitions = [n for n in uses if p.is_definition(n)]
    first = definitions[0] if definitions and rng.random() < 0.6 else rng.choice(uses)
    start, end = p.start(first), p.end(first)
    others = [(p.start(n), p.end(n), new) for n in uses if n.id != first.id]
    targets = shift(others, end, len(new) - len(old))
    return next_edit("rename", f.language, f.path, p.text, [(start, end, new)],
                     start + len(new), targets, max_chars, syntax=syntax)


def _call_sites(p: Parsed) -> dict[str, list[tuple[Node, Node]]]:
    """Callee text -> [(call, the node naming the function)]."""
    out: dict[str, list[tuple[Node, Node]]] = {}
    types = CALLS[p.language] | ({"macro_invocation"} if p.language == "rust" else set())
    for call in p.nodes(frozenset(types)):
        if call.type == "macro_invocation":
            name = call.child_by_field_name("macro")
            key = p.text_of(name) + "!"
        else:
            name, key = p.callee(call), p.callee_key(call)
        if name is not None and key:
            out.setdefault(key, []).append((call, name))
    return out


def replace_call(rng: random.Random, f: SourceFile, max_chars: int,
                 syntax: Syntax | None = None) -> EditExample | None:
    p = parsed_file(f, syntax, rng)
    if p is None:
        return None
    sites = {k: v for k, v in _call_sites(p).items() if len(v) >= 2}
    if not sites:
        return None
    key = rng.choice(sorted(sites))
    calls = sites[key]
    old = p.text_of(calls[0][1])
    swaps = [s for s in _SWAPS.get(old, ()) if not taken(key, s)]
    new = rng.choice(swaps) if swaps and rng.random() < 0.7 else \
        new_name(rng, old, f.language, p.text)
    if new is None or new == old:
        return None
    _, changed = rng.choice(calls)
    start, end = p.start(changed), p.end(changed)
    others = [(p.start(n), p.end(n), new) for _, n in calls if n.id != changed.id]
    targets = shift(others, end, len(new) - len(old))
    return next_edit("replace_call", f.language, f.path, p.text, [(start, end, new)],
                     start + len(new), targets, max_chars, syntax=syntax)


# (parameter, argument) by language; {name} is the new parameter's name
_NEW_PARAMETERS = {
    "python": (("{name}", "10"), ("{name}", "True")),
    "javascript": (("{name}", "10"), ("{name}", "true")),
    "typescript": (("{name}: number", "10"), ("{name}: boolean", "true")),
    "tsx": (("{name}: number", "10"), ("{name}: boolean", "true")),
    "rust": (("{name}: usize", "10"), ("{name}: bool", "true")),
    "go": (("{name} int", "10"), ("{name} bool", "true")),
    "java": (("int {name}", "10"), ("boolean {name}", "true")),
    "c": (("int {name}", "10"), ("int {name}", "1")),
    "cpp": (("int {name}", "10"), ("bool {name}", "true")),
}
_PARAMETER_NAMES = (("limit", "max_items", "retries", "depth", "count_limit"),
                    ("verbose", "strict", "dry_run", "force", "quiet"))
_NO_APPEND = frozenset({"dictionary_splat_pattern", "self_parameter", "variadic_parameter",
                        "variadic_parameter_declaration", "spread_parameter", "rest_pattern",
                        "variadic_declarator"})


def _definitions(p: Parsed) -> dict[str, tuple[Node, Node]]:
    """Function name -> (function, parameter list), for functions called by plain name."""
    out: dict[str, tuple[Node, Node]] = {}
    seen: set[str] = set()
    for fn in p.nodes(frozenset({"function_definition", "function_declaration",
                                 "function_item", "method_declaration"})):
        name, params = p.function_name(fn), p.parameters(fn)
        if name is None or params is None or (p.language == "go" and
                                              fn.type == "method_declaration"):
            continue
        key = p.text_of(name)
        if key in seen:  # overloads, a prototype and its definition: ambiguous
            out.pop(key, None)
            continue
        seen.add(key)
        if any(c.type in _NO_APPEND or p.text_of(c) == "void" for c in params.named_children):
            continue
        out[key] = (fn, params)
    if p.language in ("c", "cpp"):  # a prototype would need the parameter too
        for decl in p.nodes(frozenset({"function_declarator"})):
            if decl.parent is not None and decl.parent.type != "function_definition":
                out.pop(p.text_of(decl.child_by_field_name("declarator")), None)
    return out


def _insert_at_close(p: Parsed, bracketed: Node, item: str) -> Replacement:
    """Insert `item` as the last entry of a bracketed list (before its closing bracket)."""
    entries = [c for c in bracketed.named_children if c.type != "comment"]
    at = p.end(bracketed) - 1
    return (at, at, f", {item}" if entries else item)


def add_argument(rng: random.Random, f: SourceFile, max_chars: int,
                 syntax: Syntax | None = None) -> EditExample | None:
    p = parsed_file(f, syntax, rng)
    if p is None:
        return None
    definitions = _definitions(p)
    calls = {k: v for k, v in _call_sites(p).items()
             if k.removeprefix("self.").removeprefix("this.") in definitions}
    if not calls:
        return None
    key = rng.choice(sorted(calls))
    fn, params = definitions[key.removeprefix("self.").removeprefix("this.")]
    kind = rng.randrange(2)
    style = "a_b" if f.language in ("python", "rust", "c", "cpp") else "aB"
    free = [name for name in (styled(style, words_of(n), f.language)
                              for n in _PARAMETER_NAMES[kind]) if not taken(p.text, name)]
    if not free:
        return None
    name = rng.choice(free)
    parameter, argument = (s.format(name=name) for s in _NEW_PARAMETERS[f.language][kind])
    keyword = False
    if f.language == "python" and any(c.type in ("default_parameter", "typed_default_parameter",
                                                 "list_splat_pattern", "keyword_separator")
                                      for c in params.named_children):
        parameter, keyword = f"{name}=None", True
    change = _insert_at_close(p, params, parameter)
    targets: list[Replacement] = []
    for call, _ in calls[key]:
        arguments = p.arguments(call)
        if arguments is None or (fn.start_byte <= call.start_byte < params.end_byte):
            return None
        uses_keywords = any(c.type in ("keyword_argument", "dictionary_splat")
                            for c in arguments.named_children)
        passed = f"{name}={argument}" if keyword or uses_keywords else argument
        targets.append(_insert_at_close(p, arguments, passed))
    delta = len(change[2])
    targets = shift(targets, change[0], delta)
    cursor = rng.choice(targets)[0]
    return next_edit("add_argument", f.language, f.path, p.text, [change], cursor, targets,
                     max_chars, syntax=syntax)


def convert(rng: random.Random, f: SourceFile, max_chars: int,
            syntax: Syntax | None = None) -> EditExample | None:
    p = parsed_file(f, syntax, rng)
    if p is None:
        return None
    options = [sites for c in converters_for(f.language) if len(sites := c.sites(p)) >= 2]
    if not options:
        return None
    sites = rng.choice(options)
    start, end, new = rng.choice(sites)
    others = [s for s in sites if s[0] != start]
    targets = shift(others, end, len(new) - (end - start))
    return next_edit("convert", f.language, f.path, p.text, [(start, end, new)],
                     start + len(new), targets, max_chars, syntax=syntax)
