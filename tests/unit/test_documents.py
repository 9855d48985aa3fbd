"""documents.py: random incremental edits equal a reference string; positions in all encodings."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.documents import (
    Document,
    DocumentStore,
    Encoding,
    Position,
    PositionError,
    Range,
    TextChange,
)

# Astral characters (2 utf-16 units, 4 utf-8 bytes), 2- and 3-byte ones, and every
# line terminator the LSP knows, so each conversion path is exercised.
ALPHABET = st.sampled_from(["a", "b", " ", "é", "中", "😀", "\n", "\r\n", "\r", "\t"])
TEXT = st.lists(ALPHABET, max_size=40).map("".join)


def reference_lines(text: str) -> list[tuple[int, str]]:
    """(start offset, content) of each line, written independently of documents.py."""
    parts = re.split(r"(\r\n|\r|\n)", text)
    lines, offset = [], 0
    for i in range(0, len(parts), 2):
        lines.append((offset, parts[i]))
        offset += len(parts[i]) + (len(parts[i + 1]) if i + 1 < len(parts) else 0)
    return lines


def units(text: str, encoding: Encoding) -> int:
    if encoding is Encoding.UTF16:
        return len(text.encode("utf-16-le")) // 2
    if encoding is Encoding.UTF8:
        return len(text.encode("utf-8"))
    return len(text)


def pick_position(text: str, line_pick: int, char_pick: int, encoding: Encoding):
    """A valid position in `text` and its reference offset."""
    lines = reference_lines(text)
    start, content = lines[line_pick % len(lines)]
    cp = char_pick % (len(content) + 1)
    pos = Position(line=line_pick % len(lines), character=units(content[:cp], encoding))
    return pos, start + cp


EDIT = st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
                 st.integers(0, 99), TEXT)


@settings(max_examples=300, deadline=None)
@given(initial=TEXT, edits=st.lists(EDIT, max_size=12),
       encoding=st.sampled_from(list(Encoding)))
def test_random_incremental_edits_equal_reference(initial, edits, encoding):
    store = DocumentStore()
    store.open("file:///a.py", initial, 0, "python")
    reference = initial
    for version, (l1, c1, l2, c2, new) in enumerate(edits, start=1):
        p1, o1 = pick_position(reference, l1, c1, encoding)
        p2, o2 = pick_position(reference, l2, c2, encoding)
        if o2 < o1:
            p1, o1, p2, o2 = p2, o2, p1, o1
        reference = reference[:o1] + new + reference[o2:]
        result = store.change("file:///a.py", [TextChange(range=Range(start=p1, end=p2),
                                                          text=new)], version, encoding)
        assert isinstance(result, Document), result
        assert result.text == reference
        assert result.version == version


@settings(max_examples=200, deadline=None)
@given(initial=TEXT, edits=st.lists(EDIT, min_size=1, max_size=5),
       encoding=st.sampled_from(list(Encoding)))
def test_applied_edits_replay_the_change_and_name_the_removed_text(initial, edits, encoding):
    store = DocumentStore()
    store.open("file:///a.py", initial, 0, "python")
    reference, changes = initial, []
    for l1, c1, l2, c2, new in edits:  # several changes in one didChange, applied in order
        p1, o1 = pick_position(reference, l1, c1, encoding)
        p2, o2 = pick_position(reference, l2, c2, encoding)
        if o2 < o1:
            p1, o1, p2, o2 = p2, o2, p1, o1
        reference = reference[:o1] + new + reference[o2:]
        changes.append(TextChange(range=Range(start=p1, end=p2), text=new))
    result = store.change_with_edits("file:///a.py", changes, 1, encoding)
    assert not isinstance(result, PositionError), result
    before, after, applied = result
    assert before.text == initial and after.text == reference and len(applied) == len(changes)
    replay = initial
    for edit in applied:
        assert replay[edit.start:edit.start + len(edit.removed)] == edit.removed
        replay = replay[:edit.start] + edit.inserted + replay[edit.start + len(edit.removed):]
    assert replay == reference


@settings(max_examples=300, deadline=None)
@given(text=TEXT, offset=st.integers(0, 60), encoding=st.sampled_from(list(Encoding)))
def test_offset_position_round_trip(text, offset, encoding):
    doc = Document(uri="u", text=text)
    offset = min(offset, len(text))
    if text[offset - 1:offset + 1] == "\r\n":
        offset -= 1  # inside a terminator: no position names it
    pos = doc.position_at(offset, encoding)
    assert doc.offset_at(pos, encoding) == offset


def test_utf16_counts_surrogate_pairs_and_utf8_counts_bytes():
    doc = Document(uri="u", text="x = '😀é'\nnext")
    # After the emoji: 5 + 2 utf-16 units, 5 + 4 utf-8 bytes, 5 + 1 code points.
    assert doc.offset_at(Position(line=0, character=7), Encoding.UTF16) == 6
    assert doc.offset_at(Position(line=0, character=9), Encoding.UTF8) == 6
    assert doc.offset_at(Position(line=0, character=6), Encoding.UTF32) == 6
    assert doc.offset_at(Position(line=1, character=2)) == 11
    assert doc.position_at(7, Encoding.UTF8) == Position(line=0, character=11)


def test_out_of_range_positions_are_error_values():
    doc = Document(uri="u", text="ab\n😀")
    for pos, enc in [
        (Position(line=2, character=0), Encoding.UTF16),
        (Position(line=0, character=3), Encoding.UTF16),
        (Position(line=1, character=1), Encoding.UTF16),  # splits the surrogate pair
        (Position(line=1, character=2), Encoding.UTF8),  # splits the 4-byte sequence
        (Position(line=-1, character=0), Encoding.UTF16),
    ]:
        result = doc.offset_at(pos, enc)
        assert isinstance(result, PositionError), (pos, enc)
        assert result.message


def test_change_clamps_like_the_spec_and_rejects_bad_lines():
    store = DocumentStore()
    store.open("u", "ab\ncd", 1)
    # Character past the line end defaults back to the line length (LSP rule for edits).
    doc = store.change("u", [TextChange(range=Range(start=Position(line=0, character=9),
                                                    end=Position(line=0, character=9)),
                                        text="!")], 2)
    assert isinstance(doc, Document) and doc.text == "ab!\ncd"
    bad = store.change("u", [TextChange(range=Range(start=Position(line=7, character=0),
                                                    end=Position(line=7, character=0)),
                                        text="x")], 3)
    assert isinstance(bad, PositionError)
    assert store.get("u").text == "ab!\ncd" and store.get("u").version == 2


def test_full_replacement_and_multiple_changes_apply_in_order():
    store = DocumentStore()
    store.open("u", "hello", 1)
    changes = [
        TextChange(text="abc\ndef"),
        TextChange(range=Range(start=Position(line=1, character=0),
                               end=Position(line=1, character=1)), text="D"),
        TextChange(range=Range(start=Position(line=0, character=3),
                               end=Position(line=1, character=0)), text=""),
    ]
    doc = store.change("u", changes, 2)
    assert isinstance(doc, Document) and doc.text == "abcDef"
    assert isinstance(store.change("file:///missing", changes, 1), PositionError)
    store.close("u")
    assert store.get("u") is None


def test_encoding_parse_defaults_to_utf16():
    assert Encoding.parse(None) is Encoding.UTF16
    assert Encoding.parse("utf-8") is Encoding.UTF8
    assert Encoding.parse("utf-7") is Encoding.UTF16


@settings(max_examples=300, deadline=None)
@given(text=TEXT, chunk=st.integers(1, 9))
def test_line_starts_of_large_texts_match_the_reference_across_chunk_boundaries(text, chunk):
    import lsp_server.documents as documents

    saved = documents._CHUNK
    documents._CHUNK = chunk  # small chunks: every "\r\n" split over a boundary is tried
    try:
        starts = documents.line_starts(text)
    finally:
        documents._CHUNK = saved
    assert starts.tolist() == [start for start, _ in reference_lines(text)]


def test_a_large_document_converts_positions_like_a_small_one(monkeypatch):
    import lsp_server.documents as documents

    text = "x = 1\r\né = '😀'\rprint(x)\n\n" * 50
    small = Document(uri="u", text=text)
    assert isinstance(small._line_starts, list)  # computed now, before the threshold moves
    monkeypatch.setattr(documents, "LARGE_TEXT", 0)
    large = Document(uri="u", text=text)
    assert isinstance(large._line_starts, documents.np.ndarray)
    for offset in range(0, len(text), 7):
        if text[offset - 1:offset + 1] == "\r\n":
            continue
        for encoding in Encoding:
            pos = large.position_at(offset, encoding)
            assert pos == small.position_at(offset, encoding)
            assert type(pos.line) is int and type(pos.character) is int
            assert large.offset_at(pos, encoding) == offset
            assert type(large.offset_at(pos, encoding)) is int
    assert large.line_count == small.line_count and large.line_text(3) == small.line_text(3)
