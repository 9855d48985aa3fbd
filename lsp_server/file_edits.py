"""Suggestions as changes to a file: a unified diff, the contract's edit object, and an
atomic write that keeps a backup and refuses a file that changed since it was read."""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_server.documents import Document, Encoding

BACKUP_SUFFIX = ".sparkedit-backup"


class ApplyError(Exception):
    """The file was not written; the message says why (and that nothing was lost)."""


@dataclass(frozen=True, kw_only=True)
class Change:
    """Replace text[start:end] by new_text (string offsets into the original)."""

    start: int
    end: int
    new_text: str


def apply_changes(text: str, changes: Sequence[Change]) -> str:
    """`text` with non-overlapping `changes` applied (any order given)."""
    out = text
    for change in sorted(changes, key=lambda c: c.start, reverse=True):
        assert 0 <= change.start <= change.end <= len(text), "changes lie inside the text"
        out = out[:change.start] + change.new_text + out[change.end:]
    return out


def unified_diff(path: str, before: str, after: str) -> str:
    """A `diff -u` of the two texts, `a/PATH` against `b/PATH`; empty when equal."""
    lines = difflib.unified_diff(before.splitlines(keepends=True),
                                 after.splitlines(keepends=True),
                                 fromfile=f"a/{path}", tofile=f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def edit_object(text: str, changes: Sequence[Change]) -> dict[str, Any] | None:
    """The contract's `edit`: one span from the first change's start to the last change's
    end, 1-based line and column (code points), and that span's new text."""
    if not changes:
        return None
    first = min(c.start for c in changes)
    last = max(c.end for c in changes)
    new_text = apply_changes(text, changes)
    new_span = new_text[first:len(new_text) - (len(text) - last)]
    doc = Document(uri="edit", text=text)

    def point(offset: int) -> dict[str, int]:
        pos = doc.position_at(offset, Encoding.UTF32)
        return {"line": pos.line + 1, "col": pos.character + 1}

    return {"start": point(first), "end": point(last), "new_text": new_span}


def write_with_backup(path: Path, expected: str, new_text: str,
                      workspace: Path | None = None) -> Path:
    """Write `new_text` to `path` atomically, keeping the previous content in a backup
    beside it; refuse (ApplyError) when the file no longer holds `expected` or is read-only.
    A symbolic link is written through (it stays a link), unless it leads out of
    `workspace`. Returns the backup's path."""
    real = path.resolve()
    if real != path.absolute():
        if workspace is not None and not real.is_relative_to(workspace.resolve()):
            raise ApplyError(f"{path} is a link to {real}, outside the workspace "
                             f"{workspace}; nothing was written")
        path = real
    try:
        with open(path, encoding="utf-8", newline="") as f:
            current = f.read()
        mode = stat.S_IMODE(path.stat().st_mode)
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplyError(f"cannot read {path} again: {exc}; nothing was written") from exc
    if current != expected:
        raise ApplyError(f"{path} changed on disk since the suggestion was made; "
                         "nothing was written")
    if not mode & stat.S_IWUSR:
        raise ApplyError(f"{path} is read-only; nothing was written")
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    try:
        write_atomically(backup, current, mode)
        write_atomically(path, new_text, mode)
    except OSError as exc:
        raise ApplyError(f"cannot write {path}: {exc.strerror or exc}; "
                         "the file is as it was") from exc
    return backup


def write_atomically(path: Path, text: str, mode: int) -> None:
    """A temporary file in the same folder, renamed over `path`: readers see the old file
    or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
