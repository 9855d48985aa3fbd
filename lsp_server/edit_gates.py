"""Quality gates: edits that are clearly wrong are never shown.

A next edit is suppressed when it
- deletes or rewrites a line that neither the cursor nor the recent edit history points at
  (`destructive`): a line is pointed at when it lies within CURSOR_REACH lines of the
  cursor, was changed by the recent edits, shares an identifier with their changed lines
  and is carried on in changed form that drops no identifier but those the user changed
  (a rename, a replaced call, a new argument; deleted only after the user deleted lines),
  or reads like a line they changed (the same conversion applied to a sibling line);
- makes the region fail to parse when it parsed before (`breaks_parse`);
- undoes the user's last edit, all of it or one of its hunks (`undoes_last_edit`).

An instruction edit is refused when it breaks the parse (`breaks_parse`): the user asked
for it, so the server says why instead of applying it.

Pure: no engine, no protocol. Offsets are indices into the document's Python string.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tree_sitter import Node, Parser, Tree

Reason = Literal["destructive", "breaks_parse", "undoes_last_edit"]
REASONS: tuple[Reason, ...] = ("destructive", "breaks_parse", "undoes_last_edit")
MESSAGES: dict[Reason, str] = {
    "destructive": "it deletes or rewrites lines that neither the cursor nor the recent "
                   "edits point at",
    "breaks_parse": "the proposed edit does not parse",
    "undoes_last_edit": "it undoes the last edit",
}

CURSOR_REACH = 2  # lines above and below the cursor that a next edit may rewrite
RECENT_DIFFS = 3  # the newest diffs of the document that point at lines
SIBLING_RATIO = 0.6  # difflib ratio above which a line reads like one the user changed
REWRITE_RATIO = 0.5  # difflib ratio above which a new line is an old one carried on, changed
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words too common to tie a line to an edit (keywords of the eight languages).
_COMMON = frozenset(re.findall(r"\w+", """
and as assert async await break case catch char class const continue def default del do
double elif else enum except export extends false final finally float fn for from func
function go if impl implements import in int interface is let long loop match mod mut new
nil none not null or package pass pub raise return self static str string struct super
switch this throw throws true try type typedef undefined use var void while with yield
"""))


@dataclass(frozen=True)
class Hunk:
    """One hunk of a unified diff: the old lines from 0-based line `old_start` of the file
    before, and the new lines from `new_start` of the file after (context included)."""

    old_start: int
    old: tuple[str, ...]
    new_start: int
    new: tuple[str, ...]
    removed: tuple[str, ...]  # the "-" lines
    added: tuple[str, ...]  # the "+" lines
    added_rows: tuple[int, ...]  # where the "+" lines are in the file after


_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_diff(diff: str) -> list[Hunk]:
    """The hunks of a unified diff as history.unified_diff writes it (lines keep no "\\n")."""
    hunks: list[Hunk] = []
    lines = diff.split("\n")
    i = 0
    while i < len(lines):
        match = _HEADER.match(lines[i])
        i += 1
        if not match:
            continue
        old_len = 1 if match.group(2) is None else int(match.group(2))
        new_len = 1 if match.group(4) is None else int(match.group(4))
        # difflib writes the start of an empty range one line early
        old_start = int(match.group(1)) - (1 if old_len else 0)
        new_start = int(match.group(3)) - (1 if new_len else 0)
        old: list[str] = []
        new: list[str] = []
        removed: list[str] = []
        added: list[str] = []
        added_rows: list[int] = []
        while i < len(lines) and lines[i][:1] in (" ", "-", "+", "\\"):
            tag, body = lines[i][:1], lines[i][1:]
            i += 1
            if tag in (" ", "-"):
                old.append(body)
            if tag in (" ", "+"):
                new.append(body)
            if tag == "-":
                removed.append(body)
            elif tag == "+":
                added.append(body)
                added_rows.append(new_start + len(new) - 1)
        hunks.append(Hunk(old_start, tuple(old), new_start, tuple(new), tuple(removed),
                          tuple(added), tuple(added_rows)))
    return hunks


def _words(lines: Sequence[str]) -> set[str]:
    return {w for line in lines for w in _WORD.findall(line) if w.lower() not in _COMMON}


def _changed_blocks(before: list[str], after: list[str]) -> list[tuple[int, int, int, int]]:
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def unpointed_lines(old_region: str, new_region: str, first_line: int, cursor_line: int,
                    history: Sequence[str]) -> list[int]:
    """0-based document lines that the rewrite of `old_region` (which starts at line
    `first_line`) into `new_region` deletes or rewrites, and that neither the cursor nor the
    newest RECENT_DIFFS of `history` (this document's diffs, oldest first) points at."""
    before, after = old_region.split("\n"), new_region.split("\n")
    hunks = [h for diff in history[-RECENT_DIFFS:] for h in parse_diff(diff)]
    touched = {row for h in hunks for row in h.added_rows}
    # The identifiers the user's edits changed (in removed lines or added ones, not both):
    # a line carried on may drop only those, whatever else it shares with the change.
    removed_words = _words([line for h in hunks for line in h.removed])
    added_words = _words([line for h in hunks for line in h.added])
    moved = removed_words ^ added_words
    removed = [line.strip() for h in hunks for line in h.removed if line.strip()]
    deleted_lines = any(h.removed and not h.added for h in hunks)
    out: list[int] = []
    for i1, i2, j1, j2 in _changed_blocks(before, after):
        for i in range(i1, i2):
            line, row = before[i], first_line + i
            if not line.strip() or abs(row - cursor_line) <= CURSOR_REACH or row in touched:
                continue
            stripped = line.strip()
            # A shared identifier excuses a line carried on in changed form (a rename, a
            # replaced call), or deleted after the user deleted lines; not a line that
            # simply vanishes under unrelated text.
            counterparts = [new for new in after[j1:j2] if difflib.SequenceMatcher(
                None, stripped, new.strip()).ratio() >= REWRITE_RATIO]
            own = _words([line])
            carried = bool(counterparts) and own - _words(counterparts) <= moved
            if (carried and own & (removed_words | added_words)) or \
                    (deleted_lines and own & moved):
                continue
            if any(difflib.SequenceMatcher(None, stripped, old).ratio() >= SIBLING_RATIO
                   for old in removed):
                continue
            out.append(row)
    return out


def _core(hunk: Hunk) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """The hunk without its context lines: (offset of the change in `hunk.new`, old, new)."""
    lead = 0
    while lead < min(len(hunk.old), len(hunk.new)) and hunk.old[lead] == hunk.new[lead]:
        lead += 1
    trail = 0
    while (trail < min(len(hunk.old), len(hunk.new)) - lead
           and hunk.old[-1 - trail] == hunk.new[-1 - trail]):
        trail += 1
    return lead, hunk.old[lead:len(hunk.old) - trail], hunk.new[lead:len(hunk.new) - trail]


def undoes_last_edit(text: str, start: int, end: int, new_region: str,
                     last_diff: str | None) -> bool:
    """Does rewriting text[start:end] (whole lines) into `new_region` put back what the last
    diff of the document took out, for the whole diff or for one of its hunks? Only hunks
    inside the region count: the rewrite cannot touch the others."""
    if not last_diff:
        return False
    first_line = text.count("\n", 0, start)
    current, proposed = text[start:end].split("\n"), new_region.split("\n")
    proposal = {(i1, i2): proposed[j1:j2] for i1, i2, j1, j2 in _changed_blocks(current, proposed)}
    for hunk in parse_diff(last_diff):
        lead, old, new = _core(hunk)
        if not old and not new:
            continue
        row = hunk.new_start + lead - first_line  # where the change is, in region lines
        if row < 0 or row + len(new) > len(current) or tuple(current[row:row + len(new)]) != new:
            continue  # outside the region, or the text moved on since
        reverted = current[:row] + list(old) + current[row + len(new):]
        for i1, i2, j1, j2 in _changed_blocks(current, reverted):
            if proposal.get((i1, i2)) == reverted[j1:j2]:
                return True
    return False


# -- parsing


def _has_error_in(node: Node, start: int, end: int) -> bool:
    """Is there an ERROR or MISSING node overlapping bytes [start, end) under `node`?"""
    if node.end_byte < start or node.start_byte > end or not node.has_error:
        return False
    if node.is_error or node.is_missing:
        return True
    return any(_has_error_in(child, start, end) for child in node.children)


def parses(parser: Parser, text: str, start: int, end: int) -> bool:
    """Does `text` parse without errors over its characters [start, end)?"""
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    byte_start = _byte_len(text[:start])
    return not _has_error_in(tree.root_node, byte_start, byte_start + _byte_len(text[start:end]))


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _row_col(text: str) -> tuple[int, int]:
    """The tree-sitter point at the end of `text`: (rows, bytes after the last newline)."""
    return text.count("\n"), _byte_len(text[text.rfind("\n") + 1:])


def breaks_parse(parser: Parser | None, text: str, start: int, end: int, new_region: str,
                 tree: Tree | None = None) -> bool:
    """Did text[start:end] parse, and does the text with `new_region` in its place not?
    `tree`: the syntax tree of `text` when the caller has it (then the new text is parsed
    incrementally from it); None parses from scratch."""
    if parser is None:
        return False
    byte_start = _byte_len(text[:start])
    old_end = byte_start + _byte_len(text[start:end])
    new_end = byte_start + _byte_len(new_region)
    if tree is None:
        tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    if _has_error_in(tree.root_node, byte_start, old_end):
        return False
    new_text = text[:start] + new_region + text[end:]
    edited = tree.copy()
    start_point = _row_col(text[:start])
    edited.edit(start_byte=byte_start, old_end_byte=old_end, new_end_byte=new_end,
                start_point=start_point,
                old_end_point=_advance(start_point, text[start:end]),
                new_end_point=_advance(start_point, new_region))
    after = parser.parse(new_text.encode("utf-8", "surrogatepass"), edited)
    return _has_error_in(after.root_node, byte_start, new_end)


def _advance(point: tuple[int, int], inserted: str) -> tuple[int, int]:
    rows, col = _row_col(inserted)
    return (point[0] + rows, col) if rows else (point[0], point[1] + col)


def check_next_edit(*, text: str, start: int, end: int, new_region: str, cursor: int,
                    history: Sequence[str], parser: Parser | None,
                    tree: Tree | None = None) -> Reason | None:
    """Why the rewrite of text[start:end] into `new_region` must not be shown, or None.
    `history`: this document's diffs, oldest first (the open burst last); `parser`: one for
    the document's language (None: no parse gate); `tree`: the document's tree, if known."""
    old_region = text[start:end]
    if new_region == old_region:
        return None
    if history and undoes_last_edit(text, start, end, new_region, history[-1]):
        return "undoes_last_edit"
    first_line = text.count("\n", 0, start)
    cursor_line = text.count("\n", 0, cursor)
    if unpointed_lines(old_region, new_region, first_line, cursor_line, history):
        return "destructive"
    if breaks_parse(parser, text, start, end, new_region, tree):
        return "breaks_parse"
    return None


def check_instruction_edit(*, text: str, start: int, end: int, new_region: str,
                           parser: Parser | None, tree: Tree | None = None) -> Reason | None:
    if new_region != text[start:end] and breaks_parse(parser, text, start, end, new_region,
                                                      tree):
        return "breaks_parse"
    return None
