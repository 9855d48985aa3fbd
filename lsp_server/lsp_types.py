"""All conversion between LSP (lsprotocol) types and sparkedit's domain types."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lsprotocol import types

from lsp_server.completion import Suggestion
from lsp_server.documents import Encoding, Position, Range, TextChange

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


def inline_items(suggestion: Suggestion | None,
                 at: types.Position) -> list[types.InlineCompletionItem]:
    """Ghost text at the cursor; nothing for an empty suggestion (nothing to show)."""
    if suggestion is None or not suggestion.text:
        return []
    return [types.InlineCompletionItem(insert_text=suggestion.text,
                                       range=types.Range(start=at, end=at))]


def root_folder(params: types.InitializeParams) -> str | None:
    """The workspace root's local path: the first workspace folder, else rootUri/rootPath."""
    from lsp_server.workspace import path_of_uri  # local: lsp_types stays light to import

    for uri in [f.uri for f in params.workspace_folders or []] + [params.root_uri or ""]:
        path = path_of_uri(uri) if uri else None
        if path is not None and path.is_dir():
            return str(path)
    return params.root_path or None


def workspace_options(options: Any) -> dict[str, Any]:
    """`WorkspaceSettings` fields from `initializationOptions` (camelCase on the wire);
    anything malformed is ignored with a log line rather than failing initialize."""
    out: dict[str, Any] = {}
    if not isinstance(options, dict):
        return out
    exclude = options.get("exclude")
    if isinstance(exclude, list) and all(isinstance(p, str) for p in exclude):
        out["exclude"] = tuple(exclude)
    elif exclude is not None:
        log.warning("initializationOptions.exclude must be a list of strings; ignored")
    size = options.get("maxFileBytes")
    if isinstance(size, int) and size > 0:
        out["max_file_bytes"] = size
    elif size is not None:
        log.warning("initializationOptions.maxFileBytes must be a positive integer; ignored")
    return out


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


def param(params: Any, name: str) -> Any:
    """A field of a custom request's params, which pygls hands over as a dict or an
    attribute object depending on how it deserialised them; None when absent."""
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)
