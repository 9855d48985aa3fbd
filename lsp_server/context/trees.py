"""One syntax tree per open document, kept in step with each edit by an incremental re-parse.

The source is held as UTF-8 in a bytearray edited in place (lone surrogates are encoded
with "surrogatepass", so every string converts and offsets stay consistent); `source`
and `text` are snapshots taken on demand. Offset conversions scan at most a few
kilobytes from the nearest `_Marks` entry, so one keystroke costs a memmove plus
tree-sitter's re-parse, whatever the file's size.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from itertools import zip_longest

from tree_sitter import Parser, Tree

from lsp_server.context.languages import LanguageSpec

_ENCODING = "utf-8"
_ERRORS = "surrogatepass"
_STRIDE = 4096  # bytes between marks
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 continuation bytes: no char starts there

Point = tuple[int, int]  # (row, byte column), as tree-sitter counts


def _encode(text: str) -> bytes:
    return text.encode(_ENCODING, _ERRORS)


def _cont_count(chunk: bytes | bytearray) -> int:
    """How many continuation bytes `chunk` holds: its length minus its character count."""
    return len(chunk) - len(chunk.translate(None, _CONTINUATION))


def _advance(point: Point, inserted: bytes) -> Point:
    """The point after `inserted` when it starts at `point`."""
    newlines = inserted.count(b"\n")
    if not newlines:
        return point[0], point[1] + len(inserted)
    return point[0] + newlines, len(inserted) - inserted.rfind(b"\n") - 1


class _Marks:
    """Char boundaries about every `_STRIDE` bytes of the source, as parallel sorted lists
    of byte offset, char offset and row; always starts with (0, 0, 0).

    Key: the document's current source. An edit keeps the marks before it, drops those
    inside the removed bytes and shifts those after it; a gap grown past two strides is
    re-marked. Size: about len(source) / _STRIDE entries.
    """

    def __init__(self, source: bytearray) -> None:
        self.bytes_: list[int] = [0]
        self.chars: list[int] = [0]
        self.rows: list[int] = [0]
        self._fill(source, 0)

    def _fill(self, source: bytearray, i: int) -> None:
        """Add marks between mark i and the next one (or the end of the source)."""
        end = self.bytes_[i + 1] if i + 1 < len(self.bytes_) else len(source)
        pos, char, row = self.bytes_[i], self.chars[i], self.rows[i]
        new_bytes: list[int] = []
        new_chars: list[int] = []
        new_rows: list[int] = []
        while end - pos > _STRIDE:
            cut = pos + _STRIDE
            while cut < end and source[cut] & 0xC0 == 0x80:
                cut += 1
            if cut >= end:
                break
            chunk = source[pos:cut]
            char += len(chunk) - _cont_count(chunk)
            row += chunk.count(b"\n")
            pos = cut
            new_bytes.append(pos)
            new_chars.append(char)
            new_rows.append(row)
        self.bytes_[i + 1:i + 1] = new_bytes
        self.chars[i + 1:i + 1] = new_chars
        self.rows[i + 1:i + 1] = new_rows

    def apply(self, source: bytearray, start: int, old_end: int, new_end: int,
              d_chars: int, d_rows: int) -> None:
        """Follow an edit of bytes [start, old_end) -> [start, new_end); `source` is new."""
        keep = bisect_right(self.bytes_, start)  # marks at or before start stay
        tail = keep
        if old_end > start:
            tail = max(keep, bisect_right(self.bytes_, old_end - 1))
        d_bytes = new_end - old_end
        self.bytes_[keep:] = [b + d_bytes for b in self.bytes_[tail:]]
        self.chars[keep:] = [c + d_chars for c in self.chars[tail:]]
        self.rows[keep:] = [r + d_rows for r in self.rows[tail:]]
        gap_end = self.bytes_[keep] if keep < len(self.bytes_) else len(source)
        if gap_end - self.bytes_[keep - 1] > 2 * _STRIDE:
            self._fill(source, keep - 1)

    def at_char(self, char: int) -> int:
        return bisect_right(self.chars, char) - 1

    def at_byte(self, byte: int) -> int:
        return bisect_right(self.bytes_, byte) - 1


class DocumentTree:
    """A document's source and syntax tree, updated edit by edit.

    `apply_edit` raises ValueError when the edit does not fit the document (offset out of
    range, or `removed` is not the text at `start`): the caller is out of step and should
    build a new DocumentTree from the full text.

    A `tree` and `source` taken before an edit stay consistent with each other afterwards,
    but `Node.text` reads the live buffer: slice `source` rather than use `Node.text`.
    """

    def __init__(self, spec: LanguageSpec, text: str, parser: Parser | None = None) -> None:
        self.spec = spec
        self._parser = parser if parser is not None else Parser(spec.language)
        # a new bytes object per keystroke would cost an allocation and page faults
        # proportional to the file; the parser reads the bytearray where it lies
        self._buf = bytearray(_encode(text))
        self._source: bytes | None = None
        self._text: str | None = text
        self._n_chars = len(text)
        self._ascii = text.isascii()
        self._marks = _Marks(self._buf)
        self.tree: Tree = self._parse(None)

    def _parse(self, old: Tree | None) -> Tree:
        # the binding takes no None for "no old tree"
        tree = self._parser.parse(self._buf) if old is None else self._parser.parse(self._buf, old)
        assert tree is not None, "the parser has a language and no timeout"
        return tree

    @property
    def source(self) -> bytes:
        """The UTF-8 source (a snapshot: copied once after each edit, when first asked)."""
        if self._source is None:
            self._source = bytes(self._buf)
        return self._source

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._buf.decode(_ENCODING, _ERRORS)
        return self._text

    @property
    def has_error(self) -> bool:
        return self.tree.root_node.has_error

    @property
    def char_count(self) -> int:
        """Length of `text` in code points (without decoding it)."""
        return self._n_chars

    # -- offsets -----------------------------------------------------------------------

    def byte_offset(self, char_offset: int) -> int:
        """UTF-8 byte offset of a code point offset (clamped to the document)."""
        return self._locate(char_offset)[0]

    def point_at(self, char_offset: int) -> Point:
        """(row, byte column) of a code point offset (clamped to the document)."""
        _, row, col = self._locate(char_offset)
        return row, col

    def char_offset(self, byte_offset: int) -> int:
        """Code point offset of a byte offset; inside a character, that character's start."""
        src = self._buf
        byte = min(max(byte_offset, 0), len(src))
        while 0 < byte < len(src) and src[byte] & 0xC0 == 0x80:
            byte -= 1
        i = self._marks.at_byte(byte)
        base = self._marks.bytes_[i]
        chunk = src[base:byte]
        return self._marks.chars[i] + len(chunk) - _cont_count(chunk)

    def _locate(self, char_offset: int) -> tuple[int, int, int]:
        """(byte offset, row, byte column) of a code point offset."""
        char = min(max(char_offset, 0), self._n_chars)
        marks, src = self._marks, self._buf
        i = marks.at_char(char)
        base = marks.bytes_[i]
        if self._ascii:
            byte = base + char - marks.chars[i]
        else:
            end = marks.bytes_[i + 1] if i + 1 < len(marks.bytes_) else len(src)
            piece = src[base:end].decode(_ENCODING, _ERRORS)[:char - marks.chars[i]]
            byte = base + len(_encode(piece))
        row = marks.rows[i] + src.count(b"\n", base, byte)
        return byte, row, byte - src.rfind(b"\n", 0, byte) - 1

    # -- edits -------------------------------------------------------------------------

    def apply_edit(self, start: int, removed: str, inserted: str) -> None:
        """Replace `removed`, found at code point offset `start` of the current text, with
        `inserted`, then re-parse incrementally."""
        if not removed and not inserted:
            return
        if start < 0 or start + len(removed) > self._n_chars:
            raise ValueError(f"edit at {start}+{len(removed)} outside a document of "
                             f"{self._n_chars} characters")
        start_byte, row, col = self._locate(start)
        removed_b, inserted_b = _encode(removed), _encode(inserted)
        old_end = start_byte + len(removed_b)
        new_end = start_byte + len(inserted_b)
        if removed_b and self._buf[start_byte:old_end] != removed_b:
            raise ValueError(f"removed text does not match the document at {start}")
        old_end_point = _advance((row, col), removed_b)
        new_end_point = _advance((row, col), inserted_b)

        self._buf[start_byte:old_end] = inserted_b
        self._source = None
        self._text = None
        self._n_chars += len(inserted) - len(removed)
        self._ascii = self._ascii and inserted.isascii()
        if not self._ascii and not removed.isascii():
            self._ascii = self._buf.isascii()
        self._marks.apply(self._buf, start_byte, old_end, new_end,
                          len(inserted) - len(removed),
                          inserted_b.count(b"\n") - removed_b.count(b"\n"))

        old = self.tree.copy()  # cheap; a caller holding self.tree keeps an unedited tree
        old.edit(
            start_byte=start_byte, old_end_byte=old_end, new_end_byte=new_end,
            start_point=(row, col), old_end_point=old_end_point, new_end_point=new_end_point,
        )
        self.tree = self._parse(old)

    # -- checks ------------------------------------------------------------------------

    def matches_fresh_parse(self) -> bool:
        """Whether the incremental tree equals a parse of the source from scratch: the same
        S-expression and the same node types, byte ranges and points."""
        fresh = Parser(self.spec.language).parse(self.source)
        if str(fresh.root_node) != str(self.tree.root_node):
            return False
        return all(a == b for a, b in zip_longest(_preorder(self.tree), _preorder(fresh)))


def _preorder(tree: Tree) -> Iterator[tuple[int, int, int, Point, Point]]:
    cursor = tree.walk()
    while True:
        node = cursor.node
        assert node is not None
        yield (node.kind_id, node.start_byte, node.end_byte,
               tuple(node.start_point), tuple(node.end_point))
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return

