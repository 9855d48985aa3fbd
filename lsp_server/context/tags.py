"""Definitions and references in a syntax tree, from the language's tag query.

Captures follow one convention (see `queries/*.scm`): `@name` on the identifier, and
`@definition.<kind>` or `@reference.<kind>` on the whole node. One name yields one tag:
a definition wins over a reference, and among the rest the earlier query pattern wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, QueryCursor, Tree

from lsp_server.context.languages import LanguageSpec

_DEFINITION = "definition."
_REFERENCE = "reference."


@dataclass(frozen=True, slots=True)
class Tag:
    """A definition or reference of `name`. Lines are 0-based; `start_byte`/`end_byte` and
    `line` locate the name; `def_start_line`..`def_end_line` (inclusive) span the whole
    definition, and equal `line` for a reference."""

    name: str
    kind: str
    is_definition: bool
    line: int
    start_byte: int
    end_byte: int
    def_start_line: int
    def_end_line: int


def last_line(node: Node) -> int:
    """The node's last line, not counting a trailing newline it swallowed."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point[0] else row


def _role(captures: dict[str, list[Node]]) -> tuple[str, Node] | None:
    for capture, nodes in captures.items():
        if capture.startswith((_DEFINITION, _REFERENCE)) and nodes:
            return capture, nodes[0]
    return None


def extract_tags(
    spec: LanguageSpec, tree: Tree, source: bytes, byte_range: tuple[int, int] | None = None,
) -> list[Tag]:
    """Tags of `tree` (parsed from `source`), or those whose name overlaps `byte_range`,
    sorted by the name's position."""
    cursor = QueryCursor(spec.tags_query)
    low, high = 0, len(source)
    if byte_range is not None:
        low, high = max(byte_range[0], 0), max(byte_range[1], 0)
        cursor.set_byte_range(low, high)
    # (name start, name end) -> (rank, tag); lower rank wins
    best: dict[tuple[int, int], tuple[tuple[bool, int], Tag]] = {}
    for pattern, captures in cursor.matches(tree.root_node):
        role = _role(captures)
        if role is None:
            continue
        capture, whole = role
        is_definition = capture.startswith(_DEFINITION)
        kind = capture.partition(".")[2]
        for name_node in captures.get("name", ()):
            key = (name_node.start_byte, name_node.end_byte)
            if key[0] == key[1]:  # a name the parser inserted to recover from an error
                continue
            if key[1] <= low or key[0] >= high:  # a pattern rooted above the range
                continue
            rank = (not is_definition, pattern)
            held = best.get(key)
            if held is not None and held[0] <= rank:
                continue
            line = name_node.start_point[0]
            name = source[key[0]:key[1]].decode("utf-8", errors="replace")
            best[key] = rank, Tag(
                name=name,
                kind=kind,
                is_definition=is_definition,
                line=line,
                start_byte=key[0],
                end_byte=key[1],
                def_start_line=whole.start_point[0] if is_definition else line,
                def_end_line=last_line(whole) if is_definition else line,
            )
    return [tag for _, (_, tag) in sorted(best.items())]
