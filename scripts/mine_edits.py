"""Mine real code edits from two releases of a permissively licensed PyPI package.

Downloads both source distributions with pip (``pip download --no-deps --no-binary
:all:``) into a temporary folder, reads every ``.py`` file present in both releases
straight from the archives, and diffs each file line by line with difflib. Each group
of nearby changes (changes at most ``2 * context`` unchanged lines apart) is one edit
whose changed lines number 1..``max_changed`` in both releases. Whitespace-only
changes (a blank line added by a formatter) are dropped: they are not edits anyone
would want predicted.

Each edit is written as one JSON line::

    {"source": "click 8.1.7 -> 8.1.8", "path", "line", "licence",
     "before", "region_old", "region_new", "after"}

``region_old`` / ``region_new`` are the changed lines plus up to ``context`` unchanged
lines around them (an editable region, as an editor would mark one); ``before`` is
up to ``--before-chars`` of the old file before the region and ``after`` up to
``--after-chars`` after it, both cut at line boundaries. A README beside the JSONL
names the source archives, their sha256 and the licence.

Usage: python scripts/mine_edits.py [--package click --old 8.1.7 --new 8.1.8]
"""

from __future__ import annotations

import argparse
import difflib
import email.parser
import hashlib
import io
import json
import random
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "tests" / "data" / "edits"


@dataclass(frozen=True)
class Release:
    version: str
    archive: Path
    sha256: str
    files: dict[str, str]  # path inside the package (top folder dropped) -> text
    licence: str


@dataclass(frozen=True)
class Edit:
    source: str
    path: str
    line: int  # 1-based line of region_old's start in the old file
    licence: str
    before: str
    region_old: str
    region_new: str
    after: str


def download(package: str, version: str, dest: Path) -> Path:
    """The release's sdist (a wheel when there is no sdist), fetched by pip."""
    for flags in (["--no-binary", ":all:"], ["--only-binary", ":all:"]):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *flags,
                        f"{package}=={version}", "-d", str(dest)], check=False,
                       stdout=subprocess.DEVNULL)
        stem = package.replace("-", "_").lower()
        found = [p for p in dest.iterdir()
                 if p.name.lower().replace("-", "_").startswith(f"{stem}_{version}")
                 or p.name.lower().startswith(f"{package.lower()}-{version}")]
        if found:
            return found[0]
    raise SystemExit(f"pip could not download {package}=={version}")


def _members(archive: Path) -> dict[str, bytes]:
    """Every regular file of a .tar.gz / .zip / .whl, read in memory (nothing is extracted
    to disk, so no archive path can escape the temporary folder)."""
    out: dict[str, bytes] = {}
    if archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() else None
                if f is not None:
                    out[m.name] = f.read()
    else:
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not name.endswith("/"):
                    out[name] = z.read(name)
    return out


# Recognised from the licence file's text when the metadata only says "BSD License" (a
# classifier names a family, not a licence).
LICENCE_TEXTS = (("BSD-3-Clause", ("Redistribution and use", "Neither the name")),
                 ("BSD-2-Clause", ("Redistribution and use",)),
                 ("MIT", ("Permission is hereby granted, free of charge",)),
                 ("Apache-2.0", ("Apache License", "Version 2.0")))


def _licence(members: dict[str, bytes]) -> str:
    """License-Expression, else License, else the licence file's text, else the License
    classifiers of PKG-INFO/METADATA."""
    by_depth = sorted(members.items(), key=lambda kv: (kv[0].count("/"), kv[0]))
    for name, data in by_depth:
        if name.endswith(("PKG-INFO", ".dist-info/METADATA")):
            meta = email.parser.Parser().parsestr(data.decode("utf-8", "replace"))
            first = (meta.get("License-Expression") or meta.get("License") or "").strip()
            if first:
                return first.splitlines()[0][:80]
            classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or []
                           if c.startswith("License ::")]
            break
    else:
        classifiers = []
    for name, data in by_depth:
        if Path(name).name.upper().startswith(("LICENSE", "LICENCE", "COPYING")):
            text = data.decode("utf-8", "replace")
            for spdx, phrases in LICENCE_TEXTS:
                if all(p in text for p in phrases):
                    return f"{spdx} ({Path(name).name})"
    return "; ".join(classifiers) or "unknown"


def read_release(package: str, version: str, dest: Path) -> Release:
    archive = download(package, version, dest)
    members = _members(archive)
    is_wheel = archive.suffix == ".whl"
    files: dict[str, str] = {}
    for name, data in members.items():
        # An sdist nests everything under "pkg-1.2.3/"; drop it so paths match across releases.
        rel = name if is_wheel else name.split("/", 1)[-1]
        if not rel.endswith(".py") or ".egg-info/" in rel:
            continue
        try:
            files[rel] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return Release(version, archive, hashlib.sha256(archive.read_bytes()).hexdigest(), files,
                   _licence(members))


