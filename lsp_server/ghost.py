"""Shaping a model's completion into ghost text that fits where the cursor is.

A fill-in-the-middle model often writes too much: past the end of the block it was asked
to continue, into code that already follows, or a closing bracket the line already has.
`shape_suggestion` keeps the part a user would accept:

- In the middle of a line (non-blank text after the cursor): one line, and closing
  characters that the rest of the line already has are trimmed off its end.
- Otherwise several lines, stopped where the cursor's block ends. Indentation languages
  (Python) stop before a line indented less than the block (for a line ending in ":",
  not deeper than it); brace languages stop after a line that closes a bracket opened on
  an earlier suggested line, and before a closer of the enclosing block when the document
  already closes it. `block_end_line` says how far the block runs after the cursor: the
  block's own indentation is read there, and a suggested line repeating the block's next
  existing line stops the suggestion (the model has run into code already written).
- Trailing whitespace-only lines are dropped; "" when nothing is left.
"""

from __future__ import annotations

from lsp_server.context.languages import LanguageSpec
from lsp_server.context.syntax import block_end_line
from lsp_server.context.trees import DocumentTree

_OPENERS = "([{"
_CLOSERS = ")]}"
# what may be trimmed off a one-line suggestion because the line already has it
_TRAILING_PUNCTUATION = frozenset(")]}>\"'`;,:")
_QUOTES = "\"'`"
# a dedent to exactly the header's indentation that continues the same statement
_CONTINUATIONS = ("else", "elif", "except", "finally")
_TAB = 8


def _width(line: str) -> int:
    """Indentation width of `line` (tabs to multiples of 8)."""
    stripped = line.lstrip(" \t")
    return len(line[:len(line) - len(stripped)].expandtabs(_TAB))


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _unmatched(suggestion: str, overlap: str) -> bool:
    """Whether the overlap's brackets and quotes are ones the suggestion leaves unmatched
    (so the line's own copy makes them redundant), counted roughly."""
    for opener, closer in zip(_OPENERS, _CLOSERS, strict=True):
        excess = suggestion.count(closer) - suggestion.count(opener)
        if overlap.count(closer) > max(0, excess):
            return False
    return all(suggestion.count(q) % 2 == 1 for q in _QUOTES if q in overlap)


def _trim_overlap(suggestion: str, rest: str) -> str:
    """`suggestion` without the end that the rest of the line already has: the whole rest
    of the line, or closing punctuation; never cutting inside a word, nor a closer that
    matches an opener of the suggestion."""
    rest = rest.rstrip()
    for k in range(min(len(suggestion), len(rest)), 0, -1):
        overlap = rest[:k]
        if not suggestion.endswith(overlap):
            continue
        if k < len(rest) and not all(ch in _TRAILING_PUNCTUATION for ch in overlap):
            continue
        head = suggestion[:-k]
        if head and _is_word(head[-1]) and _is_word(overlap[0]):
            continue  # "foo" before "o bar" is a word, not a repeat of "o"
        if not _unmatched(suggestion, overlap):
            continue
        return head
    return suggestion


def _line_at(doc_text: str, start: int) -> tuple[str, int]:
    """The line starting at `start` (without its newline) and the next line's start."""
    end = doc_text.find("\n", start)
    if end < 0:
        return doc_text[start:].rstrip("\r"), len(doc_text) + 1
    return doc_text[start:end].rstrip("\r"), end + 1


def _next_line_in_block(doc_text: str, line_end: int, lines_left: int) -> str | None:
    """The first non-blank document line among the `lines_left` after the cursor line."""
    start = line_end + 1
    for _ in range(lines_left):
        if start > len(doc_text):
            return None
        line, start = _line_at(doc_text, start)
        if line.strip():
            return line
    return None


def _indent_cut(lines: list[str], before: str, cursor_line: str, block_next: str | None) -> int:
    """How many suggested lines stay inside the cursor's indentation block."""
    if before.strip():
        indent = _width(cursor_line)
        opens = before.rstrip().endswith(":")
    else:  # a blank line: the cursor's column, or the block's when the tree sees one
        indent = _width(before)
        if block_next is not None:
            indent = max(indent, _width(block_next))
        opens = False
    for i, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        width = _width(line)
        if width < indent:
            return i
        if opens and width == indent and not line.lstrip().startswith(_CONTINUATIONS):
            return i
    return len(lines)


