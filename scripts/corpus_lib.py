"""Pure helpers for the multi-language training corpus (no network, no disk but `load_corpus`).

`fetch_corpus.py` downloads the packages named in `corpus/packages.json` and uses these to
decide what to keep: the licence from package metadata, the language of a file (the
language server's names, see `lsp_server/context/languages.py`), the file filters
(size, minified or generated text, vendored folders, lockfiles, secrets), exact-duplicate
keys, the per-package cap, and the held-out split, which is by package, never by file.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import training_data as td

from lsp_server.context.privacy import redact_secrets

# --- licences --------------------------------------------------------------------------

_COPYLEFT = re.compile(
    r"gpl|mpl|epl|cddl|sspl|busl|commons-clause|proprietary|cc-by-sa|cc-by-nc|"
    r"artistic|eupl|osl|qpl|copyleft|unlicensed", re.I)
# Leaf licences whose terms are permissive (SPDX ids, Debian short names, classifier words).
_PERMISSIVE = re.compile(
    r"^(mit|expat|x11|bsd|0bsd|apache|isc|iscl|psf|python|zlib|libpng|unlicense|bsl-1|boost|"
    r"cc0|public-domain|curl|ijg|ncsa|unicode|wtfpl|upl|blueoak|postgresql|hpnd|ftl|libtiff|"
    r"openssl|ssleay|pd|edl)(?![a-z])", re.I)
_NOISE_WORDS = {"the", "license", "licence", "licensed", "version", "software", "v", "under"}


@dataclass(frozen=True)
class LicenceVerdict:
    declared: str  # what the metadata says ("" when it says nothing)
    ok: bool       # permissive: every AND part, at least one OR alternative


REFUSED_NONE = LicenceVerdict("", False)


def _normal_leaf(leaf: str) -> str:
    words = re.sub(r"[^a-z0-9.+\-]+", " ", leaf.lower()).split()
    return "-".join(w for w in words if w not in _NOISE_WORDS)


def _leaf_ok(leaf: str) -> bool:
    base = re.split(r"\s+with\s+", leaf.strip(), flags=re.I)[0]
    norm = _normal_leaf(base)
    if not norm or _COPYLEFT.search(norm):
        return False
    return _PERMISSIVE.match(norm) is not None


_TOKEN = re.compile(r"\(|\)|\bor\b|\band\b|/|[^()\s/]+", re.I)


def expression_ok(expression: str) -> bool:
    """An SPDX-like expression (`MIT OR Apache-2.0`, `(A and B) or C`, Cargo's `MIT/Apache-2.0`)
    is permissive when an OR has at least one permissive side and an AND only permissive
    sides. Words between operators form one leaf (`Apache License 2.0`)."""
    tokens = _TOKEN.findall(expression)
    pos = 0

    def peek() -> str:
        return tokens[pos].lower() if pos < len(tokens) else ""

    def parse_or() -> bool:
        nonlocal pos
        ok = parse_and()
        while peek() in ("or", "/"):
            pos += 1
            ok = parse_and() or ok
        return ok

    def parse_and() -> bool:
        nonlocal pos
        ok = parse_leaf()
        while peek() == "and":
            pos += 1
            ok = parse_leaf() and ok
        return ok

    def parse_leaf() -> bool:
        nonlocal pos
        if peek() == "(":
            pos += 1
            ok = parse_or()
            if peek() == ")":
                pos += 1
            return ok
        words: list[str] = []
        while pos < len(tokens) and peek() not in ("or", "/", "and", "(", ")"):
            words.append(tokens[pos])
            pos += 1
        return bool(words) and _leaf_ok(" ".join(words))

    if not tokens:
        return False
    ok = parse_or()
    return ok and pos == len(tokens)


def licence_from_text(text: str) -> str:
    """The licence a LICENSE/COPYING text states, by its well-known sentences ("" if unknown;
    copyleft texts are named so the refusal can say why)."""
    t = " ".join(text.split())
    for marker, name in (
        ("GNU AFFERO GENERAL PUBLIC", "AGPL"), ("GNU LESSER GENERAL PUBLIC", "LGPL"),
        ("GNU LIBRARY GENERAL PUBLIC", "LGPL"), ("GNU GENERAL PUBLIC", "GPL"),
        ("Mozilla Public License", "MPL-2.0"), ("Eclipse Public License", "EPL"),
    ):
        if marker.lower() in t.lower():
            return name
    for markers, name in (
        (("Apache License", "Version 2.0"), "Apache-2.0"),
        (("Permission is hereby granted, free of charge",), "MIT"),
        (("Redistribution and use in source and binary forms",), "BSD"),
        (("Permission to use, copy, modify, and",), "ISC"),
        (("provided 'as-is'", "Altered source versions must be plainly marked"), "Zlib"),
        (("Boost Software License",), "BSL-1.0"),
        (("free and unencumbered software released into the public domain",), "Unlicense"),
        (("PYTHON SOFTWARE FOUNDATION LICENSE",), "PSF-2.0"),
    ):
        if all(m.lower() in t.lower() for m in markers):
            return name
    return ""


def judge(declared: str) -> LicenceVerdict:
    """Judge an expression; a second try drops URLs and parenthesized remarks
    (`Apache License 2.0 (http://...)`), which can only remove alternatives."""
    declared = declared.strip()
    if not declared:
        return REFUSED_NONE
    plain = re.sub(r"https?://\S+|\([^()]*\)", " ", declared)
    return LicenceVerdict(declared, expression_ok(declared) or expression_ok(plain))


def licence_from_pkg_info(text: str) -> LicenceVerdict:
    """PKG-INFO: License-Expression, else the License classifiers (alternatives), else the
    License field (an expression, or a whole licence text)."""
    meta = email.parser.Parser().parsestr(text, headersonly=True)
    if meta.get("License-Expression"):
        return judge(meta["License-Expression"])
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::") and c.count("::") >= 2]
    classifiers = [re.sub(r"\s*\(.*\)", "", c) for c in classifiers]
    if classifiers:
        return judge(" OR ".join(f"({c})" for c in classifiers))
    field = (meta.get("License") or "").strip()
    if not field or field.upper() == "UNKNOWN":
        return REFUSED_NONE
    first = field.splitlines()[0]
    if len(field) < 100 and "\n" not in field:
        return judge(first)
    return judge(licence_from_text(field))


def licence_from_package_json(text: str) -> LicenceVerdict:
    """package.json `license` (SPDX string or legacy {type}) or legacy `licenses` list."""
    try:
        data = json.loads(text)
    except ValueError:
        return REFUSED_NONE
    value = data.get("license") if isinstance(data, dict) else None
    if isinstance(value, dict):
        value = value.get("type")
    if not value and isinstance(data, dict) and isinstance(data.get("licenses"), list):
        types = [x.get("type", "") if isinstance(x, dict) else str(x) for x in data["licenses"]]
        value = " OR ".join(f"({t})" for t in types if t)
    if not isinstance(value, str) or value.upper().startswith("SEE LICENSE"):
        return REFUSED_NONE
    return judge(value)


def licence_from_cargo_toml(text: str) -> LicenceVerdict:
    try:
        package = tomllib.loads(text).get("package", {})
    except tomllib.TOMLDecodeError:
        return REFUSED_NONE
    value = package.get("license") if isinstance(package, dict) else None
    return judge(value) if isinstance(value, str) else REFUSED_NONE


def licence_from_dep5(text: str) -> LicenceVerdict:
    """debian/copyright in DEP-5 form: the License of the `Files: *` stanza."""
    if "copyright-format" not in text.split("\n\n", 1)[0]:
        return REFUSED_NONE
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
        if "*" in fields.get("Files", "").split() and fields.get("License"):
            return judge(fields["License"])
    return REFUSED_NONE


def first_verdict(*verdicts: LicenceVerdict) -> LicenceVerdict:
    """The first source that declares a licence decides."""
    return next((v for v in verdicts if v.declared), REFUSED_NONE)


# --- languages -------------------------------------------------------------------------

# Same names and extensions as lsp_server/context/languages.py (a test checks this);
# stubs (.pyi) and declaration files (.d.ts) are left out.
EXTENSION_LANGUAGE: dict[str, str] = {
    ".py": "python",
    **dict.fromkeys((".js", ".mjs", ".cjs", ".jsx"), "javascript"),
    **dict.fromkeys((".ts", ".mts", ".cts"), "typescript"),
    ".tsx": "tsx",
    ".rs": "rust",
    ".go": "go",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    **dict.fromkeys((".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx"), "cpp"),
}
# The corpus groups: each packages.json language keeps the file languages listed here.
GROUP_LANGUAGES: dict[str, tuple[str, ...]] = {
    "python": ("python",), "javascript": ("javascript",), "typescript": ("typescript", "tsx"),
    "rust": ("rust",), "go": ("go",), "java": ("java",), "c": ("c",), "cpp": ("cpp",),
}


def headers_are_cpp(paths: Iterable[str], group: str = "") -> bool:
    """`.h` is C++ in a package whose other sources are mostly C++ (or a header-only C++
    package: no .c files and listed as cpp)."""
    c = cpp = 0
    for path in paths:
        lang = EXTENSION_LANGUAGE.get(PurePosixPath(path).suffix.lower())
        c += lang == "c" and not path.lower().endswith(".h")
        cpp += lang == "cpp"
    return cpp > c or (c == 0 and group == "cpp")


def language_of(path: str, cpp_headers: bool = False) -> str | None:
    name = PurePosixPath(path).name.lower()
    if re.search(r"\.d\.[mc]?ts$", name):
        return None
    suffix = PurePosixPath(name).suffix
    if suffix == ".h" and cpp_headers:
        return "cpp"
    return EXTENSION_LANGUAGE.get(suffix)


# --- file filters ----------------------------------------------------------------------

MAX_FILE_BYTES = 200_000
MAX_LINE = 1000
MAX_MEAN_LINE = 200
HEADER_LINES = 5
VENDORED_DIRS = frozenset({
    "node_modules", "bower_components", "vendor", "vendored", "_vendor", "third_party",
    "third-party", "thirdparty", "3rdparty", "dist", "build", "deps", "extern", "external",
    ".git", "__pycache__", "site-packages", ".tox",
})
LOCKFILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "cargo.lock",
    "poetry.lock", "pipfile.lock", "uv.lock", "go.sum", "composer.lock", "gemfile.lock",
})
_GENERATED = re.compile(
    r"do not edit|@generated|auto-?generated|automatically generated|code generated|"
    r"generated by|this file (?:is|was) generated", re.I)
# Private-key headers that privacy.py's PEM rule does not cover.
_EXTRA_KEYS = re.compile(
    r"-----BEGIN PGP PRIVATE KEY BLOCK-----|PuTTY-User-Key-File-\d|"
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def path_reject_reason(relpath: str) -> str | None:
    parts = PurePosixPath(relpath).parts
    name = parts[-1].lower() if parts else ""
    if any(p.lower() in VENDORED_DIRS for p in parts[:-1]):
        return "vendored"
    if name in LOCKFILES:
        return "lockfile"
    if re.search(r"[.\-]min\.[mc]?js$", name):
        return "minified"
    return None


def decode_text(data: bytes) -> str | None:
    """UTF-8 text, or None for non-UTF-8 or binary content."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


def has_secret(text: str) -> bool:
    """A credential of a known shape (keys, provider tokens, JWTs, bearer tokens). The
    privacy module's name-based guesses (`password = "..."`, kind "secret") are not
    enough to drop a file: in library code they are mostly format strings and fixtures."""
    if _EXTRA_KEYS.search(text):
        return True
    redacted, count = redact_secrets(text)
    return count > 0 and bool(set(re.findall(r"\[REDACTED:(\w+)\]", redacted)) - {"secret"})


def text_reject_reason(text: str) -> str | None:
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return "too_large"
    if not text.strip():
        return "empty"
    lines = text.splitlines()
    if max(map(len, lines)) > MAX_LINE or len(text) / len(lines) > MAX_MEAN_LINE:
        return "minified"
    if _GENERATED.search("\n".join(lines[:HEADER_LINES])):
        return "generated"
    if has_secret(text):
        return "secret"
    return None


def content_key(text: str) -> str:
    """Duplicate key: the text with whitespace at line ends (and line endings) normalized."""
    normal = "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n")
    return hashlib.sha1(normal.encode("utf-8")).hexdigest()


