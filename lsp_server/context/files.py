"""Walking a workspace: which files may enter a context, and reading them safely.

A path is allowed when it lies under the root, no exclusion rule matches it and git
would ignore neither it nor any directory above it (`.git/info/exclude`, the root
`.gitignore` and the nested ones, a deeper file overriding a shallower one, as in git).
Reading refuses large, binary, unreadable and vanished files instead of raising.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from lsp_server.context.privacy import ExclusionRules

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 1_000_000
# Like git, a NUL byte near the start marks a file as binary.
_BINARY_SNIFF_BYTES = 8192
DEGRADED_UTF8 = "invalid utf-8 decoded with replacement"


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # posix, relative to the workspace root
    text: str
    size: int  # bytes on disk
    mtime_ns: int
    degraded: str | None = None  # why `text` is not exactly the file's content


def read_source(
    path: Path, rel: str | None = None, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> SourceFile | None:
    """The file as text, or None for a large, binary, non-regular, unreadable or gone file."""
    loaded = load_source(path, rel, max_file_bytes=max_file_bytes)
    return loaded if isinstance(loaded, SourceFile) else None


def load_source(
    path: Path, rel: str | None = None, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> SourceFile | str:
    """Like `read_source`, but says why not: "too large", "binary", "not a regular
    file", "vanished" or "unreadable" (each logged at debug level)."""
    rel = path.as_posix() if rel is None else rel
    try:
        # O_NONBLOCK so that a FIFO in the tree cannot hang us before the S_ISREG check.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return _skip(rel, "not a regular file")
            if st.st_size > max_file_bytes:
                return _skip(rel, "too large", f"{st.st_size} bytes > {max_file_bytes}")
            limit = max_file_bytes + 1  # one more, to notice a file that grew
            data = f.read(min(_BINARY_SNIFF_BYTES, limit))
            if b"\0" in data:
                return _skip(rel, "binary")
            data += f.read(limit - len(data))
    except FileNotFoundError:
        return _skip(rel, "vanished")
    except OSError as exc:
        return _skip(rel, "unreadable", str(exc))
    if len(data) > max_file_bytes:  # grew after the fstat
        return _skip(rel, "too large", f"over {max_file_bytes} bytes")
    degraded = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        degraded = DEGRADED_UTF8
    return SourceFile(Path(path), rel, text, len(data), st.st_mtime_ns, degraded)


def _skip(rel: str, reason: str, detail: str = "") -> str:
    log.debug("skipping %s: %s%s", rel, reason, f" ({detail})" if detail else "")
    return reason


@dataclass(frozen=True)
class _IgnoreFile:
    stamp: tuple[int, int] | None  # (mtime_ns, size) of the file; None: there is none
    spec: pathspec.GitIgnoreSpec | None


# (directory relative to root, its compiled ignore file), shallowest first
_Chain = tuple[tuple[str, pathspec.GitIgnoreSpec], ...]

_INFO_EXCLUDE_KEY = "\0.git/info/exclude"  # cannot collide with a relative directory


