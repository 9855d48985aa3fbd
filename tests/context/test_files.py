"""files.py: what a workspace walk yields and what reading a file gives."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lsp_server.context.files import DEGRADED_UTF8, WorkspaceFiles, read_source
from lsp_server.context.privacy import ExclusionRules

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def write(root: Path, rel: str, content: str | bytes = "x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def walked(files: WorkspaceFiles) -> list[str]:
    return [files.rel(path) for path in files.walk()]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    for rel in [
        "main.py",
        "debug.log",
        "local.py",
        "out/bundle.js",
        "src/app.py",
        "src/local.py",
        "src/anchored.py",
        "src/deeper/anchored.py",
        "src/deeper/local.py",
        "gen/a.py",
        "gen/keep.py",
        "notes/secret_notes.txt",
        "notes/plan.txt",
        "cache/x.tmp",
        "cache/special/important.tmp",
        "cache/special/other.tmp",
        ".env",
        "node_modules/lib/index.js",
    ]:
        write(tmp_path, rel)
    write(tmp_path, ".gitignore", "*.log\nout/\n*.tmp\n")
    write(tmp_path, "src/.gitignore", "local.py\n/anchored.py\n")
    write(tmp_path, "gen/.gitignore", "*.py\n!keep.py\n")
    write(tmp_path, "cache/special/.gitignore", "!important.tmp\n")
    write(tmp_path, ".git/info/exclude", "secret_notes.txt\n")
    write(tmp_path, ".git/HEAD", "ref: refs/heads/main\n")
    return tmp_path


def test_walk_respects_gitignore_files_and_exclusions(workspace: Path) -> None:
    files = WorkspaceFiles(workspace, ExclusionRules.create())
    assert walked(files) == [
        ".gitignore",
        "local.py",
        "main.py",
        "cache/special/.gitignore",
        "cache/special/important.tmp",  # a deeper `!` overrides the root's `*.tmp`
        "gen/.gitignore",
        "gen/keep.py",
        "notes/plan.txt",
        "src/.gitignore",
        "src/app.py",
        "src/deeper/anchored.py",  # `/anchored.py` is anchored to src/
    ]


def test_allowed_agrees_with_walk(workspace: Path) -> None:
    files = WorkspaceFiles(workspace, ExclusionRules.create())
    listed = set(walked(files))
    every = [p for p in workspace.rglob("*") if p.is_file()]
    for path in every:
        assert files.allowed(path) == (files.rel(path) in listed), path
    assert not files.allowed(workspace.parent / "elsewhere.py")
    assert not files.allowed(workspace)


def test_excluded_and_ignored_directories_are_not_entered(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanned: list[str] = []
    real_scandir = os.scandir

    def spy(path):  # type: ignore[no-untyped-def]
        scanned.append(Path(path).relative_to(workspace).as_posix())
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    walked(WorkspaceFiles(workspace, ExclusionRules.create()))
    assert not {"node_modules", "node_modules/lib", ".git", "out"} & set(scanned)
    assert "src/deeper" in scanned


def test_gitignore_change_is_seen(workspace: Path) -> None:
    files = WorkspaceFiles(workspace, ExclusionRules.create())
    assert files.allowed(workspace / "main.py")
    ignore = workspace / ".gitignore"
    ignore.write_text("*.log\nout/\n*.tmp\nmain.py\n", encoding="utf-8")
    stamp = time.time_ns() + 5_000_000_000  # a different mtime even on coarse clocks
    os.utime(ignore, ns=(stamp, stamp))
    assert not files.allowed(workspace / "main.py")


def test_symlink_loop_terminates(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    write(tmp_path, "a/b/mod.py")
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "self").symlink_to(tmp_path, target_is_directory=True)
    linked = tmp_path_factory.mktemp("linked")
    write(linked, "lib.py")
    (tmp_path / "vendor").symlink_to(linked, target_is_directory=True)
    (tmp_path / "broken").symlink_to(tmp_path / "missing")
    (tmp_path / "inside").symlink_to(tmp_path / "a" / "b", target_is_directory=True)
    files = WorkspaceFiles(tmp_path, ExclusionRules.create())
    # A link inside the root is followed once; a link out of the workspace is not content.
    assert walked(files) in (["a/b/mod.py"], ["inside/mod.py"])  # one copy of a linked tree
    assert not files.allowed(tmp_path / "vendor" / "lib.py")
    assert files.allowed(tmp_path / "a" / "b" / "mod.py")


def test_read_text_and_metadata(tmp_path: Path) -> None:
    path = write(tmp_path, "src/mod.py", "π = 3.14\n")
    files = WorkspaceFiles(tmp_path, ExclusionRules.create())
    source = files.read(path)
    assert source is not None
    assert (source.rel, source.text, source.size) == ("src/mod.py", "π = 3.14\n", 10)
    assert source.path == path and source.degraded is None
    assert source.mtime_ns == path.stat().st_mtime_ns


def test_binary_huge_and_missing_files_are_skipped(tmp_path: Path) -> None:
    files = WorkspaceFiles(tmp_path, ExclusionRules.create(), max_file_bytes=100)
    binary = write(tmp_path, "image.dat", b"GIF89a\x00\x01\x02" + b"x" * 50)
    huge = write(tmp_path, "huge.py", "x = 1\n" * 20)
    fits = write(tmp_path, "fits.py", "x = 1\n" * 16)
    assert files.read(binary) is None
    assert files.load(binary) == "binary"
    assert files.read(huge) is None
    assert files.load(huge) == "too large"
    assert files.read(fits) is not None
    assert files.read(tmp_path / "gone.py") is None
    assert files.load(tmp_path / "gone.py") == "vanished"
    assert files.read(tmp_path.parent / "outside.py") is None


def test_invalid_utf8_is_degraded(tmp_path: Path) -> None:
    path = write(tmp_path, "latin.py", b"name = '\xe9t\xe9'\n")
    source = read_source(path)
    assert source is not None
    assert source.text == "name = '\ufffdt\ufffd'\n"
    assert source.degraded == DEGRADED_UTF8


def test_fifo_is_not_read(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "pipe.py")
    write(tmp_path, "real.py")
    files = WorkspaceFiles(tmp_path, ExclusionRules.create())
    assert walked(files) == ["real.py"]
    assert files.read(tmp_path / "pipe.py") is None  # and it did not block


@pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their mode")
def test_unreadable_file_and_directory_are_skipped(tmp_path: Path) -> None:
    secret = write(tmp_path, "locked.py")
    write(tmp_path, "closed/inner.py")
    write(tmp_path, "open.py")
    secret.chmod(0)
    (tmp_path / "closed").chmod(0)
    try:
        files = WorkspaceFiles(tmp_path, ExclusionRules.create())
        assert walked(files) == ["locked.py", "open.py"]
        assert files.read(secret) is None
        assert files.load(secret) == "unreadable"
    finally:
        (tmp_path / "closed").chmod(0o755)
        secret.chmod(0o644)


def test_permission_errors_are_skipped_even_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "closed/inner.py")
    locked = write(tmp_path, "locked.py")
    write(tmp_path, "open.py")
    real_scandir, real_open = os.scandir, os.open

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path).name == "closed":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def open_(path, *args):  # type: ignore[no-untyped-def]
        if Path(path).name == "locked.py":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "open", open_)
    files = WorkspaceFiles(tmp_path, ExclusionRules.create())
    assert walked(files) == ["locked.py", "open.py"]
    assert files.load(locked) == "unreadable"
