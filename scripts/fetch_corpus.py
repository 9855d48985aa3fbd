"""Download the packages of corpus/packages.json and build the multi-language training corpus.

    python scripts/fetch_corpus.py [--work DIR] [--languages python rust ...] [--limit N]
    python scripts/fetch_corpus.py --card        # Markdown table of the sources

Registries: PyPI (`pip download` of the sdist), npm (`npm pack`) and Debian bookworm source
packages (`apt-get source --download-only` with a private apt setup under the work folder;
the system's apt configuration is not touched). Downloads are kept under
`<work>/downloads/<registry>/` and skipped when already there, so a rerun resumes.

Output, under `<work>/corpus/`: files.jsonl (one kept file a line), manifest.json (per
package: what was kept or why it was refused; per-language totals) and release_pairs.jsonl
(files changed between a package's "previous" and current release). The held-out split
is by package, per main file language (so TSX packages have their own). The work folder
defaults to $SPARKEDIT_TRAIN_DIR or ~/.cache/sparkedit/train, outside the git tree.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import corpus_lib as cl

PACKAGES_JSON = Path(__file__).parent / "corpus" / "packages.json"
MAX_PACKAGE_BYTES = 3_000_000
DEBIAN_SOURCES = """Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
ARCHIVE = re.compile(r"\.(tar\.gz|tgz|tar\.xz|tar\.bz2|tar\.zst|tar|zip)$")


@dataclass(frozen=True)
class Package:
    registry: str  # pypi | npm | debian
    name: str
    version: str
    language: str  # a corpus group (corpus_lib.GROUP_LANGUAGES)
    previous: str = ""
    include: tuple[str, ...] = ()  # keep only paths under these folders (all when empty)
    max_bytes: int = MAX_PACKAGE_BYTES

    @property
    def key(self) -> tuple[str, str]:
        return self.registry, self.name


def default_work() -> Path:
    env = os.environ.get("SPARKEDIT_TRAIN_DIR")
    return Path(env) if env else Path.home() / ".cache" / "sparkedit" / "train"


def load_packages(path: Path = PACKAGES_JSON) -> list[Package]:
    """The entries of packages.json; a package's cap is its own `max_bytes`, else its
    language's `max_package_bytes`, else MAX_PACKAGE_BYTES."""
    data = json.loads(path.read_text(encoding="utf-8"))
    caps = data.get("max_package_bytes", {})
    return [Package(p["registry"], p["name"], p.get("version", ""), language,
                    p.get("previous", ""), tuple(p.get("include", ())),
                    p.get("max_bytes") or caps.get(language) or MAX_PACKAGE_BYTES)
            for language, entries in data["languages"].items() for p in entries]


# --- downloads -------------------------------------------------------------------------