def within_cap(files: Iterable[tuple[str, str]], cap: int) -> list[tuple[str, str]]:
    """(path, text) pairs totalling at most `cap` bytes, taken in hash-of-path order so a
    capped package keeps a spread of its files; returned sorted by path."""
    kept, used = [], 0
    for path, text in sorted(files, key=lambda f: hashlib.sha1(f[0].encode()).digest()):
        size = len(text.encode("utf-8"))
        if used + size <= cap:
            kept.append((path, text))
            used += size
    return sorted(kept)


def changed_files(old: Mapping[str, str], new: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(path, old_text, new_text) for each path in both releases whose text differs."""
    return [(p, old[p], new[p]) for p in sorted(old.keys() & new.keys()) if old[p] != new[p]]


# --- held-out split --------------------------------------------------------------------

HELD_OUT_PERCENT = 10
MIN_HELD_OUT = 2


def package_hash(registry: str, name: str) -> int:
    return int.from_bytes(hashlib.sha1(f"{registry}:{name}".encode()).digest()[:8], "big")


def held_out(packages: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The held-out (registry, name) pairs of one language: those whose hash falls in the
    first HELD_OUT_PERCENT, topped up with the lowest hashes to MIN_HELD_OUT (leaving at
    least one package for training)."""
    ranked = sorted(set(packages), key=lambda p: package_hash(*p))
    chosen = {p for p in ranked if package_hash(*p) % 100 < HELD_OUT_PERCENT}
    need = min(MIN_HELD_OUT, len(ranked) - 1)
    for p in ranked:
        if len(chosen) >= need:
            break
        chosen.add(p)
    return chosen


def assign_splits(by_language: Mapping[str, Iterable[tuple[str, str]]]
                  ) -> dict[tuple[str, str], str]:
    splits: dict[tuple[str, str], str] = {}
    for packages in by_language.values():
        packages = list(packages)
        out = held_out(packages)
        splits.update({p: "held_out" if p in out else "train" for p in packages})
    return splits


# --- output ----------------------------------------------------------------------------


def load_corpus(work: Path) -> list[td.SourceFile]:
    """The kept files of `<work>/corpus/files.jsonl` as training SourceFiles."""
    files = []
    with open(Path(work) / "corpus" / "files.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                files.append(td.SourceFile(r["path"], r["text"], r["licence"], r["language"],
                                           r["package"], r["split"]))
    return files


def language_totals(records: Iterable[Mapping]) -> dict:
    """Per corpus language: kept packages, files, bytes, held-out packages, the packages
    not kept (refused, failed or empty) and files per server language (tsx apart)."""
    out: dict[str, dict] = {}
    for r in records:
        t = out.setdefault(r["language"], {"packages": 0, "files": 0, "bytes": 0,
                                           "held_out_packages": 0, "not_kept": 0,
                                           "file_languages": defaultdict(int)})
        if r["status"] != "kept":
            t["not_kept"] += 1
            continue
        t["packages"] += 1
        t["files"] += r["files"]
        t["bytes"] += r["bytes"]
        t["held_out_packages"] += r["split"] == "held_out"
        for language, n in r["file_languages"].items():
            t["file_languages"][language] += n
    return out


def card_table(manifest: Mapping) -> str:
    """A Markdown table of every kept source, for the model card."""
    rows = ["| name | version | registry | licence | language | files | bytes | split |",
            "| --- | --- | --- | --- | --- | ---: | ---: | --- |"]
    for p in manifest.get("packages", []):
        if p.get("status") == "kept":
            cells = [p["name"], p["version"], p["registry"], p["licence"], p["language"],
                     str(p["files"]), str(p["bytes"]), p["split"]]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