class WorkspaceFiles:
    """The files of one workspace that may enter a context.

    Cache: the compiled ignore file of each directory looked at, keyed by the
    directory's posix path relative to root (plus one entry for `.git/info/exclude`).
    Bound: one small entry per directory of the workspace. Invalidation: every lookup
    stats the ignore file and recompiles it when its (mtime_ns, size) changed, appeared
    or disappeared. Lookups from several threads may compile the same file twice; each
    store replaces a whole entry, so readers never see a partial one.
    """

    def __init__(
        self,
        root: Path,
        rules: ExclusionRules,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.rules = rules
        self.max_file_bytes = max_file_bytes
        self._real_root = Path(os.path.realpath(self.root))
        self._ignore_files: dict[str, _IgnoreFile] = {}

    # --- paths ---------------------------------------------------------------------

    def rel(self, path: Path) -> str:
        """`path` relative to the root, in posix form; ValueError when it lies outside."""
        rel = self._rel_or_none(path)
        if rel is None:
            raise ValueError(f"{path} is not under {self.root}")
        return rel

    def _rel_or_none(self, path: Path) -> str | None:
        absolute = Path(os.path.abspath(path))
        # Lexically first: a path through a symlinked directory is inside the workspace
        # even when its target is not. Then resolved, for callers that resolved the path.
        rel = _relative(absolute, self.root)
        if rel is None:
            rel = _relative(Path(os.path.realpath(absolute)), self._real_root)
        return rel

    def allowed(self, path: Path) -> bool:
        """Inside the root, not excluded, and neither it nor a parent ignored by git."""
        rel = self._rel_or_none(path)
        if not rel or not self._inside_root(str(path)):
            return False
        parts = rel.split("/")
        chain = self._base_chain()
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            chain = self._extend(chain, parent)
            sub = "/".join(parts[: depth + 1])
            is_dir = depth < len(parts) - 1
            if self.rules.excluded(sub, is_dir) or _ignored(sub, is_dir, chain):
                return False
        return True

    # --- walking -------------------------------------------------------------------

    def walk(self) -> Iterator[Path]:
        """Every allowed regular file under the root, depth first in name order.

        Symlinked directories inside the root are followed, but each real directory is
        visited once (so a link loop ends and a linked tree is not indexed twice); links that
        lead out of the root are skipped, as git does not follow them; ignored and excluded
        directories are not descended into; unreadable ones are skipped with a log line.
        """
        visited: set[tuple[int, int]] = set()
        try:
            st = os.stat(self.root)
        except OSError as exc:
            log.warning("cannot walk %s: %s", self.root, exc)
            return
        visited.add((st.st_dev, st.st_ino))
        stack: list[tuple[str, str, _Chain]] = [(str(self.root), "", self._base_chain())]
        while stack:
            dir_path, rel_dir, chain = stack.pop()
            chain = self._extend(chain, rel_dir)
            try:
                with os.scandir(dir_path) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                log.info("skipping directory %s: %s", rel_dir or ".", exc)
                continue
            subdirs: list[tuple[str, str, _Chain]] = []
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    is_dir = entry.is_dir()  # follows symlinks
                    is_file = not is_dir and entry.is_file()
                except OSError:
                    continue
                if not (is_dir or is_file):
                    continue  # broken link, socket, FIFO, device
                if entry.is_symlink() and not self._inside_root(entry.path):
                    # A link out of the workspace (to ~/.ssh, say) is not workspace content.
                    log.debug("skipping %s: a link that leaves the workspace", rel)
                    continue
                if self.rules.excluded(rel, is_dir) or _ignored(rel, is_dir, chain):
                    continue
                if is_file:
                    yield Path(entry.path)
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in visited:
                    log.debug("skipping directory %s: already visited through a link", rel)
                    continue
                visited.add(key)
                subdirs.append((entry.path, rel, chain))
            stack.extend(reversed(subdirs))

    def _inside_root(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == str(self._real_root) or real.startswith(str(self._real_root) + os.sep)

    def read(self, path: Path) -> SourceFile | None:
        """The file as text; None when it is outside the root, large, binary, unreadable
        or gone. Whether it is allowed is the caller's question (`allowed`)."""
        loaded = self.load(path)
        return loaded if isinstance(loaded, SourceFile) else None

    def load(self, path: Path) -> SourceFile | str:
        """Like `read`, but a skipped file gives the reason (see `load_source`)."""
        rel = self._rel_or_none(path)
        if not rel:
            return _skip(str(path), "outside the workspace")
        return load_source(self.root / rel, rel, max_file_bytes=self.max_file_bytes)

    # --- ignore files --------------------------------------------------------------

    def _base_chain(self) -> _Chain:
        spec = self._ignore_file(_INFO_EXCLUDE_KEY, self.root / ".git" / "info" / "exclude")
        return () if spec is None else (("", spec),)

    def _extend(self, chain: _Chain, rel_dir: str) -> _Chain:
        spec = self._ignore_file(rel_dir, self.root / rel_dir / ".gitignore")
        return chain if spec is None else (*chain, (rel_dir, spec))

    def _ignore_file(self, key: str, path: Path) -> pathspec.GitIgnoreSpec | None:
        try:
            st = os.stat(path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        cached = self._ignore_files.get(key)
        if cached is not None and cached.stamp == stamp:
            return cached.spec
        spec = None if stamp is None else _compile_ignore_file(path)
        self._ignore_files[key] = _IgnoreFile(stamp, spec)
        return spec


def _relative(path: Path, root: Path) -> str | None:
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return None
    return "" if rel == "." else rel


def _compile_ignore_file(path: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        log.info("ignoring %s: unreadable (%s)", path, exc)
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


def _ignored(rel: str, is_dir: bool, chain: _Chain) -> bool:
    """Git's answer: the deepest ignore file with a matching pattern decides, and
    within it the last matching pattern (`!x` re-includes)."""
    for base, spec in reversed(chain):
        sub = rel[len(base) + 1 :] if base else rel
        result = spec.check_file(sub + "/" if is_dir else sub)
        if result.include is not None:
            return result.include
    return False
