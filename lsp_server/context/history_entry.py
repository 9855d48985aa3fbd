"""`HistoryEntry`: one burst of edits as a unified diff, the unit of the edit history.

The language server's `EditHistory` (lsp_server/history.py) records them; the context
builder lays them out. The type lives here so that the context engine depends on nothing
else of the server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HistoryEntry:
    path: str  # workspace-relative (or uri-derived) display path
    diff: str  # unified diff: `--- a/path`, `+++ b/path`, hunks
    seq: int  # increases by one per entry, in the order bursts closed
    closed: bool
