"""All conversion between LSP (lsprotocol) types and sparkedit's domain types."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from lsp_server.documents import Document, Encoding, Position, Range, TextChange

if TYPE_CHECKING:
    from lsp_server.edit_flow import EditSuggestion
    from lsp_server.inline import InlineAnswer

log = logging.getLogger(__name__)


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


def inline_items(answer: InlineAnswer | None, at: types.Position,
                 accept_command: str) -> list[types.InlineCompletionItem]:
    """Ghost text at the cursor; nothing for an empty answer (nothing to show). The item's
    command carries the suggestion's id: an editor runs it on accept, and clients send
    the id with `sparkedit/didShow`, `didAccept` and `didReject`."""
    if answer is None or not answer.text:
        return []
    command = types.Command(title="sparkedit: suggestion accepted", command=accept_command,
                            arguments=[answer.id])
    return [types.InlineCompletionItem(insert_text=answer.text,
                                       range=types.Range(start=at, end=at), command=command)]


def lsp_position(doc: Document, offset: int, encoding: Encoding) -> types.Position:
    pos = doc.position_at(offset, encoding)
    return types.Position(line=pos.line, character=pos.character)


def text_edits(doc: Document, edit: EditSuggestion, encoding: Encoding) -> list[types.TextEdit]:
    return [types.TextEdit(range=types.Range(start=lsp_position(doc, e.start, encoding),
                                             end=lsp_position(doc, e.end, encoding)),
                           new_text=e.new_text) for e in edit.edits]


def next_edit_result(doc: Document, edit: EditSuggestion, encoding: Encoding,
                     suggestion_id: str) -> dict[str, Any]:
    """`{edits: [{range, newText}], id, textDocument}` (camelCase: sent as is)."""
    edits = [{"range": {"start": {"line": e.range.start.line,
                                  "character": e.range.start.character},
                        "end": {"line": e.range.end.line, "character": e.range.end.character}},
              "newText": e.new_text} for e in text_edits(doc, edit, encoding)]
    if not edits:
        return {"edits": []}
    return {"edits": edits, "id": suggestion_id,
            "textDocument": {"uri": doc.uri, "version": doc.version}}


def workspace_edit(doc: Document, edit: EditSuggestion,
                   encoding: Encoding) -> types.WorkspaceEdit:
    """The rewrite as versioned document changes: a client applies it only to the version
    it was computed for."""
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri,
                                                                    version=doc.version),
        edits=text_edits(doc, edit, encoding))])


def root_folder(params: types.InitializeParams) -> str | None:
    """The workspace root's local path: the first workspace folder, else rootUri/rootPath."""
    from lsp_server.workspace import path_of_uri  # local: lsp_types stays light to import

    for uri in [f.uri for f in params.workspace_folders or []] + [params.root_uri or ""]:
        path = path_of_uri(uri) if uri else None
        if path is not None and path.is_dir():
            return str(path)
    return params.root_path or None


def supports_progress(capabilities: types.ClientCapabilities | None) -> bool:
    window = capabilities.window if capabilities else None
    return bool(window and window.work_done_progress)


def supports_watched_files(capabilities: types.ClientCapabilities | None) -> bool:
    ws = capabilities.workspace if capabilities else None
    watched = ws.did_change_watched_files if ws else None
    return bool(watched and watched.dynamic_registration)


async def register_file_watchers(server: Any) -> None:
    """Ask the client to report created, changed and deleted files under the workspace."""
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern="**/*")])
    registration = types.Registration(id="sparkedit-watched-files",
                                      method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                      register_options=options)
    try:
        await server.client_register_capability_async(
            types.RegistrationParams(registrations=[registration]))
    except Exception as exc:  # a client that refuses: the index still refreshes on save
        log.info("file watchers not registered: %s", exc)


def param_position(params: Any) -> Position | None:
    """A custom request's `position` ({line, character}, non-negative ints) or None."""
    pos = param(params, "position")
    line, character = param(pos, "line"), param(pos, "character")
    if isinstance(line, int) and isinstance(character, int) and line >= 0 and character >= 0:
        return Position(line=line, character=character)
    return None


def edit_selection_args(args: Sequence[Any]) -> tuple[str, Position, Position, str] | None:
    """`[uri, range, instruction]` of `sparkedit.editSelection`, validated, or None."""
    if len(args) != 3:
        return None
    uri, lsp_range, instruction = args
    start = param_position({"position": param(lsp_range, "start")})
    end = param_position({"position": param(lsp_range, "end")})
    if not isinstance(uri, str) or start is None or end is None \
            or not isinstance(instruction, str) or not instruction.strip():
        return None
    return uri, start, end, instruction


def param(params: Any, name: str) -> Any:
    """A field of a custom request's params, which pygls hands over as a dict or an
    attribute object depending on how it deserialised them; None when absent."""
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)
