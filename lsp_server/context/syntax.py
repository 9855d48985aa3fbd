"""Syntax facts around a cursor: enclosing scopes, clean cut lines, the editable region.

Pure functions over a tree-sitter tree and its `LanguageSpec`. Lines are 0-based. A
"statement" here is any named child of one of the spec's `block_types` (statements,
declarations, class members), the unit in which the context is cut and regions grow.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Tree

from lsp_server.context.languages import LanguageSpec
from lsp_server.context.tags import last_line

_HEADER_BYTES = 400  # a minified file is one long line; a header stays short
_CUT_DEPTH = 2  # top-level statements and the statements of their bodies
_BLOCK_SEARCH_DEPTH = 4  # how deep under a statement its bodies are looked for
_WHITESPACE = b" \t\r\n\f\v"
_NAME_FIELDS = ("name", "declarator", "type")
_NAMED_PARENTS = {"variable_declarator": "name", "pair": "key",
                  "assignment_expression": "left", "public_field_definition": "name",
                  "field_definition": "property"}


@dataclass(frozen=True, slots=True)
class Scope:
    """A function, class, impl block, namespace... that encloses the cursor."""

    kind: str
    name: str | None
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    header: str


def _source_of(tree: Tree, source: bytes | None) -> bytes:
    # a tree fresh from Parser.parse holds its source; an edited one does not
    return source if source is not None else (tree.root_node.text or b"")


def _cursor_node(spec: LanguageSpec, tree: Tree, source: bytes, byte: int) -> Node:
    """The innermost named node touching the cursor (the character before it or after it,
    whichever node is smaller). In an indentation-scoped language, a cursor in blank space
    belongs to the innermost block whose body starts at or left of its column."""
    root = tree.root_node
    byte = min(max(byte, 0), len(source))
    node = root.named_descendant_for_byte_range(byte, byte) or root
    if byte > 0:
        left = root.named_descendant_for_byte_range(byte - 1, byte)
        if left is not None and left.end_byte - left.start_byte < node.end_byte - node.start_byte:
            node = left
    if not spec.indentation_blocks or node.type not in spec.block_types:
        return node
    before = byte
    while before > 0 and source[before - 1] in _WHITESPACE:
        before -= 1
    if before == 0:
        return node
    column = byte - source.rfind(b"\n", 0, byte) - 1
    candidate = root.named_descendant_for_byte_range(before - 1, before)
    while candidate is not None and candidate.parent is not None:
        if candidate.type in spec.block_types and candidate.start_point[1] <= column:
            return candidate
        candidate = candidate.parent
    return node


def _in_error(node: Node) -> bool:
    current: Node | None = node
    while current is not None:
        if current.is_error or current.is_missing:
            return True
        current = current.parent
    return False


def _text(source: bytes, node: Node) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8", errors="replace")


def _scope_name(source: bytes, node: Node) -> str | None:
    for field in _NAME_FIELDS:
        child = node.child_by_field_name(field)
        # C declarators nest: pointer_declarator > function_declarator > identifier
        while child is not None and child.child_by_field_name("declarator") is not None:
            child = child.child_by_field_name("declarator")
        if child is not None:
            return _text(source, child)
    if node.type == "type_declaration" and node.named_child_count:  # Go: type X struct
        return _scope_name(source, node.named_children[0])
    parent = node.parent
    if parent is not None and parent.type in _NAMED_PARENTS:
        child = parent.child_by_field_name(_NAMED_PARENTS[parent.type])
        if child is not None:
            return _text(source, child)
    return None


def _header(source: bytes, node: Node) -> str:
    end = min(node.end_byte, node.start_byte + _HEADER_BYTES)
    newline = source.find(b"\n", node.start_byte, end)
    line = source[node.start_byte:newline if newline >= 0 else end]
    return line.decode("utf-8", errors="replace").rstrip()


def enclosing_scopes(
    spec: LanguageSpec, tree: Tree, byte_offset: int, *, source: bytes | None = None,
) -> list[Scope]:
    """The scopes around `byte_offset`, outermost first."""
    src = _source_of(tree, source)
    scopes: list[Scope] = []
    node: Node | None = _cursor_node(spec, tree, src, byte_offset)
    while node is not None:
        if node.type in spec.scope_types:
            scopes.append(Scope(
                kind=node.type, name=_scope_name(src, node),
                start_line=node.start_point[0], end_line=last_line(node),
                start_byte=node.start_byte, end_byte=node.end_byte,
                header=_header(src, node),
            ))
        node = node.parent
    scopes.reverse()
    return scopes


def _blocks_within(spec: LanguageSpec, node: Node) -> list[Node]:
    """The outermost block containers inside a multi-line `node` (or the node itself)."""
    if node.type in spec.block_types:
        return [node]
    found: list[Node] = []
    level = [node]
    for _ in range(_BLOCK_SEARCH_DEPTH):
        deeper: list[Node] = []
        for parent in level:
            for child in parent.named_children:
                if child.end_point[0] == child.start_point[0]:
                    continue
                (found if child.type in spec.block_types else deeper).append(child)
        level = deeper
    return found


def cut_lines(spec: LanguageSpec, tree: Tree) -> list[int]:
    """Sorted lines where a statement starts at nesting depth 1 or 2 (top level, or directly
    in the body of a top-level statement; namespace bodies do not add depth): where a
    prefix or suffix of the file can be cut without splitting a small statement."""
    lines: set[int] = set()
    stack: list[tuple[Node, int]] = [(tree.root_node, 1)]
    while stack:
        container, depth = stack.pop()
        for child in container.named_children:
            lines.add(child.start_point[0])
            if child.end_point[0] == child.start_point[0]:
                continue
            if depth >= _CUT_DEPTH and child.type not in spec.transparent_types:
                continue
            for block in _blocks_within(spec, child):
                flat = (block.type in spec.transparent_types
                        or (block.parent is not None
                            and block.parent.type in spec.transparent_types))
                if flat:
                    stack.append((block, depth))
                elif depth < _CUT_DEPTH:
                    stack.append((block, depth + 1))
    return sorted(lines)


def _statement_of(spec: LanguageSpec, node: Node | None) -> Node | None:
    """The innermost statement at or above `node`; namespaces and statement lists do not
    count as statements."""
    while node is not None and node.parent is not None:
        if node.parent.type in spec.block_types and node.type not in spec.transparent_types:
            return node
        node = node.parent
    return None


def _span(node: Node) -> tuple[int, int]:
    return node.start_point[0], last_line(node)


def _grow_among_siblings(
    container: Node, row: int, start: int, end: int, min_lines: int, max_lines: int,
) -> tuple[int, int]:
    """Add whole neighbouring statements, the one that grows the region least first (ties:
    the one that keeps `row` centred), while it stays within `max_lines` and until it
    reaches `min_lines`."""
    spans = [_span(child) for child in container.named_children]
    before = [s for s in spans if s[1] < start]
    after = [s for s in spans if s[0] > end][::-1]
    while end - start + 1 < min_lines:
        options = []
        for side in (before, after):
            if side:
                lo, hi = min(start, side[-1][0]), max(end, side[-1][1])
                if hi - lo + 1 <= max_lines:
                    # smallest region first, then the one that keeps the cursor centred
                    options.append((hi - lo, abs((row - lo) - (hi - row)), side))
        if not options:
            break
        side = min(options, key=lambda option: option[:2])[2]
        lo, hi = side.pop()
        start, end = min(start, lo), max(end, hi)
    return start, end


def _window(row: int, last: int, min_lines: int, max_lines: int) -> tuple[int, int]:
    radius = max(0, min(min_lines, (max_lines - 1) // 2))
    return max(0, row - radius), min(last, row + radius)


def editable_region(
    spec: LanguageSpec, tree: Tree, source: bytes, byte_offset: int, *,
    min_lines: int = 3, max_lines: int = 40,
) -> tuple[int, int]:
    """Inclusive (start_line, end_line) of the statements an edit at the cursor may rewrite:
    the innermost statement, grown to enclosing statements (a block, then its function)
    while under `min_lines`, and when the next one is over `max_lines`, grown by
    neighbouring statements instead. When the cursor is in an error or the region's
    statements do not parse: a window of `min_lines` lines either side of the cursor."""
    byte = min(max(byte_offset, 0), len(source))
    row = source.count(b"\n", 0, byte)
    last = source.count(b"\n")
    node = _cursor_node(spec, tree, source, byte)
    if tree.root_node.is_error or _in_error(node):
        return _window(row, last, min_lines, max_lines)

    if node.type in spec.block_types:  # blank space between statements
        current, container = node, node
        start, end = row, row
    else:
        unit = _statement_of(spec, node) or node
        current, container = unit, unit.parent or unit
        start, end = _span(unit)
        start, end = min(start, row), max(end, row)
    while end - start + 1 < min_lines:
        outer = _statement_of(spec, current.parent)
        if outer is None or _span(outer)[1] - _span(outer)[0] + 1 > max_lines:
            start, end = _grow_among_siblings(container, row, start, end, min_lines, max_lines)
            break
        current, container = outer, outer.parent or outer
        start, end = min(_span(outer)[0], row), max(_span(outer)[1], row)
    if current.parent is not None and current.has_error:
        return _window(row, last, min_lines, max_lines)
    if end - start + 1 > max_lines:
        start = max(start, min(row - max_lines // 2, end - max_lines + 1))
        end = start + max_lines - 1
    return start, end


def block_end_line(
    spec: LanguageSpec, tree: Tree, byte_offset: int, *, source: bytes | None = None,
) -> int | None:
    """Last line of the innermost block or scope around the cursor (at least the cursor's
    line); None at the top level."""
    src = _source_of(tree, source)
    byte = min(max(byte_offset, 0), len(src))
    node: Node | None = _cursor_node(spec, tree, src, byte)
    while node is not None and node.parent is not None:
        if node.type in spec.transparent_types:
            pass  # a statement list inside braces, a namespace: the braces end the block
        elif node.type in spec.block_types or node.type in spec.scope_types:
            return max(last_line(node), src.count(b"\n", 0, byte))
        node = node.parent
    return None
