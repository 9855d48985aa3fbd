"""The corpus builder's pure parts: licences, languages, filters, dedupe, split, outputs."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import corpus_lib as cl  # noqa: E402
import fetch_corpus  # noqa: E402
import training_data as td  # noqa: E402

from lsp_server.context import languages  # noqa: E402

# --- licences --------------------------------------------------------------------------


@pytest.mark.parametrize("expr", [
    "MIT", "MIT-0", "Apache-2.0", "BSD-3-Clause", "ISC", "Zlib", "Unlicense", "BSL-1.0",
    "0BSD", "PSF-2.0", "CC0-1.0", "Expat", "public-domain", "PD", "EPL-2.0 or EDL-1.0",
    "MIT OR Apache-2.0",
    "MIT/Apache-2.0", "(MIT OR GPL-3.0) AND BSD-2-Clause", "GPL-2.0 OR MIT",
    "Apache-2.0 WITH LLVM-exception", "Apache License 2.0", "Apache License, Version 2.0",
    "BSD 3-Clause License", "MIT License", "Apache-2.0 (http://www.apache.org/licenses/)",
])
def test_permissive_expressions(expr):
    assert cl.expression_ok(expr) or cl.judge(expr).ok


@pytest.mark.parametrize("expr", [
    "GPL-3.0", "LGPL-2.1+", "AGPL-3.0-only", "MPL-2.0", "EPL-2.0", "CDDL-1.0", "UNLICENSED",
    "MIT AND GPL-2.0", "GPL-2.0 WITH Classpath-exception-2.0", "Proprietary", "", "Dual",
    "SEE LICENSE IN LICENSE.txt", "CC-BY-SA-4.0", "(GPL-2.0 OR LGPL-3.0) AND MIT",
])
def test_refused_expressions(expr):
    assert not cl.judge(expr).ok


def test_pkg_info_prefers_expression_then_classifiers_then_field():
    expr = "Metadata-Version: 2.4\nName: a\nLicense-Expression: MIT\nLicense: GPL\n\n"
    assert cl.licence_from_pkg_info(expr) == cl.LicenceVerdict("MIT", True)
    classifiers = ("Name: b\nLicense: GPL\nClassifier: License :: OSI Approved :: "
                   "BSD License\nClassifier: Programming Language :: Python\n\n")
    assert cl.licence_from_pkg_info(classifiers).ok
    gpl = "Name: c\nClassifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)\n"
    assert not cl.licence_from_pkg_info(gpl).ok
    assert cl.licence_from_pkg_info("Name: d\nLicense: Apache 2.0\n\n").ok
    assert cl.licence_from_pkg_info("Name: e\nLicense: UNKNOWN\n\n") == cl.REFUSED_NONE
    full = ("Name: f\nLicense: Copyright (c) 2020 Someone\n        \n        Permission is "
            "hereby granted, free of charge, to any person\n\n")
    assert cl.licence_from_pkg_info(full) == cl.LicenceVerdict("MIT", True)


def test_package_json_cargo_and_dep5():
    assert cl.licence_from_package_json('{"license": "ISC"}').ok
    assert cl.licence_from_package_json('{"license": {"type": "MIT"}}').ok
    assert cl.licence_from_package_json('{"licenses": [{"type": "MIT"}, {"type": "GPL"}]}').ok
    assert not cl.licence_from_package_json('{"license": "UNLICENSED"}').ok
    assert not cl.licence_from_package_json('{"name": "x"}').ok
    assert cl.licence_from_cargo_toml('[package]\nname = "x"\nlicense = "MIT OR Apache-2.0"\n').ok
    assert not cl.licence_from_cargo_toml('[package]\nlicense = "GPL-3.0"\n').ok
    dep5 = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            "Upstream-Name: x\n\nFiles: debian/*\nCopyright: me\nLicense: GPL-2+\n\n"
            "Files: *\nCopyright: 2020 Them\nLicense: Expat\n\nLicense: Expat\n Permission...\n")
    assert cl.licence_from_dep5(dep5) == cl.LicenceVerdict("Expat", True)
    assert not cl.licence_from_dep5(dep5.replace("License: Expat\n\n", "License: LGPL-2.1\n\n",
                                                 1)).ok
    assert cl.licence_from_dep5("This package was debianized by me.\nLicense: MIT\n").declared == ""


def test_licence_texts():
    assert cl.licence_from_text("Apache License\n  Version 2.0, January 2004") == "Apache-2.0"
    assert cl.licence_from_text("Redistribution and use in source and binary forms, with") == "BSD"
    assert cl.licence_from_text("GNU GENERAL PUBLIC LICENSE\nVersion 3") == "GPL"
    assert cl.licence_from_text("All rights reserved.") == ""
    assert cl.first_verdict(cl.REFUSED_NONE, cl.judge("MIT"), cl.judge("GPL")).declared == "MIT"


# --- languages -------------------------------------------------------------------------


def test_language_names_match_the_language_server():
    for ext, name in cl.EXTENSION_LANGUAGE.items():
        assert languages._BY_EXTENSION[ext] == name, ext
    assert set(cl.EXTENSION_LANGUAGE.values()) == set(languages._GRAMMARS)


@pytest.mark.parametrize(("path", "language"), [
    ("a/x.py", "python"), ("x.js", "javascript"), ("x.mjs", "javascript"),
    ("x.cjs", "javascript"), ("x.JSX", "javascript"), ("x.ts", "typescript"),
    ("x.mts", "typescript"), ("x.cts", "typescript"), ("x.tsx", "tsx"), ("x.rs", "rust"),
    ("x.go", "go"), ("X.java", "java"), ("x.c", "c"), ("x.h", "c"), ("x.cc", "cpp"),
    ("x.cpp", "cpp"), ("x.cxx", "cpp"), ("x.hpp", "cpp"), ("x.hh", "cpp"), ("x.hxx", "cpp"),
    ("x.d.ts", None), ("x.pyi", None), ("README.md", None), ("Makefile", None),
])
def test_language_of(path, language):
    assert cl.language_of(path) == language


def test_headers_follow_the_package():
    cpp_pkg = ["src/a.cpp", "src/b.cc", "src/a.h", "tools/gen.c"]
    c_pkg = ["src/a.c", "src/b.c", "src/a.h", "bindings/x.cpp"]
    assert cl.headers_are_cpp(cpp_pkg) and not cl.headers_are_cpp(c_pkg)
    assert cl.language_of("src/a.h", cl.headers_are_cpp(cpp_pkg)) == "cpp"
    assert cl.language_of("src/a.h", cl.headers_are_cpp(c_pkg)) == "c"
    assert cl.headers_are_cpp(["include/json.h"], "cpp")  # header-only C++
    assert not cl.headers_are_cpp(["include/json.h"], "c")


# --- filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "reason"), [
    ("pkg/node_modules/x/index.js", "vendored"), ("src/vendor/lib.go", "vendored"),
    ("third_party/z.c", "vendored"), ("dist/index.js", "vendored"), ("build/lib/a.py", "vendored"),
    ("pip/_vendor/six.py", "vendored"), ("jquery.min.js", "minified"),
    ("package-lock.json", "lockfile"), ("Cargo.lock", "lockfile"), ("src/index.js", None),
    ("src/builder.py", None),
])
def test_path_filters(path, reason):
    assert cl.path_reject_reason(path) == reason


def test_text_filters():
    ok = "def f(x):\n    return x + 1\n"
    assert cl.text_reject_reason(ok) is None
    assert cl.text_reject_reason("x = 1\n" * 40_000) == "too_large"
    assert cl.text_reject_reason("var a=" + "1," * 600 + "2;\n") == "minified"
    assert cl.text_reject_reason(("x" * 300 + "\n") * 10) == "minified"
    assert cl.text_reject_reason("// Code generated by protoc. DO NOT EDIT.\npackage x\n") \
        == "generated"
    assert cl.text_reject_reason("# This file is automatically generated\nx = 1\n") \
        == "generated"
    assert cl.text_reject_reason("  \n\n") == "empty"
    assert cl.decode_text(b"\xff\xfe bad") is None
    assert cl.decode_text(b"a\0b") is None
    assert cl.decode_text("\ufeffx = 1\n".encode()) == "x = 1\n"


@pytest.mark.parametrize("secret", [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n",
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n",
    "PuTTY-User-Key-File-2: ssh-rsa\n",
    'AWS_KEY = "AKIAIOSFODNN7EXAMPLE"\n',
    'token = "ghp_' + "a1B2" * 9 + '"\n',
])
def test_secrets_are_dropped(secret):
    text = "def f():\n    pass\n" + secret
    assert cl.has_secret(text)
    assert cl.text_reject_reason(text) == "secret"
    assert not cl.has_secret("def f():\n    password = get_password()\n")
    assert not cl.has_secret('token_range = "%s-%s" % (token.start, token.end)\n')


def test_duplicates_ignore_trailing_whitespace_and_line_endings():
    a = "x = 1  \ny = 2\n"
    assert cl.content_key(a) == cl.content_key("x = 1\r\ny = 2\t\n")
    assert cl.content_key(a) != cl.content_key("x = 1\ny = 3\n")


def test_cap_keeps_a_spread_within_budget():
    files = [(f"f{i}.py", "x" * 100) for i in range(50)]
    kept = cl.within_cap(files, 1000)
    assert len(kept) == 10 and kept == sorted(kept)
    assert kept == cl.within_cap(list(reversed(files)), 1000)


def test_changed_files():
    old = {"a.py": "1", "b.py": "2", "gone.py": "3"}
    new = {"a.py": "1", "b.py": "two", "new.py": "4"}
    assert cl.changed_files(old, new) == [("b.py", "2", "two")]


# --- split -----------------------------------------------------------------------------


def test_split_is_by_package_stable_and_holds_out_enough():
    packages = [("npm", f"pkg{i}") for i in range(40)]
    out = cl.held_out(packages)
    assert len(out) >= 2 and len(out) < 40
    assert out == cl.held_out(list(reversed(packages)))
    assert 2 <= len(cl.held_out(packages[:5])) <= 4
    assert len(cl.held_out(packages[:3])) == 2
    splits = cl.assign_splits({"go": [("debian", "a"), ("debian", "b"), ("debian", "c")],
                               "c": [("debian", "d"), ("debian", "e"), ("debian", "f")]})
    assert list(splits.values()).count("held_out") == 4
    many = [("pypi", f"p{i}") for i in range(1000)]
    assert 60 <= len(cl.held_out(many)) <= 140


# --- outputs ---------------------------------------------------------------------------


def test_language_totals():
    records = [
        {"language": "typescript", "status": "kept", "files": 3, "bytes": 30, "split": "train",
         "file_languages": {"typescript": 2, "tsx": 1}},
        {"language": "typescript", "status": "kept", "files": 1, "bytes": 5,
         "split": "held_out", "file_languages": {"typescript": 1}},
        {"language": "typescript", "status": "refused", "files": 0, "bytes": 0, "split": ""}]
    t = cl.language_totals(records)["typescript"]
    assert (t["packages"], t["files"], t["bytes"], t["held_out_packages"], t["not_kept"]) == (
        2, 4, 35, 1, 1)
    assert t["file_languages"] == {"typescript": 3, "tsx": 1}


def test_load_corpus_and_card(tmp_path):
    (tmp_path / "corpus").mkdir()
    rows = [{"package": "left-pad", "registry": "npm", "version": "1.0.0", "licence": "MIT",
             "language": "javascript", "path": "left-pad/index.js", "split": "held_out",
             "text": "module.exports = 1;\n"}]
    (tmp_path / "corpus" / "files.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = cl.load_corpus(tmp_path)
    assert files == [td.SourceFile("left-pad/index.js", "module.exports = 1;\n", "MIT",
                                   "javascript", "left-pad", "held_out")]
    assert files[0].held_out
    manifest = {"packages": [
        {"name": "left-pad", "version": "1.0.0", "registry": "npm", "licence": "MIT",
         "language": "javascript", "files": 1, "bytes": 20, "split": "held_out",
         "status": "kept"},
        {"name": "gpl-thing", "status": "refused"}]}
    table = cl.card_table(manifest)
    assert "| left-pad | 1.0.0 | npm | MIT | javascript | 1 | 20 | held_out |" in table
    assert "gpl-thing" not in table


def test_packages_json_is_well_formed():
    packages = fetch_corpus.load_packages()
    assert {p.language for p in packages} == set(cl.GROUP_LANGUAGES)
    assert len({p.key for p in packages}) == len(packages) <= 400
    for p in packages:
        assert p.registry in ("pypi", "npm", "debian")
        assert p.version or p.registry == "debian"
        assert not p.previous or p.registry in ("pypi", "npm")
    pairs = [p for p in packages if p.previous]
    assert sum(p.registry == "pypi" for p in pairs) >= 10
    assert sum(p.registry == "npm" for p in pairs) >= 10


def test_package_caps_and_include(tmp_path):
    listing = {"max_package_bytes": {"c": 1000}, "languages": {
        "c": [{"registry": "debian", "name": "zlib", "version": "1"}],
        "rust": [{"registry": "debian", "name": "rustc", "include": ["library/"],
                  "max_bytes": 5}, {"registry": "debian", "name": "rust-clap"}]}}
    (tmp_path / "p.json").write_text(json.dumps(listing))
    zlib, rustc, clap = fetch_corpus.load_packages(tmp_path / "p.json")
    assert (zlib.max_bytes, rustc.max_bytes, clap.max_bytes) == (
        1000, 5, fetch_corpus.MAX_PACKAGE_BYTES)
    files = {"library/core/lib.rs": b"pub fn f() {}\n", "src/test/ui/x.rs": b"fn main() {}\n"}
    kept, _ = fetch_corpus.source_files(rustc, files)
    assert list(kept) == ["library/core/lib.rs"]


def _tar(path: Path, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def test_npm_release_build_with_pairs(tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir(), old.mkdir()
    _tar(new / "a-1.1.tgz", {"package/package.json": '{"license": "MIT"}',
                             "package/src/a.ts": "export const a = 2;\n",
                             "package/src/b.tsx": "export const B = () => <b/>;\n",
                             "package/dist/a.js": "exports.a = 2;\n",
                             "package/src/a.d.ts": "export declare const a: number;\n"})
    _tar(old / "a-1.0.tgz", {"package/package.json": '{"license": "MIT"}',
                             "package/src/a.ts": "export const a = 1;\n"})
    pkg = fetch_corpus.Package("npm", "a", "1.1", "typescript", previous="1.0")
    out = fetch_corpus.Outputs(io.StringIO(), io.StringIO())
    seen = {cl.content_key("export const B = () => <b/>;\n")}  # an earlier package had it
    record = fetch_corpus.build_package(pkg, new, old, seen, out)
    rows = [json.loads(line) for line in out.files.getvalue().splitlines()]
    assert [r["path"] for r in rows] == ["a/src/a.ts"]
    assert record["status"] == "kept" and record["dropped"]["duplicate"] == 1
    pairs = [json.loads(line) for line in out.pairs.getvalue().splitlines()]
    assert [(p["path"], p["old_text"], p["new_version"]) for p in pairs] == [
        ("a/src/a.ts", "export const a = 1;\n", "1.1")]


def test_duplicates_across_packages_and_the_cap(tmp_path):
    same = "int shared(void) { return 42; }\n"
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    _tar(first / "a-1.tgz", {"package/package.json": '{"license": "MIT"}',
                             "package/x.c": same, "package/copy.c": same})
    _tar(second / "b-1.tgz", {"package/package.json": '{"license": "MIT"}',
                              "package/y.c": same})
    out = fetch_corpus.Outputs(io.StringIO(), io.StringIO())
    seen: set[str] = set()
    capped = fetch_corpus.Package("npm", "a", "1", "c", max_bytes=10)
    assert fetch_corpus.build_package(capped, first, None, seen, out)["files"] == 0
    assert not seen  # a file the cap left out does not hide its copies elsewhere
    a = fetch_corpus.build_package(fetch_corpus.Package("npm", "a", "1", "c"), first, None,
                                   seen, out)
    b = fetch_corpus.build_package(fetch_corpus.Package("npm", "b", "1", "c"), second, None,
                                   seen, out)
    assert (a["files"], a["dropped"]["duplicate"]) == (1, 1)
    assert (b["files"], b["status"]) == (0, "empty")
    assert '"path": "a/copy.c"' in out.files.getvalue()  # the first path of a package wins


def test_debian_release_licence_from_dep5(tmp_path):
    (tmp_path / "x_1.0-2.dsc").write_text("Format: 3.0 (quilt)\nSource: x\nVersion: 1.0-2\n")
    _tar(tmp_path / "x_1.0.orig.tar.gz", {"x-1.0/src/x.c": "int x(void) { return 1; }\n",
                                          "x-1.0/src/x.h": "int x(void);\n"})
    _tar(tmp_path / "x_1.0-2.debian.tar.gz", {"debian/copyright": (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: 2020 X\nLicense: BSD-3-clause\n")})
    pkg = fetch_corpus.Package("debian", "x", "", "c")
    out = fetch_corpus.Outputs(io.StringIO(), io.StringIO())
    record = fetch_corpus.build_package(pkg, tmp_path, None, set(), out)
    assert (record["version"], record["licence"], record["files"]) == ("1.0-2", "BSD-3-clause", 2)
    refused = tmp_path / "gpl"
    refused.mkdir()
    _tar(refused / "y_1.orig.tar.gz", {"y/COPYING": "GNU GENERAL PUBLIC LICENSE",
                                       "y/y.c": "int y;\n"})
    record = fetch_corpus.build_package(pkg, refused, None, set(), out)
    assert record["status"] == "refused" and "GPL" in record["reason"]
