"""What a source file imports, and which workspace file that is.

Extraction runs `queries/<language>-imports.scm` over the file's tree and keeps each
module as written (`os.path`, `./util`, `crate::foo::Bar`, `stdio.h`). Resolution is
best effort: one small rule per language proposes candidate paths, and the first one
that is an indexed file wins. Packages outside the workspace resolve to None.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Set
from pathlib import Path

from tree_sitter import Node, Query, QueryCursor, QueryError, Tree

from lsp_server.context.languages import QUERIES_DIR, LanguageSpec, read_query

log = logging.getLogger(__name__)

# directory relative to the root ("" for the root) -> names of the indexed files in it
Dirs = Mapping[str, Set[str]]

# Imports start at most this deep in the tree (a method's body is 5 deep in Python).
# Deeper ones are rare, and not looking for them halves the extraction time.
_MAX_DEPTH = 6


class ImportQueries:
    """The compiled imports query of each language.

    Cache: key the language name; bound: one entry per supported language; never
    invalidated. A query that fails to load is cached as None and logged once, and
    files of that language then report no imports.
    """

    def __init__(self, queries_dir: Path = QUERIES_DIR) -> None:
        self._dir = queries_dir
        self._queries: dict[str, Query | None] = {}

    def extract(self, spec: LanguageSpec, tree: Tree) -> tuple[str, ...]:
        """The modules `tree` imports, in source order, without duplicates."""
        query = self._query(spec)
        if query is None:
            return ()
        cursor = QueryCursor(query)
        cursor.set_max_start_depth(_MAX_DEPTH)
        found: list[tuple[int, str]] = []
        for capture, nodes in cursor.captures(tree.root_node).items():
            for node in nodes:
                text = _imported(capture, node)
                if text:
                    found.append((node.start_byte, text))
        found.sort()
        return tuple(dict.fromkeys(text for _, text in found))

    def _query(self, spec: LanguageSpec) -> Query | None:
        if spec.name not in self._queries:
            try:
                source = read_query(spec.name, "imports", self._dir)
                self._queries[spec.name] = Query(spec.language, source)
            except (OSError, QueryError) as exc:
                log.warning("no import extraction for %s: %s", spec.name, exc)
                self._queries[spec.name] = None
        return self._queries[spec.name]


def _node_text(node: Node | None) -> str:
    return "" if node is None or node.text is None else node.text.decode("utf-8", "replace")


def _imported(capture: str, node: Node) -> str:
    text = _node_text(node).strip()
    if capture == "import":
        return text.strip('<>"')
    if capture == "import.mod":
        return f"self::{text}"
    if capture == "import.submodule":
        statement = node.parent
        while statement is not None and statement.type != "import_from_statement":
            statement = statement.parent
        prefix = _node_text(statement and statement.child_by_field_name("module_name"))
        return prefix + text
    return ""  # helper captures such as @_require


# --- resolution ------------------------------------------------------------------------


def resolve_import(language: str | None, from_rel: str, imported: str, dirs: Dirs) -> str | None:
    """The indexed file `imported` (as written in `from_rel`) refers to, or None."""
    resolver = _RESOLVERS.get(language or "")
    if resolver is None or not imported:
        return None
    for candidate in resolver(from_rel, imported, dirs):
        rel = _normalize(candidate)
        if rel is not None and rel != from_rel and _exists(dirs, rel):
            return rel
    return None


def _normalize(path: str) -> str | None:
    rel = posixpath.normpath(path)
    if rel in (".", "..") or rel.startswith(("../", "/")):
        return None
    return rel


def _exists(dirs: Dirs, rel: str) -> bool:
    parent, name = posixpath.split(rel)
    return name in dirs.get(parent, ())


def _ancestors(rel: str) -> list[str]:
    """The directories above `rel`, shallowest first, not counting the root."""
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _by_suffix(dirs: Dirs, tail: str) -> Iterator[str]:
    """Files whose path ends with `tail` (`com/x/Y.java`, `inner/y.h`), in path order."""
    parent, name = posixpath.split(tail)
    for directory in sorted(dirs):
        if name in dirs[directory] and (
            not parent or directory == parent or directory.endswith("/" + parent)
        ):
            yield posixpath.join(directory, name)


def _python(from_rel: str, imported: str, dirs: Dirs) -> Iterator[str]:
    module = imported.lstrip(".")
    level = len(imported) - len(module)
    parts = module.split(".") if module else []
    if level:
        base = posixpath.dirname(from_rel)
        for _ in range(level - 1):
            if not base:
                return  # above the root
            base = posixpath.dirname(base)
        bases = [base]
    else:
        # The root, then the directories above the importing file (a `src/` layout, or a
        # script importing its sibling).
        bases = ["", *_ancestors(from_rel)]
    for base in bases:
        stem = posixpath.join(base, *parts)
        if parts:
            yield stem + ".py"
            yield stem + ".pyi"
        yield posixpath.join(stem, "__init__.py")


_JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")


def _javascript(from_rel: str, imported: str, dirs: Dirs) -> Iterator[str]:
    if imported.startswith("/"):
        base = imported.lstrip("/")
    elif imported.startswith("."):
        base = posixpath.join(posixpath.dirname(from_rel), imported)
    else:
        return  # a package
    yield base
    stem, ext = posixpath.splitext(base)
    if ext in (".js", ".jsx", ".mjs", ".cjs"):  # TypeScript sources imported by output name
        yield from (stem + ts for ts in (".ts", ".tsx", ".mts", ".cts"))
    yield from (base + ext for ext in _JS_EXTENSIONS)
    yield from (f"{base}/index{ext}" for ext in _JS_EXTENSIONS)


def _rust_module_dir(from_rel: str) -> str:
    """The directory holding the children of the module `from_rel` defines."""
    parent, name = posixpath.split(from_rel)
    if name in ("mod.rs", "lib.rs", "main.rs"):
        return parent
    return posixpath.join(parent, posixpath.splitext(name)[0])


def _rust(from_rel: str, imported: str, dirs: Dirs) -> Iterator[str]:
    path = re.split(r"::\{|::\*|\s+as\s+", imported)[0].strip()
    segments = path.split("::")
    if segments[0] == "crate":
        parts = from_rel.split("/")[:-1]
        if "src" in parts:  # the crate root is the innermost `src/` above the file
            parts = parts[: len(parts) - parts[::-1].index("src")]
        base = "/".join(parts)
        segments = segments[1:]
    elif segments[0] in ("self", "super"):
        base = _rust_module_dir(from_rel)
        if segments[0] == "self":
            segments = segments[1:]
        while segments and segments[0] == "super":
            base, segments = posixpath.dirname(base), segments[1:]
    else:
        return  # std or another crate
    # The last segments may name items rather than modules: try the longest path first.
    for n in range(len(segments), 0, -1):
        stem = posixpath.join(base, *segments[:n])
        yield stem + ".rs"
        yield stem + "/mod.rs"


def _go(from_rel: str, imported: str, dirs: Dirs) -> Iterator[str]:
    # An import path is the module path plus the package's directory: the indexed
    # directory that is the longest tail of the import path is the package.
    segments = imported.strip("/").split("/")
    best = ""
    for directory in dirs:
        parts = directory.split("/")
        if directory and segments[-len(parts) :] == parts and len(directory) > len(best):
            best = directory
    if best:
        names = sorted(n for n in dirs[best] if n.endswith(".go") and not n.endswith("_test.go"))
        yield from (posixpath.join(best, n) for n in names[:1])


def _java(from_rel: str, imported: str, dirs: Dirs) -> Iterator[str]:
    segments = imported.removesuffix(".*").split(".")
    # `a.b.C`, or the class of a static import or a nested class: `a.b.C.member`.
    for n in range(len(segments), max(0, len(segments) - 2), -1):
        yield from _by_suffix(dirs, "/".join(segments[:n]) + ".java")


def _c(from_rel: str, imported: str, dirs: Dirs) -> Iterator[str]:
    yield posixpath.join(posixpath.dirname(from_rel), imported)
    yield imported
    yield posixpath.join("include", imported)
    yield from _by_suffix(dirs, imported)


_RESOLVERS: dict[str, Callable[[str, str, Dirs], Iterator[str]]] = {
    "python": _python,
    "javascript": _javascript,
    "typescript": _javascript,
    "tsx": _javascript,
    "rust": _rust,
    "go": _go,
    "java": _java,
    "c": _c,
    "cpp": _c,
}