def _brace_cut(lines: list[str], enclosing_closed: bool) -> list[str]:
    """The suggested lines up to the end of the construct they open, or up to the closer
    of the enclosing block (before it when the document already closes the block, through
    its line otherwise). Strings and comments are skipped roughly (one line at a time,
    except backtick strings and block comments)."""
    depth, quote, comment = 0, "", False
    out: list[str] = []
    for i, line in enumerate(lines):
        start_depth, j = depth, 0
        while j < len(line):
            ch = line[j]
            if comment:
                if line.startswith("*/", j):
                    comment, j = False, j + 1
            elif quote:
                if ch == "\\":
                    j += 1
                elif ch == quote:
                    quote = ""
            elif ch in _QUOTES:
                quote = ch
            elif line.startswith("//", j):
                break
            elif line.startswith("/*", j):
                comment, j = True, j + 1
            elif ch in _OPENERS:
                depth += 1
            elif ch in _CLOSERS:
                depth -= 1
                if depth < 0:
                    if enclosing_closed:
                        head = line[:j].rstrip()
                        return [*out, head] if head.strip() else out
                    return [*out, line]
            j += 1
        if quote != "`":
            quote = ""
        out.append(line)
        if i > 0 and start_depth > 0 and depth == 0:
            break
    return out


def _repeat_cut(lines: list[str], block_next: str | None) -> int:
    """Stop before a suggested line (after the first) that repeats the next existing line;
    a line of closers alone ("}", "});") is too common to count as a repeat."""
    target = (block_next or "").strip()
    if not any(_is_word(ch) for ch in target):
        return len(lines)
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == target:
            return i
    return len(lines)


def _strip_blank_tail(lines: list[str]) -> str:
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def shape_suggestion(text: str, doc_text: str, offset: int, *, tree: DocumentTree | None,
                     spec: LanguageSpec | None) -> str:
    """`text`, a completion to insert at string offset `offset` of `doc_text`, cut to what
    fits there (see the module docstring). `tree` must be `doc_text`'s current tree; a tree
    out of step (another length) is not used."""
    assert 0 <= offset <= len(doc_text), "callers map positions to valid offsets"
    line_start = doc_text.rfind("\n", 0, offset) + 1
    cursor_line, line_end = _line_at(doc_text, line_start)
    line_end -= 1  # the cursor line's newline (or the end of the text)
    before = doc_text[line_start:offset]
    rest = doc_text[offset:line_end].rstrip("\r")
    if rest.strip():
        first = text.split("\n", 1)[0].rstrip("\r")
        shaped = _trim_overlap(first, rest)
        return shaped if shaped.strip() else ""

    lines = text.split("\n")
    if spec is None:
        return _strip_blank_tail(lines)
    usable = tree is not None and tree.char_count == len(doc_text)
    block_end = row = None
    if usable:
        assert tree is not None
        row = tree.point_at(offset)[0]
        block_end = block_end_line(spec, tree.tree, tree.byte_offset(offset), source=tree.source)
    after_cursor = block_end - row if block_end is not None and row is not None else 0
    block_next = _next_line_in_block(doc_text, line_end, after_cursor)
    if spec.indentation_blocks:
        lines = lines[:_indent_cut(lines, before, cursor_line, block_next)]
    else:
        # without a tree, or at the top level, there is no enclosing block for a closer to
        # end: treat it as closed, so a stray closer is cut
        enclosing_closed = not usable or block_end is None or (
            after_cursor > 0 and _closing_line(doc_text, line_end, after_cursor))
        lines = _brace_cut(lines, enclosing_closed)
    lines = lines[:_repeat_cut(lines, block_next)]
    return _strip_blank_tail(lines)


def _closing_line(doc_text: str, line_end: int, lines_down: int) -> bool:
    """Whether the block's last line (`lines_down` below the cursor's) starts with a
    closer: the document already closes the block."""
    start = line_end + 1
    line = ""
    for _ in range(lines_down):
        if start > len(doc_text):
            return False
        line, start = _line_at(doc_text, start)
    return line.lstrip().startswith(tuple(_CLOSERS))
