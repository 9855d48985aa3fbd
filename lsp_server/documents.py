"""Exact copies of the editor's documents, and positions <-> offsets.

The server keeps its own store instead of pygls' workspace: pygls applies a change
before our handler sees it, so the deleted text (wanted for edit history) would already
be gone, and one source of truth is easier to test than two.

Offsets are indices into the Python string (Unicode code points). LSP positions count
`character` in the negotiated encoding: utf-16 code units (the default, and the only
one VS Code offers), utf-8 bytes (Neovim 0.11) or utf-32 code points. Lines end at
"\\n", "\\r\\n" or "\\r", as the LSP specification says.

Bad positions never raise out of this module's public conversion functions: they
return a `PositionError` value that the caller logs and degrades on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

import numpy as np

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class Encoding(StrEnum):
    """How `Position.character` counts: the LSP `PositionEncodingKind` values."""

    UTF8 = "utf-8"
    UTF16 = "utf-16"
    UTF32 = "utf-32"

    @classmethod
    def parse(cls, value: str | None) -> Encoding:
        """The encoding named by the wire value; utf-16 when absent or unknown (LSP default)."""
        try:
            return cls(value) if value else cls.UTF16
        except ValueError:
            return cls.UTF16


@dataclass(frozen=True, kw_only=True)
class Position:
    """A zero-based line and character, `character` counted in some `Encoding`."""

    line: int
    character: int


@dataclass(frozen=True, kw_only=True)
class Range:
    start: Position
    end: Position


@dataclass(frozen=True, kw_only=True)
class PositionError:
    """Why a position could not be mapped into a document (an error value, not raised)."""

    message: str


@dataclass(frozen=True, kw_only=True)
class TextChange:
    """One content change: replace `range` by `text`, or the whole text when `range` is None."""

    text: str
    range: Range | None = None


@dataclass(frozen=True, kw_only=True)
class AppliedEdit:
    """One change as applied: at string offset `start` of the text before it, `removed`
    was replaced by `inserted`. Exact, so edit history and syntax trees follow every
    keystroke (pygls's own workspace drops the removed text)."""

    start: int
    removed: str
    inserted: str


def _units(ch: str, encoding: Encoding) -> int:
    """Width of one code point in the encoding's units."""
    cp = ord(ch)
    if encoding is Encoding.UTF16:
        return 2 if cp > 0xFFFF else 1
    if encoding is Encoding.UTF8:
        return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
    return 1


def width(text: str, encoding: Encoding) -> int:
    """Length of `text` in the encoding's units."""
    if encoding is Encoding.UTF32 or text.isascii():
        return len(text)
    if encoding is Encoding.UTF16:
        return len(text.encode("utf-16-le")) // 2
    return len(text.encode("utf-8"))


LARGE_TEXT = 1 << 20  # characters; from here line starts are found with numpy
_CHUNK = 1 << 22


def line_starts(text: str) -> np.ndarray:
    """Offsets where each line of `text` begins ("\r\n", "\r" and "\n" end a line), found
    a few megabytes at a time (code points, so non-ASCII text goes through UTF-32)."""
    parts = [np.zeros(1, dtype=np.int64)]
    for base in range(0, len(text), _CHUNK):
        piece = text[base:base + _CHUNK + 1]  # one more: a "\r\n" across the boundary
        codes = np.frombuffer(piece.encode("ascii") if piece.isascii()
                              else piece.encode("utf-32-le", "surrogatepass"),
                              dtype=np.uint8 if piece.isascii() else np.uint32)
        n = min(_CHUNK, len(text) - base)
        body, following = codes[:n], codes[1:n + 1]
        if len(following) < n:  # the text's last character: nothing follows it
            following = np.append(following, 0)
        ends = (body == 10) | ((body == 13) & (following != 10))
        parts.append(np.flatnonzero(ends).astype(np.int64) + base + 1)
    return np.concatenate(parts)


@dataclass(frozen=True, kw_only=True)
class Document:
    """One open document: its exact text, the editor's version and language id.

    Immutable: an edit makes a new `Document`, so a completion running on an older
    version keeps a consistent view while newer keystrokes arrive.
    """

    uri: str
    text: str
    version: int | None = None
    language_id: str = ""

    @cached_property
    def _line_starts(self) -> list[int] | np.ndarray:
        # Offsets where each line begins; computed once per version, used by every lookup.
        # A large file (millions of lines) gets an array: a list of ints would cost ~40
        # bytes a line and seconds a version.
        if len(self.text) < LARGE_TEXT:
            return [0] + [m.end() for m in _LINE_BREAK.finditer(self.text)]
        return line_starts(self.text)

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def line_text(self, line: int) -> str:
        """Line `line` without its terminator."""
        start = int(self._line_starts[line])
        end = self._line_end(line)
        return self.text[start:end]

    def _line_end(self, line: int) -> int:
        """Offset of the end of the line's content (before its terminator)."""
        if line + 1 < len(self._line_starts):
            nxt = int(self._line_starts[line + 1])
            # The terminator is one or two characters ("\r\n").
            return nxt - (2 if self.text[nxt - 2:nxt] == "\r\n" else 1)
        return len(self.text)

    def offset_at(
        self, position: Position, encoding: Encoding = Encoding.UTF16, *, clamp: bool = False
    ) -> int | PositionError:
        """The string offset of `position`, or a `PositionError`.

        Strict by default: a line past the last one, a character past the end of its
        line, or a character inside a multi-unit code point is an error. `clamp=True`
        follows the LSP rule for edits ("a character beyond the line length defaults
        back to the line length"), also accepts the position just past the last line
        that some clients use as "end of document", and rounds a split code point down.
        """
        line, character = position.line, position.character
        if line < 0 or character < 0:
            return PositionError(message=f"negative position {line}:{character}")
        if line >= self.line_count:
            if clamp and line == self.line_count and character == 0:
                return len(self.text)
            return PositionError(
                message=f"line {line} is outside the document ({self.line_count} lines)"
            )
        start = int(self._line_starts[line])
        content = self.text[start:self._line_end(line)]
        if encoding is Encoding.UTF32 or content.isascii():
            if character <= len(content):
                return start + character
            if clamp:
                return start + len(content)
            return PositionError(
                message=f"character {character} is past the end of line {line} "
                f"({len(content)} {encoding.value} units)"
            )
        units = 0
        for index, ch in enumerate(content):
            if units == character:
                return start + index
            units += _units(ch, encoding)
            if units > character:
                if clamp:
                    return start + index
                return PositionError(
                    message=f"character {character} of line {line} splits a code point "
                    f"in {encoding.value}"
                )
        if units == character or clamp:
            return start + len(content)
        return PositionError(
            message=f"character {character} is past the end of line {line} "
            f"({units} {encoding.value} units)"
        )

    def position_at(self, offset: int, encoding: Encoding = Encoding.UTF16) -> Position:
        """The position of string offset `offset` (clamped into the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = int(np.searchsorted(self._line_starts, offset, side="right")) - 1
        start = int(self._line_starts[line])
        # An offset between "\r" and "\n" sits inside the terminator: report the line end.
        column_text = self.text[start:min(offset, self._line_end(line))]
        return Position(line=line, character=width(column_text, encoding))

    def apply(
        self, changes: list[TextChange], version: int | None, encoding: Encoding = Encoding.UTF16
    ) -> Document | PositionError:
        """The document after `changes`, applied in order as LSP requires.

        A change whose range cannot be mapped returns a `PositionError` and leaves
        this document as it was: better a stale copy reported in the log than a
        silently corrupted one.
        """
        result = self.apply_edits(changes, version, encoding)
        return result if isinstance(result, PositionError) else result[0]

    def apply_edits(
        self, changes: list[TextChange], version: int | None, encoding: Encoding = Encoding.UTF16
    ) -> tuple[Document, list[AppliedEdit]] | PositionError:
        """`apply`, plus each change as an `AppliedEdit` against the text it was applied to."""
        doc = self
        edits: list[AppliedEdit] = []
        for change in changes:
            if change.range is None:
                edits.append(AppliedEdit(start=0, removed=doc.text, inserted=change.text))
                doc = Document(uri=doc.uri, text=change.text, version=version,
                               language_id=doc.language_id)
                continue
            start = doc.offset_at(change.range.start, encoding, clamp=True)
            end = doc.offset_at(change.range.end, encoding, clamp=True)
            if isinstance(start, PositionError):
                return start
            if isinstance(end, PositionError):
                return end
            if end < start:
                return PositionError(message=f"change range ends before it starts: {change.range}")
            edits.append(AppliedEdit(start=start, removed=doc.text[start:end],
                                     inserted=change.text))
            text = doc.text[:start] + change.text + doc.text[end:]
            doc = Document(uri=doc.uri, text=text, version=version, language_id=doc.language_id)
        final = Document(uri=doc.uri, text=doc.text, version=version, language_id=doc.language_id)
        return final, edits


@dataclass(kw_only=True)
class DocumentStore:
    """The open documents, keyed by URI. Owned by one server instance (not global)."""

    _docs: dict[str, Document] = field(default_factory=dict)

    def open(self, uri: str, text: str, version: int | None, language_id: str = "") -> Document:
        doc = Document(uri=uri, text=text, version=version, language_id=language_id)
        self._docs[uri] = doc
        return doc

    def change(
        self, uri: str, changes: list[TextChange], version: int | None,
        encoding: Encoding = Encoding.UTF16,
    ) -> Document | PositionError:
        """Apply `changes`; an unknown URI or a bad range returns a `PositionError`."""
        result = self.change_with_edits(uri, changes, version, encoding)
        return result if isinstance(result, PositionError) else result[1]

    def change_with_edits(
        self, uri: str, changes: list[TextChange], version: int | None,
        encoding: Encoding = Encoding.UTF16,
    ) -> tuple[Document, Document, list[AppliedEdit]] | PositionError:
        """Apply `changes`; (document before, document after, the applied edits)."""
        doc = self._docs.get(uri)
        if doc is None:
            return PositionError(message=f"change for a document that is not open: {uri}")
        result = doc.apply_edits(changes, version, encoding)
        if isinstance(result, PositionError):
            return result
        self._docs[uri] = result[0]
        return doc, result[0], result[1]

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def all(self) -> list[Document]:
        return list(self._docs.values())

    def __len__(self) -> int:
        return len(self._docs)