def _tail(lines: list[str], max_chars: int) -> str:
    """The last whole lines of ``lines`` that fit in max_chars."""
    out, size = [], 0
    for line in reversed(lines):
        if size + len(line) > max_chars:
            break
        out.append(line)
        size += len(line)
    return "".join(reversed(out))


def _head(lines: list[str], max_chars: int) -> str:
    out, size = [], 0
    for line in lines:
        if size + len(line) > max_chars:
            break
        out.append(line)
        size += len(line)
    return "".join(out)


def file_edits(path: str, old: str, new: str, *, source: str, licence: str, context: int,
               max_changed: int, before_chars: int, after_chars: int) -> list[Edit]:
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    edits = []
    # get_grouped_opcodes(n) puts changes at most 2n equal lines apart into one group and
    # pads each group with up to n equal lines: exactly the region we want.
    for group in matcher.get_grouped_opcodes(context):
        changes = [op for op in group if op[0] != "equal"]
        old_span = changes[-1][2] - changes[0][1]
        new_span = changes[-1][4] - changes[0][3]
        if not 1 <= max(old_span, new_span) <= max_changed:
            continue
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        region_old, region_new = "".join(a[i1:i2]), "".join(b[j1:j2])
        if "".join(region_old.split()) == "".join(region_new.split()):
            continue  # whitespace-only: formatter noise
        edits.append(Edit(source=source, path=path, line=i1 + 1, licence=licence,
                          before=_tail(a[:i1], before_chars), region_old=region_old,
                          region_new=region_new, after=_head(a[i2:], after_chars)))
    return edits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", default="click")
    ap.add_argument("--old", default="8.1.7")
    ap.add_argument("--new", default="8.1.8")
    ap.add_argument("--context", type=int, default=2, help="unchanged lines around a change")
    ap.add_argument("--max-changed", type=int, default=20)
    ap.add_argument("--before-chars", type=int, default=1500)
    ap.add_argument("--after-chars", type=int, default=500)
    ap.add_argument("--max-edits", type=int, default=150,
                    help="above this, a seeded sample keeps the file small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mine_edits_") as tmp:
        old = read_release(args.package, args.old, Path(tmp))
        new = read_release(args.package, args.new, Path(tmp))
    source = f"{args.package} {args.old} -> {args.new}"
    edits: list[Edit] = []
    for path in sorted(old.files.keys() & new.files.keys()):
        if old.files[path] != new.files[path]:
            edits += file_edits(path, old.files[path], new.files[path], source=source,
                                licence=new.licence, context=args.context,
                                max_changed=args.max_changed, before_chars=args.before_chars,
                                after_chars=args.after_chars)
    found = len(edits)
    if found > args.max_edits:
        keep = sorted(random.Random(args.seed).sample(range(found), args.max_edits))
        edits = [edits[i] for i in keep]

    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{args.package}-{args.old}-{args.new}"
    out = args.out_dir / f"{stem}.jsonl"
    buf = io.StringIO()
    for e in edits:
        buf.write(json.dumps(asdict(e), ensure_ascii=False) + "\n")
    out.write_text(buf.getvalue(), encoding="utf-8")
    files = sorted({e.path for e in edits})
    readme = args.out_dir / f"{stem}.md"
    readme.write_text(
        f"# {out.name}\n\n"
        f"{len(edits)} real edits (of {found} found) between two releases of "
        f"`{args.package}` from PyPI, made by `scripts/mine_edits.py` (difflib hunks of "
        f"1..{args.max_changed} changed lines, {args.context} unchanged lines of context "
        f"inside the region, whitespace-only changes dropped).\n\n"
        f"- source: `{old.archive.name}` (sha256 `{old.sha256}`) and `{new.archive.name}` "
        f"(sha256 `{new.sha256}`), https://pypi.org/project/{args.package}/\n"
        f"- licence: {new.licence} (the package's own; the code keeps its copyright, "
        f"see the package's LICENSE file)\n"
        f"- files: {len(files)} ({', '.join(files)})\n"
        f"- fields: source, path, line (1-based, old file), licence, before (≤ "
        f"{args.before_chars} chars of the old file before the region), region_old, "
        f"region_new, after (≤ {args.after_chars} chars after it)\n", encoding="utf-8")
    print(f"{found} edits found, {len(edits)} written to {out} "
          f"({out.stat().st_size / 1024:.0f} KB) from {len(files)} files; licence {new.licence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
