"""index.py and imports.py: a workspace's tags, kept current file by file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lsp_server.context.files import WorkspaceFiles
from lsp_server.context.imports import resolve_import
from lsp_server.context.index import WorkspaceIndex
from lsp_server.context.languages import LanguageRegistry
from lsp_server.context.privacy import ExclusionRules

SOURCES = {
    "pkg/__init__.py": "",
    "pkg/util.py": (
        "import os\n\n\ndef helper(x):\n    return os.path.join(x, 'y')\n\n\n"
        "class Thing:\n    def run(self):\n        return helper(1)\n"
    ),
    "pkg/app.py": (
        "from .util import helper\nfrom pkg import util\nimport os\n\n\n"
        "def main():\n    helper(2)\n    helper(3)\n    return util.Thing().run()\n"
    ),
    "scripts/run.py": "from pkg.app import main\n\nmain()\n",
    "web/util.js": "export function formatDate(d) {\n  return d.toISOString();\n}\n",
    "web/lib/index.ts": "export function parse(s: string): number {\n  return Number(s);\n}\n",
    "web/app.js": (
        "import { formatDate } from './util';\nimport { parse } from './lib';\n"
        "import React from 'react';\n\nformatDate(new Date());\nparse('1');\n"
    ),
    "README.md": "# demo\n",
    "broken.py": "def good():\n    pass\n\ndef broken(:\n    x = = 1\n",
    # never indexed:
    ".gitignore": "generated/\n",
    "generated/gen.py": "def helper():\n    pass\n",
    "node_modules/dep/index.js": "export function formatDate() {}\n",
    ".env": "API_KEY=abc123def456ghi\n",
}


def make_workspace(root: Path, sources: dict[str, str]) -> None:
    for rel, text in sources.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_index(root: Path, **bounds: int) -> WorkspaceIndex:
    files = WorkspaceFiles(root, ExclusionRules.create())
    return WorkspaceIndex(root, files=files, registry=LanguageRegistry(), **bounds)


@pytest.fixture
def index(tmp_path: Path) -> WorkspaceIndex:
    make_workspace(tmp_path, SOURCES)
    index = make_index(tmp_path)
    index.build()
    return index


def names(index: WorkspaceIndex, rel: str) -> list[str]:
    entry = index.get(rel)
    assert entry is not None
    return [tag.name for tag in entry.definitions]


def test_build_indexes_allowed_files_only(index: WorkspaceIndex) -> None:
    assert [e.rel for e in index.entries()] == [
        ".gitignore",
        "README.md",
        "broken.py",
        "pkg/__init__.py",
        "pkg/app.py",
        "pkg/util.py",
        "scripts/run.py",
        "web/app.js",
        "web/lib/index.ts",
        "web/util.js",
    ]
    readme = index.get("README.md")
    assert readme is not None and readme.language is None and readme.definitions == ()
    stats = index.stats()
    assert stats["files"] == 10
    assert stats["bytes_indexed"] == sum(len(SOURCES[e.rel].encode()) for e in index.entries())


def test_definitions_references_and_imports(index: WorkspaceIndex) -> None:
    assert names(index, "pkg/util.py") == ["helper", "Thing", "run"]
    [(rel, tag)] = index.definitions_of("helper")
    assert rel == "pkg/util.py"
    assert (tag.kind, tag.line, tag.def_start_line, tag.def_end_line) == ("function", 3, 3, 4)
    [(rel, _)] = index.definitions_of("formatDate")
    assert rel == "web/util.js"
    app = index.get("pkg/app.py")
    assert app is not None
    assert dict(app.references)["helper"] == 3  # the import and two calls
    assert app.imports == (".util", "pkg", "os")
    js = index.get("web/app.js")
    assert js is not None and js.imports == ("./util", "./lib", "react")
    assert dict(js.references)["formatDate"] == 2  # the import and the call


def test_syntax_errors_keep_the_tags_that_parse(index: WorkspaceIndex) -> None:
    assert "good" in names(index, "broken.py")


def test_update_file_after_an_edit(index: WorkspaceIndex, tmp_path: Path) -> None:
    generation = index.generation
    path = tmp_path / "pkg" / "util.py"
    path.write_text("def assist(x):\n    return x\n", encoding="utf-8")
    index.update_file(path)
    assert names(index, "pkg/util.py") == ["assist"]
    assert index.definitions_of("helper") == []
    assert index.definitions_of("assist")[0][0] == "pkg/util.py"
    assert index.generation > generation

    generation = index.generation
    index.update_file(path, "def from_buffer():\n    pass\n")  # an unsaved editor buffer
    assert names(index, "pkg/util.py") == ["from_buffer"]
    entry = index.get("pkg/util.py")
    assert entry is not None and entry.mtime_ns == 0
    assert index.generation > generation


def test_remove_file(index: WorkspaceIndex, tmp_path: Path) -> None:
    generation = index.generation
    index.remove_file(tmp_path / "pkg" / "util.py")
    assert index.get("pkg/util.py") is None
    assert index.definitions_of("helper") == []
    assert index.generation > generation
    index.remove_file(tmp_path.parent / "elsewhere.py")  # outside: ignored


def test_ignored_and_excluded_files_are_never_indexed(
    index: WorkspaceIndex, tmp_path: Path
) -> None:
    for rel in ["generated/gen.py", "node_modules/dep/index.js", ".env"]:
        index.update_file(tmp_path / rel)
        index.update_file(tmp_path / rel, "def sneaky():\n    pass\n")
        assert index.get(rel) is None
    assert index.definitions_of("sneaky") == []
    assert [rel for rel, _ in index.definitions_of("helper")] == ["pkg/util.py"]


def test_resolve_import_python_and_js(index: WorkspaceIndex) -> None:
    assert index.resolve_import("pkg/app.py", ".util") == "pkg/util.py"
    assert index.resolve_import("pkg/app.py", "pkg") == "pkg/__init__.py"
    assert index.resolve_import("pkg/app.py", ".") == "pkg/__init__.py"
    assert index.resolve_import("scripts/run.py", "pkg.app") == "pkg/app.py"
    assert index.resolve_import("pkg/app.py", "os") is None
    assert index.resolve_import("pkg/app.py", "...toofar") is None
    assert index.resolve_import("web/app.js", "./util") == "web/util.js"
    assert index.resolve_import("web/app.js", "./lib") == "web/lib/index.ts"
    assert index.resolve_import("web/app.js", "react") is None


def test_rebuild_keeps_unchanged_entries_and_forgets_deleted_files(
    index: WorkspaceIndex, tmp_path: Path
) -> None:
    before = index.get("pkg/app.py")
    (tmp_path / "scripts" / "run.py").unlink()
    index.build()
    assert index.get("pkg/app.py") is before
    assert index.get("scripts/run.py") is None


def test_build_reports_progress_and_stops_when_cancelled(tmp_path: Path) -> None:
    make_workspace(tmp_path, {f"m{i:03}.py": f"def f{i}():\n    pass\n" for i in range(120)})
    index = make_index(tmp_path)
    calls: list[tuple[int, int]] = []
    index.build(progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 120), (50, 120), (100, 120), (120, 120)]

    index = make_index(tmp_path)
    asked = 0

    def cancelled() -> bool:
        nonlocal asked
        asked += 1
        return asked > 130  # 120 while walking, then 10 files

    index.build(cancelled=cancelled)
    assert len(index.entries()) == 10


def test_bounds_skip_files(tmp_path: Path) -> None:
    make_workspace(tmp_path, {f"m{i}.py": "def f():\n    g()\n" for i in range(5)})
    index = make_index(tmp_path, max_files=3)
    index.build()
    assert len(index.entries()) == 3
    assert index.stats()["skipped"] == {"max_files": 2}

    index = make_index(tmp_path, max_tags=5)  # two tags per file
    index.build()
    assert len(index.entries()) == 2
    assert index.stats()["skipped"] == {"max_tags": 3}


def test_readers_during_a_build_in_another_thread(tmp_path: Path) -> None:
    make_workspace(
        tmp_path, {f"d{i % 7}/m{i}.py": f"def f{i}():\n    f{i - 1}()\n" for i in range(300)}
    )
    index = make_index(tmp_path)
    worker = threading.Thread(target=index.build)
    worker.start()
    while worker.is_alive():
        index.entries()
        index.definitions_of("f10")
        index.resolve_import("d0/m0.py", ".m7")
        index.stats()
    worker.join()
    assert len(index.entries()) == 300
    assert index.resolve_import("d0/m0.py", ".m7") == "d0/m7.py"


DIRS = {
    "": {"go.mod"},
    "src": {"lib.rs", "net.rs", "main.c"},
    "src/net": {"tcp.rs"},
    "src/util": {"mod.rs"},
    "include/proj": {"api.h"},
    "pkg/server": {"server.go", "server_test.go"},
    "java/src/main/java/com/x/util": {"Helper.java"},
}


@pytest.mark.parametrize(
    ("language", "from_rel", "imported", "expected"),
    [
        ("rust", "src/lib.rs", "crate::net::tcp::Stream", "src/net/tcp.rs"),
        ("rust", "src/lib.rs", "crate::util::{a, b}", "src/util/mod.rs"),
        ("rust", "src/lib.rs", "self::net", "src/net.rs"),
        ("rust", "src/net.rs", "self::tcp", "src/net/tcp.rs"),
        ("rust", "src/net/tcp.rs", "super::super::util::x", "src/util/mod.rs"),
        ("rust", "src/lib.rs", "std::io", None),
        ("go", "main.go", "github.com/acme/proj/pkg/server", "pkg/server/server.go"),
        ("go", "main.go", "fmt", None),
        (
            "java",
            "java/src/main/java/com/x/App.java",
            "com.x.util.Helper",
            "java/src/main/java/com/x/util/Helper.java",
        ),
        (
            "java",
            "App.java",
            "com.x.util.Helper.assist",
            "java/src/main/java/com/x/util/Helper.java",
        ),
        ("c", "src/main.c", "proj/api.h", "include/proj/api.h"),
        ("c", "src/main.c", "stdio.h", None),
        (None, "notes.txt", "anything", None),
    ],
)
def test_resolve_import_other_languages(
    language: str | None, from_rel: str, imported: str, expected: str | None
) -> None:
    assert resolve_import(language, from_rel, imported, DIRS) == expected
