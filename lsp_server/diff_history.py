"""Edit history for a request made without an editor, from a unified diff.

A language server sees every keystroke; `sparkedit suggest` sees one file. Its history
comes from a unified diff that says how the files reached their current text: the file's
uncommitted changes (`git diff HEAD`), or a diff the user names. Each hunk is reversed
against the current text (it must match exactly, as `patch -R` would check) and then
replayed as one burst of `EditHistory`, so the prompt shows the same diffs the language
server would have recorded. The hunk nearest the cursor is replayed last: with no
timestamps in a diff, the change next to the cursor is the likeliest last one.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lsp_server.history import EditHistory, split_lines

_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
MAX_OFFSET_LINES = 200  # how far from its header's line a hunk is looked for
MAX_GIT_DIFF_BYTES = 4_000_000
GIT_TIMEOUT_S = 10


class DiffError(ValueError):
    """The diff is not a unified diff, or does not describe how a file reached its text."""


@dataclass(frozen=True)
class Hunk:
    header: str
    new_start: int  # 0-based line of the new side ("+" and context lines)
    old_lines: tuple[str, ...]  # with their "\n", as the file held them
    new_lines: tuple[str, ...]


@dataclass(frozen=True)
class FileDiff:
    path: str  # the new side's path, "a/" and "b/" taken off
    hunks: tuple[Hunk, ...]


@dataclass(frozen=True)
class Replayed:
    """A hunk placed in the current text: lines [start, start + len(new_lines))."""

    start: int
    hunk: Hunk


def _strip_prefix(name: str) -> str:
    name = name.split("\t", 1)[0].strip()
    if name.startswith(('"', "'")) and name.endswith(name[0]) and len(name) > 1:
        name = name[1:-1]
    return name[2:] if name.startswith(("a/", "b/")) else name


def parse_unified_diff(text: str) -> list[FileDiff]:
    """The file sections of a unified diff (git's or diff -u's); sections without hunks
    (binary files, mode changes) are left out. Raises DiffError on a malformed hunk."""
    files: list[FileDiff] = []
    lines = split_lines(text)
    i, old_path, new_path = 0, None, None
    hunks: list[Hunk] = []

    def flush() -> None:
        path = new_path if new_path not in (None, "/dev/null") else old_path
        if hunks and path is not None:
            files.append(FileDiff(path=path, hunks=tuple(hunks)))

    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            flush()
            hunks = []
            old_path = _strip_prefix(line[4:])
            new_path = _strip_prefix(lines[i + 1][4:])
            i += 2
            continue
        found = _HEADER.match(line)
        if found is None:
            i += 1
            continue
        if new_path is None:
            raise DiffError(f"a hunk ({line.strip()}) before any '--- '/'+++ ' file header")
        old_count = int(found.group(2)) if found.group(2) is not None else 1
        new_count = int(found.group(4)) if found.group(4) is not None else 1
        new_start = int(found.group(3)) - (1 if new_count else 0)
        old: list[str] = []
        new: list[str] = []
        last = ""
        i += 1
        while len(old) < old_count or len(new) < new_count or (
                i < len(lines) and lines[i].startswith("\\")):
            if i >= len(lines):
                raise DiffError(f"hunk {line.strip()} ends early")
            body, i = lines[i], i + 1
            if body.startswith("\\"):  # "\ No newline at end of file": the last line has none
                if last in (" ", "-") and old:
                    old[-1] = old[-1].removesuffix("\n")
                if last in (" ", "+") and new:
                    new[-1] = new[-1].removesuffix("\n")
                continue
            tag, rest = body[:1], body[1:]
            if body == "\n":  # a blank context line whose space an editor took off
                tag, rest = " ", "\n"
            if tag == " ":
                old.append(rest)
                new.append(rest)
            elif tag == "-":
                old.append(rest)
            elif tag == "+":
                new.append(rest)
            else:
                raise DiffError(f"hunk {line.strip()}: a line starting {tag!r}")
            last = tag
        hunks.append(Hunk(header=line.strip(), new_start=new_start,
                          old_lines=tuple(old), new_lines=tuple(new)))
    flush()
    return files


def place_hunks(current: list[str], hunks: tuple[Hunk, ...], name: str) -> list[Replayed]:
    """Where each hunk's new side lies in the current lines: at its header's line or the
    nearest line to it, in order, without overlap. Raises DiffError when one is not there."""
    placed: list[Replayed] = []
    floor = 0
    for number, hunk in enumerate(hunks, 1):
        size = len(hunk.new_lines)
        want = tuple(hunk.new_lines)
        for shift in range(MAX_OFFSET_LINES + 1):
            spots = {hunk.new_start + shift, hunk.new_start - shift}
            found = [s for s in sorted(spots) if s >= floor and s + size <= len(current)
                     and tuple(current[s:s + size]) == want]
            if found:
                placed.append(Replayed(start=found[0], hunk=hunk))
                floor = found[0] + size
                break
        else:
            raise DiffError(f"hunk {number} ({hunk.header}) does not match {name}: the diff "
                            "must describe how the file reached its current text")
    return placed


def reverse_apply(text: str, hunks: tuple[Hunk, ...], name: str) -> str:
    """The text before the diff's changes."""
    lines = split_lines(text)
    out: list[str] = []
    at = 0
    for spot in place_hunks(lines, hunks, name):
        out += lines[at:spot.start] + list(spot.hunk.old_lines)
        at = spot.start + len(spot.hunk.new_lines)
    return "".join(out + lines[at:])


