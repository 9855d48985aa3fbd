"""All conversion between LSP (lsprotocol) types and sparkedit's domain types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lsprotocol import types

from lsp_server.completion import Suggestion
from lsp_server.documents import Encoding, Position, Range, TextChange


def encoding(kind: types.PositionEncodingKind | str | None) -> Encoding:
    """The negotiated position encoding (pygls picks it at initialize)."""
    return Encoding.parse(getattr(kind, "value", kind))


def position(pos: types.Position) -> Position:
    return Position(line=pos.line, character=pos.character)


def changes(content_changes: Sequence[types.TextDocumentContentChangeEvent]) -> list[TextChange]:
    out = []
    for change in content_changes:
        lsp_range = getattr(change, "range", None)
        if lsp_range is None:  # TextDocumentContentChangeWholeDocument
            out.append(TextChange(text=change.text))
        else:
            out.append(TextChange(text=change.text, range=Range(
                start=position(lsp_range.start), end=position(lsp_range.end))))
    return out


def inline_items(suggestion: Suggestion | None,
                 at: types.Position) -> list[types.InlineCompletionItem]:
    """Ghost text at the cursor; nothing for an empty suggestion (nothing to show)."""
    if suggestion is None or not suggestion.text:
        return []
    return [types.InlineCompletionItem(insert_text=suggestion.text,
                                       range=types.Range(start=at, end=at))]


def param(params: Any, name: str) -> Any:
    """A field of a custom request's params, which pygls hands over as a dict or an
    attribute object depending on how it deserialised them; None when absent."""
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)