class Downloader:
    """Fetches one release into its own folder; a `.done` marker makes it resumable."""

    def __init__(self, work: Path) -> None:
        self.root = work / "downloads"
        self.apt_dir = work / "apt"
        self.apt_error = ""
        # Concurrent apt-get runs on one private cache fail each other's downloads.
        self._apt_lock = threading.Lock()

    def folder(self, registry: str, name: str, version: str) -> Path:
        safe = name.replace("@", "").replace("/", "__")
        return self.root / registry / (f"{safe}-{version}" if version else safe)

    def fetch(self, registry: str, name: str, version: str) -> Path:
        """The folder holding the downloaded files; raises RuntimeError on failure."""
        folder = self.folder(registry, name, version)
        if (folder / ".done").exists():
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        if registry == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "--no-binary", name,
                   "--no-deps", "--quiet", f"{name}=={version}", "-d", str(folder)]
        elif registry == "npm":
            cmd = ["npm", "pack", "--loglevel=error", f"{name}@{version}", "--pack-destination",
                   str(folder)]
        elif registry == "debian":
            if self.apt_error:
                raise RuntimeError(self.apt_error)
            cmd = ["apt-get", *self.apt_options(), "source", "--download-only", "-q", name]
        else:
            raise RuntimeError(f"unknown registry {registry}")
        with self._apt_lock if registry == "debian" else contextlib.nullcontext():
            done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=900)
        upstream = [p for p in folder.iterdir()
                    if ARCHIVE.search(p.name) and ".debian.tar." not in p.name]
        # Debian's mirror here lacks some files: the upstream tarball alone will do (the
        # licence then comes from Cargo.toml or a LICENSE file).
        if not upstream or (done.returncode != 0 and registry != "debian"):
            lines = [line for line in (done.stderr + done.stdout).splitlines()
                     if line.strip() and "complete log" not in line]
            why = next((line for line in lines if re.search(r"^E:|error|unable|fail", line,
                                                          re.I)), lines[-1] if lines else "")
            raise RuntimeError(f"download failed: {why.strip()[:200] or 'no archive'}")
        (folder / ".done").write_text("")
        return folder

    def apt_options(self) -> list[str]:
        d = self.apt_dir
        return ["-o", f"Dir::Etc::SourceList={d / 'sources.sources'}",
                "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", f"Dir::State::Lists={d / 'lists'}", "-o", f"Dir::Cache={d / 'cache'}"]

    def prepare_apt(self) -> None:
        """Private apt lists for bookworm's sources; a failure fails the Debian packages."""
        (self.apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.apt_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (self.apt_dir / "sources.sources").write_text(DEBIAN_SOURCES)
        done = subprocess.run(["apt-get", *self.apt_options(), "update", "-q"],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            self.apt_error = f"apt-get update failed: {done.stderr.strip()[-200:]}"


# --- archives --------------------------------------------------------------------------


METADATA = re.compile(r"(PKG-INFO|package\.json|Cargo\.toml|copyright|licen[cs]e.*|copying.*)$",
                      re.I)


def wanted(path: str) -> bool:
    """Source files of any corpus language and the files that state a licence."""
    name = PurePosixPath(path).name
    return PurePosixPath(name).suffix.lower() in cl.EXTENSION_LANGUAGE or bool(
        METADATA.match(name))


def archive_members(data: bytes, name: str) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of the wanted regular files up to 200 KB in a tar or zip archive."""
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                if not info.is_dir() and info.file_size <= cl.MAX_FILE_BYTES \
                        and wanted(info.filename):
                    yield info.filename, z.read(info)
        return
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for member in t:
            if member.isfile() and member.size <= cl.MAX_FILE_BYTES and wanted(member.name):
                f = t.extractfile(member)
                if f is not None:
                    yield member.name, f.read()


def strip_top(members: dict[str, bytes]) -> dict[str, bytes]:
    """Drop the folder that every path shares (`package/`, `name-1.2/`)."""
    tops = {PurePosixPath(p).parts[0] for p in members if PurePosixPath(p).parts}
    if len(tops) == 1 and all(len(PurePosixPath(p).parts) > 1 for p in members):
        return {str(PurePosixPath(*PurePosixPath(p).parts[1:])): b for p, b in members.items()}
    return members


def read_release(folder: Path) -> tuple[dict[str, bytes], dict[str, bytes], str]:
    """(upstream files, debian/ files, Debian version or "") of a downloaded release."""
    files: dict[str, bytes] = {}
    debian: dict[str, bytes] = {}
    version = ""
    for path in sorted(folder.iterdir()):
        if path.suffix == ".dsc":
            found = re.search(r"^Version:\s*(\S+)", path.read_text(errors="replace"), re.M)
            version = found.group(1) if found else ""
        if not ARCHIVE.search(path.name):
            continue
        members = strip_top(dict(archive_members(path.read_bytes(), path.name)))
        if ".debian.tar." in path.name:
            debian.update(members)
            continue
        component = re.search(r"\.orig-([A-Za-z0-9-]+)\.tar\.", path.name)
        prefix = f"{component.group(1)}/" if component else ""
        files.update({prefix + p: b for p, b in members.items()})
    return files, debian, version


def licence_of(package: Package, files: dict[str, bytes], debian: dict[str, bytes]
               ) -> cl.LicenceVerdict:
    """Registry metadata first (PKG-INFO, package.json, DEP-5 then Cargo.toml for Debian),
    then a top-level LICENSE/COPYING text."""
    def text(path: str, source: dict[str, bytes] = files) -> str:
        return cl.decode_text(source.get(path, b"")) or ""

    if package.registry == "pypi":
        verdicts = [cl.licence_from_pkg_info(text("PKG-INFO"))]
    elif package.registry == "npm":
        verdicts = [cl.licence_from_package_json(text("package.json"))]
    else:
        verdicts = [cl.licence_from_dep5(text("copyright", debian)),
                    cl.licence_from_cargo_toml(text("Cargo.toml"))]
    for path in sorted(files):
        if "/" not in path and re.match(r"(licen[cs]e|copying)", path, re.I):
            verdicts.append(cl.judge(cl.licence_from_text(text(path))))
    return cl.first_verdict(*verdicts)


def source_files(package: Package, files: dict[str, bytes]) -> tuple[dict[str, str], dict]:
    """{relpath: text} of the files of the package's language that pass every filter, and
    a count of the reasons the others were dropped."""
    wanted = cl.GROUP_LANGUAGES[package.language]
    cpp_headers = cl.headers_are_cpp(files, package.language)
    kept: dict[str, str] = {}
    dropped: dict[str, int] = defaultdict(int)
    for path, data in files.items():
        language = cl.language_of(path, cpp_headers)
        if language not in wanted or (
                package.include and not path.startswith(package.include)):
            continue
        text = cl.decode_text(data)
        reason = cl.path_reject_reason(path) or ("not_utf8" if text is None else None)
        reason = reason or cl.text_reject_reason(text or "")
        if reason:
            dropped[reason] += 1
        else:
            kept[path] = text or ""
    return kept, dict(dropped)


# --- the build -------------------------------------------------------------------------


@dataclass
class Outputs:
    files: io.TextIOBase
    pairs: io.TextIOBase


def build_package(package: Package, folder: Path, previous: Path | None, seen: set[str],
                  out: Outputs) -> dict:
    files, debian, deb_version = read_release(folder)
    version = deb_version or package.version
    record = {"registry": package.registry, "name": package.name, "version": version,
              "language": package.language, "licence": "", "files": 0, "bytes": 0,
              "split": "", "status": "kept", "reason": ""}
    if package.registry == "debian" and package.version not in ("", version):
        record["listed_version"] = package.version  # bookworm moved on since the listing
    verdict = licence_of(package, files, debian)
    record["licence"] = verdict.declared
    if not verdict.ok:
        reason = f"licence not permissive: {verdict.declared}" if verdict.declared \
            else "no licence found"
        return {**record, "status": "refused", "reason": reason}
    texts, dropped = source_files(package, files)
    record["dropped"] = dropped
    keys = {path: cl.content_key(text) for path, text in texts.items()}
    firsts = {key: path for path, key in sorted(keys.items(), reverse=True)}  # first path wins
    unique = [(path, texts[path]) for key, path in firsts.items() if key not in seen]
    dropped["duplicate"] = len(texts) - len(unique)
    chosen = cl.within_cap(unique, package.max_bytes)
    dropped["over_cap"] = len(unique) - len(chosen)
    seen.update(keys[path] for path, _ in chosen)
    files_by_lang: dict[str, int] = defaultdict(int)
    cpp_headers = cl.headers_are_cpp(files, package.language)
    for path, text in chosen:
        language = cl.language_of(path, cpp_headers) or ""
        files_by_lang[language] += 1
        out.files.write(json.dumps({
            "package": package.name, "registry": package.registry, "version": version,
            "licence": verdict.declared, "language": language,
            "path": f"{package.name}/{path}", "text": text}) + "\n")
        record["bytes"] += len(text.encode("utf-8"))
    record["files"] = len(chosen)
    record["file_languages"] = dict(files_by_lang)
    if not chosen:
        record.update(status="empty", reason="no file passed the filters")
    if previous is not None:
        record["release_pairs"] = write_pairs(package, previous, texts, verdict, out)
    return record


def write_pairs(package: Package, previous: Path, new: dict[str, str],
                verdict: cl.LicenceVerdict, out: Outputs) -> int:
    old_files, _, _ = read_release(previous)
    old, _ = source_files(package, old_files)
    cpp_headers = cl.headers_are_cpp(old_files, package.language)
    pairs = cl.changed_files(old, new)
    for path, old_text, new_text in pairs:
        out.pairs.write(json.dumps({
            "package": package.name, "registry": package.registry,
            "language": cl.language_of(path, cpp_headers), "path": f"{package.name}/{path}",
            "old_version": package.previous, "new_version": package.version,
            "licence": verdict.declared, "old_text": old_text, "new_text": new_text}) + "\n")
    return len(pairs)


def add_splits(source: Path, target: Path, splits: dict[tuple[str, str], str]) -> None:
    with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            row["split"] = splits.get((row["registry"], row["package"]), "train")
            dst.write(json.dumps(row) + "\n")
    source.unlink()


def fetch(packages: list[Package], work: Path, workers: int = 3) -> dict:
    downloader = Downloader(work)
    if any(p.registry == "debian" for p in packages):
        downloader.prepare_apt()
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    order = sorted(packages, key=lambda p: (p.name.lower(), p.registry))
    started = time.monotonic()
    records: list[dict] = []
    seen: set[str] = set()

    def both(p: Package) -> tuple[Path, Path | None, str]:
        current = downloader.fetch(p.registry, p.name, p.version)
        try:
            previous = downloader.fetch(p.registry, p.name, p.previous) if p.previous else None
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            return current, None, f"previous {p.previous}: {exc}"
        return current, previous, ""

    # Rows without their split until every package is done; a stopped run leaves only this.
    partial = corpus / ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    with ThreadPoolExecutor(workers) as pool:
        futures: list[Future] = [pool.submit(both, p) for p in order]
        files_tmp, pairs_tmp = partial / "files.jsonl", partial / "pairs.jsonl"
        with open(files_tmp, "w", encoding="utf-8") as f, \
                open(pairs_tmp, "w", encoding="utf-8") as g:
            out = Outputs(f, g)
            for i, (package, future) in enumerate(zip(order, futures, strict=True), 1):
                try:
                    current, previous, previous_error = future.result()
                    record = build_package(package, current, previous, seen, out)
                    if previous_error:
                        record["previous_error"] = previous_error[:300]
                except (RuntimeError, OSError, tarfile.TarError, zipfile.BadZipFile,
                        subprocess.TimeoutExpired, EOFError, ValueError) as exc:
                    record = {"registry": package.registry, "name": package.name,
                              "version": package.version, "language": package.language,
                              "licence": "", "files": 0, "bytes": 0, "split": "",
                              "status": "failed", "reason": str(exc)[:300]}
                records.append(record)
                print(f"[{i}/{len(order)} {time.monotonic() - started:.0f}s] "
                      f"{package.language} {package.registry} {package.name} "
                      f"{record['version']}: {record['status']} {record['files']} files "
                      f"{record['bytes'] / 1e6:.2f} MB {record['licence'] or ''} "
                      f"{record['reason']}", file=sys.stderr, flush=True)
        # Held out per main file language, so TSX (inside the typescript group) has its own.
        by_language: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for r in records:
            if r["status"] == "kept":
                main_language = max(sorted(r["file_languages"]), key=r["file_languages"].get)
                by_language[main_language].append((r["registry"], r["name"]))
        splits = cl.assign_splits(by_language)
        for r in records:
            r["split"] = splits.get((r["registry"], r["name"]), "")
        add_splits(files_tmp, corpus / "files.jsonl", splits)
        add_splits(pairs_tmp, corpus / "release_pairs.jsonl", splits)
    partial.rmdir()
    manifest = {"seconds": round(time.monotonic() - started), "packages": records,
                "totals": cl.language_totals(records),
                "release_pairs": sum(r.get("release_pairs", 0) for r in records)}
    (corpus / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=default_work())
    parser.add_argument("--languages", nargs="+", choices=sorted(cl.GROUP_LANGUAGES))
    parser.add_argument("--limit", type=int, help="at most N packages per language")
    parser.add_argument("--packages", type=Path, default=PACKAGES_JSON)
    parser.add_argument("--workers", type=int, default=3, help="parallel downloads")
    parser.add_argument("--card", action="store_true", help="print the sources table")
    args = parser.parse_args(argv)
    if args.card:
        manifest = json.loads((args.work / "corpus" / "manifest.json").read_text())
        print(cl.card_table(manifest))
        return 0
    chosen: list[Package] = []
    counts: dict[str, int] = defaultdict(int)
    for p in load_packages(args.packages):
        if args.languages and p.language not in args.languages:
            continue
        if args.limit is not None and counts[p.language] >= args.limit:
            continue
        counts[p.language] += 1
        chosen.append(p)
    manifest = fetch(chosen, args.work, args.workers)
    for language, t in sorted(manifest["totals"].items()):
        print(f"{language:11} {t['packages']:4} packages {t['files']:6} files "
              f"{t['bytes'] / 1e6:7.1f} MB  held out {t['held_out_packages']}  "
              f"not kept {t['not_kept']}  {dict(t['file_languages'])}")
    print(f"release pairs: {manifest['release_pairs']}; output in {args.work / 'corpus'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