def record_history(history: EditHistory, path: str, text: str, hunks: tuple[Hunk, ...],
                   name: str, *, cursor_line: int | None, now: float) -> int:
    """Replay the hunks of one file into `history` as closed bursts, oldest first (the one
    nearest `cursor_line` last); how many were recorded."""
    lines = split_lines(text)
    placed = place_hunks(lines, hunks, name)
    if cursor_line is not None:
        placed.sort(key=lambda p: -abs(p.start - cursor_line))
    applied: set[int] = set()
    gap = history.burst_gap_s + 1.0
    for n, spot in enumerate(placed):
        # The text with the hunks applied so far: the current lines where applied, the old
        # side elsewhere.
        before: list[str] = []
        at, start = 0, 0
        for other in sorted(placed, key=lambda p: p.start):
            before += lines[at:other.start]
            if other is spot:
                start = len("".join(before))
            side = other.hunk.new_lines if id(other) in applied else other.hunk.old_lines
            before += side
            at = other.start + len(other.hunk.new_lines)
        before += lines[at:]
        removed, inserted = "".join(spot.hunk.old_lines), "".join(spot.hunk.new_lines)
        history.record(path, "".join(before), start, removed, inserted,
                       now - gap * (len(placed) - n))
        applied.add(id(spot))
    history.close_open(now)
    return len(placed)


def git_diff(path: Path) -> tuple[str, str] | None:
    """The file's uncommitted changes, `git diff HEAD`, and its path in the work tree; None
    when it is not a tracked file of a git work tree (or git is missing)."""
    try:
        top = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
        if top.returncode != 0:
            return None
        root = Path(top.stdout.strip())
        rel = path.resolve().relative_to(root.resolve()).as_posix()
        done = subprocess.run(["git", "-C", str(root), "diff", "--no-color", "--no-ext-diff",
                               "--no-renames", "HEAD", "--", rel],
                              capture_output=True, timeout=GIT_TIMEOUT_S)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or len(done.stdout) > MAX_GIT_DIFF_BYTES:
        return None
    return done.stdout.decode("utf-8", "replace"), rel


def history_sections(diff: str, name: str) -> list[FileDiff]:
    try:
        sections = parse_unified_diff(diff)
    except DiffError as exc:
        raise DiffError(f"{name} is not a unified diff: {exc}") from exc
    if not sections:
        raise DiffError(f"{name} holds no unified diff hunks")
    return sections
