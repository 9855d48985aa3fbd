"""Training and evaluation examples for the embedded model, built from source code on disk.

Pure Python (no torch): `train_tiny_model.py` builds its token stream with it and
`eval_model.py` builds held-out tasks with the same code, so both see one layout.

The corpus is Python source whose licence allows it: this interpreter's standard library
(PSF-2.0) and the installed distributions whose metadata declares a permissive licence
(MIT, BSD, Apache-2.0, PSF, ISC). Files are split into training and held-out sets by a
hash of their path, so the split does not depend on the order of discovery.

Layouts (the language server builds the same ones; see docs/prompt_formats.md):
- lm:    <|file_sep|>path\\n content
- repo:  <|repo_name|>name\\n <|file_sep|>path\\n content <|file_sep|>path\\n content ...
- fim:   [<|file_sep|>other\\n snippet] <|fim_suffix|>suffix <|fim_prefix|>prefix
         <|fim_middle|>middle <|endoftext|>          (suffix-prefix-middle order)
- edit:  <|edit_history|>diffs <|file_sep|>path\\n before <|region_start|>region with
         <|cursor|> <|region_end|>after <|rewrite|>new region <|endoftext|>
"""

from __future__ import annotations

import difflib
import hashlib
import keyword
import random
import re
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tokenizers import Tokenizer

PERMISSIVE = re.compile(r"\b(MIT|BSD|Apache|PSF|Python Software Foundation|ISC)\b", re.I)
COPYLEFT = re.compile(r"\b(GPL|LGPL|AGPL|MPL|EPL|CDDL)\b", re.I)
MAX_FILE_BYTES = 200_000
# No single distribution may dominate the mix (sympy alone is tens of megabytes).
MAX_SOURCE_BYTES = 6_000_000
MAX_STDLIB_BYTES = 16_000_000
HELD_OUT_PERCENT = 2

SPECIAL = {name: name for name in (
    "<|endoftext|>", "<|repo_name|>", "<|file_sep|>", "<|fim_prefix|>", "<|fim_suffix|>",
    "<|fim_middle|>", "<|fim_pad|>", "<|edit_history|>", "<|instruction|>", "<|region_start|>",
    "<|cursor|>", "<|region_end|>", "<|rewrite|>")}


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative, with the package or "stdlib" as its first part
    text: str
    licence: str
    language: str = "python"  # the language server's name for it (LanguageRegistry)
    # The package it came from: when set, the held-out split is by package (never by file),
    # and `split` says which side it is on ("train" | "held_out").
    package: str = ""
    split: str = ""

    @property
    def held_out(self) -> bool:
        if self.split:
            return self.split == "held_out"
        digest = hashlib.sha1(self.path.encode()).digest()
        return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def _licence(dist: metadata.Distribution) -> str | None:
    meta = dist.metadata
    fields = [meta.get("License-Expression") or "", meta.get("License") or ""]
    fields += [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    for field in fields:
        first_line = field.strip().splitlines()[0] if field.strip() else ""
        if PERMISSIVE.search(first_line) and not COPYLEFT.search(first_line):
            return first_line[:80]
    return None


def corpus(include_packages: bool = True) -> tuple[list[SourceFile], dict[str, str]]:
    """All usable source files, sorted by path, and {source: licence} of what was used."""
    files: list[SourceFile] = []
    licences = {"stdlib": "PSF-2.0 (Python standard library)"}
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    roots: list[tuple[str, Path, list[Path], str]] = [
        ("stdlib", stdlib, sorted(p for p in stdlib.rglob("*.py")
                                  if "site-packages" not in p.parts), licences["stdlib"])]
    if include_packages:
        for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
            licence = _licence(dist)
            name = dist.metadata["Name"]
            paths = [Path(dist.locate_file(f)) for f in dist.files or [] if f.suffix == ".py"]
            if licence is None or not paths or name.lower() in ("sparkedit", "torch"):
                continue
            licences[name] = licence
            roots.append((name, Path(dist.locate_file("")), sorted(paths), licence))
    seen: set[str] = set()
    for source, root, paths, licence in roots:
        used, cap = 0, MAX_STDLIB_BYTES if source == "stdlib" else MAX_SOURCE_BYTES
        # Hash order, so a capped source keeps a spread of its files, not the first letters.
        for path in sorted(paths, key=lambda p: hashlib.sha1(str(p).encode()).digest()):
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            rel = f"{source}/{path.relative_to(root).as_posix()}" if source == "stdlib" \
                else path.relative_to(root).as_posix()
            if rel in seen or not text.strip():
                continue
            if used + len(text) > cap:
                continue
            used += len(text)
            seen.add(rel)
            files.append(SourceFile(rel, text, licence))
    files.sort(key=lambda f: f.path)
    return files, licences


# ---------------------------------------------------------------------------------------
# Example builders. Each returns text pieces; `encode_example` turns them into token ids,
# encoding special tokens as ids and every other piece literally.

Pieces = list[str]


class Encoder:
    """Encodes example pieces: special-token names become their ids, text is literal."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.special_ids = {name: tokenizer.token_to_id(name) for name in SPECIAL}
        self.literal = Tokenizer.from_str(tokenizer.to_str())
        self.literal.encode_special_tokens = True

    def ids(self, text: str) -> list[int]:
        return self.literal.encode(text, add_special_tokens=False).ids if text else []

    def encode(self, pieces: Pieces) -> list[int]:
        out: list[int] = []
        for piece in pieces:
            special = self.special_ids.get(piece)
            out.extend([special] if special is not None else self.ids(piece))
        return out


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _window(lines: list[str], start: int, max_chars: int) -> str:
    out, size = [], 0
    for line in lines[start:]:
        if size + len(line) > max_chars:
            break
        out.append(line)
        size += len(line)
    return "".join(out)


def lm_example(rng: random.Random, f: SourceFile, max_chars: int) -> Pieces:
    lines = _lines(f.text)
    start = rng.randrange(len(lines)) if len(f.text) > max_chars else 0
    return ["<|file_sep|>", f"{f.path}\n", _window(lines, start, max_chars)]


def repo_example(rng: random.Random, group: list[SourceFile], max_chars: int) -> Pieces:
    repo = group[0].path.split("/")[0]
    pieces: Pieces = ["<|repo_name|>", f"{repo}\n"]
    budget = max_chars
    for f in rng.sample(group, min(len(group), 4)):
        chunk = _window(_lines(f.text), 0, max(200, budget // 2))
        pieces += ["<|file_sep|>", f"{f.path}\n", chunk]
        budget -= len(chunk)
        if budget < 200:
            break
    return pieces


def _cursor_line(rng: random.Random, lines: list[str]) -> int | None:
    candidates = [i for i, line in enumerate(lines) if len(line.strip()) >= 4]
    return rng.choice(candidates) if candidates else None


def _block_end(lines: list[str], i: int, max_lines: int) -> int:
    """Index after the statement block that starts at line i (a blank line or a dedent ends it)."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    j = i + 1
    while j < len(lines) and j - i < max_lines:
        line = lines[j]
        if not line.strip():
            break
        if len(line) - len(line.lstrip()) < indent:
            break
        j += 1
    return j


def fim_split(rng: random.Random, text: str) -> tuple[str, str, str] | None:
    """(prefix, middle, suffix) shaped like ghost-text requests: the rest of a line, a few
    lines of the same block, or a random span."""
    lines = _lines(text)
    i = _cursor_line(rng, lines)
    if i is None:
        return None
    line_start = sum(len(line) for line in lines[:i])
    line = lines[i]
    body = line.rstrip("\n")
    indent = len(body) - len(body.lstrip())
    col = rng.randint(indent, max(indent, len(body) - 1))
    cursor = line_start + col
    kind = rng.random()
    if kind < 0.45:
        end = line_start + len(body)  # rest of the line
    elif kind < 0.75:
        end = sum(len(x) for x in lines[:_block_end(lines, i, rng.randint(2, 8))])
        end = max(end - 1, cursor) if text[end - 1:end] == "\n" else end
    else:
        end = min(len(text), cursor + rng.randint(1, 120))
    return text[:cursor], text[cursor:end], text[end:]


def fim_example(rng: random.Random, f: SourceFile, other: SourceFile | None,
                max_chars: int) -> Pieces | None:
    split = fim_split(rng, f.text)
    if split is None:
        return None
    prefix, middle, suffix = split
    middle = middle[: max_chars // 6]
    # Windows cut at line boundaries, as the prompt builder cuts them.
    prefix_budget = int(max_chars * rng.uniform(0.45, 0.7))
    suffix_budget = int(max_chars * rng.uniform(0.1, 0.25))
    if len(prefix) > prefix_budget:
        cut = prefix.find("\n", len(prefix) - prefix_budget)
        prefix = prefix[cut + 1:] if cut >= 0 else prefix[-prefix_budget:]
    if len(suffix) > suffix_budget:
        cut = suffix.rfind("\n", 0, suffix_budget)
        suffix = suffix[: cut + 1] if cut > 0 else suffix[:suffix_budget]
    pieces: Pieces = []
    if other is not None:
        room = max_chars - len(prefix) - len(suffix) - len(middle)
        if room > 300:
            pieces += ["<|file_sep|>", f"{other.path}\n", _window(_lines(other.text), 0, room)]
    return pieces + ["<|fim_suffix|>", suffix, "<|fim_prefix|>", prefix, "<|fim_middle|>",
                     middle, "<|endoftext|>"]


IDENT = re.compile(r"\b[a-z_][a-z0-9_]{2,}\b")
KEYWORDS = frozenset(keyword.kwlist) | {"self", "cls", "print", "len", "str", "int", "list",
                                         "dict", "set", "tuple", "range"}
RENAME_SUFFIXES = ("_new", "_value", "_items", "_count", "_list", "_map", "2", "_name")


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}", n=1))


@dataclass(frozen=True)
class EditTask:
    """One next-edit example: the document after the user's last change, the region the
    model may rewrite, and the rewrite that finishes the change."""

    path: str
    history: str  # unified diff of the user's last change
    before: str  # document text before the region
    region: str  # region text in the current document, cursor marked by `cursor`
    cursor: int  # offset of the cursor inside `region`
    after: str
    rewrite: str  # the region as it should become

    def pieces(self) -> Pieces:
        return ["<|edit_history|>", self.history, "<|file_sep|>", f"{self.path}\n", self.before,
                "<|region_start|>", self.region[: self.cursor], "<|cursor|>",
                self.region[self.cursor:], "<|region_end|>", self.after, "<|rewrite|>"]


def _region_bounds(rng: random.Random, lines: list[str]) -> tuple[int, int]:
    start = rng.randrange(len(lines))
    return start, min(len(lines), start + rng.randint(4, 12))


def _context(lines: list[str], start: int, end: int, max_chars: int) -> tuple[str, str]:
    before = "".join(lines[:start])[-max_chars * 2 // 3:]
    cut = before.find("\n")
    before = before[cut + 1:] if 0 <= cut < len(before) - 1 and start > 0 else before
    after = "".join(lines[end:])[: max_chars // 4]
    return before, after[: after.rfind("\n") + 1] if "\n" in after else after


def rename_task(rng: random.Random, f: SourceFile, max_chars: int) -> EditTask | None:
    lines = _lines(f.text)
    if len(lines) < 6:
        return None
    start, end = _region_bounds(rng, lines)
    region = "".join(lines[start:end])
    names = [m for m in IDENT.findall(region) if m not in KEYWORDS]
    repeated = sorted({n for n in names if len(re.findall(rf"\b{n}\b", region)) >= 2})
    if not repeated:
        return None
    old = rng.choice(repeated)
    new = old + rng.choice(RENAME_SUFFIXES)
    pattern = re.compile(rf"\b{re.escape(old)}\b")
    first = pattern.search(region)
    assert first is not None
    # The user renamed the first use; the model finishes the rest.
    current = region[: first.start()] + new + region[first.end():]
    done = pattern.sub(new, region)
    before, after = _context(lines, start, end, max_chars)
    history = unified_diff(f.path, "".join(lines[:start]) + region + "".join(lines[end:]),
                           "".join(lines[:start]) + current + "".join(lines[end:]))
    return EditTask(f.path, history, before, current, first.start() + len(new), after, done)


CALL_DEF = re.compile(r"^([ \t]*def[ \t]+)([a-z_]\w*)\((.*)\):\s*$", re.M)


def add_argument_task(rng: random.Random, f: SourceFile, max_chars: int) -> EditTask | None:
    defs = [m for m in CALL_DEF.finditer(f.text) if "(" not in m[3] and m[2] not in KEYWORDS]
    rng.shuffle(defs)
    lines = _lines(f.text)
    for d in defs[:5]:
        call = re.compile(rf"(?<![\w.]){re.escape(d[2])}\(([^()\n]*)\)")
        uses = [i for i, line in enumerate(lines) if call.search(line) and "def " not in line]
        if not uses:
            continue
        i = rng.choice(uses)
        start, end = max(0, i - rng.randint(0, 4)), min(len(lines), i + rng.randint(1, 6))
        arg = rng.choice(("timeout", "strict", "encoding", "verbose", "limit", "context"))
        params = d[3].strip()
        new_def = f"{d[1]}{d[2]}({params}, {arg}=None):" if params else f"{d[1]}{d[2]}({arg}=None):"
        def_line = f.text.count("\n", 0, d.start())
        if start <= def_line < end:
            continue
        changed = lines.copy()
        changed[def_line] = new_def + "\n"
        region = "".join(lines[start:end])
        def add_arg(m: re.Match[str], name: str = d[2], arg: str = arg) -> str:
            return f"{name}({m[1]}, {arg}={arg})" if m[1].strip() else f"{name}({arg}={arg})"

        done = call.sub(add_arg, region)
        if done == region:
            continue
        before_lines, after_lines = changed[:start], changed[end:]
        before, after = _context(before_lines + lines[start:end] + after_lines,
                                 start, end, max_chars)
        history = unified_diff(f.path, f.text, "".join(changed))
        return EditTask(f.path, history, before, region, 0, after, done)
    return None


def copy_task(rng: random.Random, f: SourceFile, max_chars: int) -> EditTask | None:
    """A change elsewhere that needs nothing in the region: the rewrite is the region."""
    lines = _lines(f.text)
    if len(lines) < 6:
        return None
    start, end = _region_bounds(rng, lines)
    region = "".join(lines[start:end])
    if not region.strip():
        return None
    j = rng.randrange(len(lines))
    if start <= j < end:
        return None
    changed = lines.copy()
    changed[j] = lines[j].rstrip("\n") + "  # noqa\n"
    before, after = _context(changed, start, end, max_chars)
    return EditTask(f.path, unified_diff(f.path, f.text, "".join(changed)), before, region,
                    rng.randrange(len(region)), after, region)


def typing_task(rng: random.Random, f: SourceFile, max_chars: int) -> EditTask | None:
    """The user is typing a line; the rewrite finishes it."""
    lines = _lines(f.text)
    i = _cursor_line(rng, lines)
    if i is None or len(lines) < 4:
        return None
    start, end = max(0, i - rng.randint(0, 4)), min(len(lines), i + rng.randint(1, 6))
    body = lines[i].rstrip("\n")
    col = rng.randint(len(body) - len(body.lstrip()), len(body) - 1)
    partial = body[:col] + lines[i][len(body):]
    current_lines = lines[:i] + [partial] + lines[i + 1:]
    region = "".join(current_lines[start:end])
    cursor = sum(len(x) for x in current_lines[start:i]) + col
    history = unified_diff(f.path, "".join(lines[:i] + [lines[i][:0] + "\n"] + lines[i + 1:]),
                           "".join(current_lines))
    before, after = _context(current_lines, start, end, max_chars)
    return EditTask(f.path, history, before, region, cursor, after, "".join(lines[start:end]))


EDIT_KINDS = (("rename", rename_task, 0.35), ("add_argument", add_argument_task, 0.2),
              ("typing", typing_task, 0.3), ("copy", copy_task, 0.15))


def edit_task(rng: random.Random, f: SourceFile, max_chars: int) -> EditTask | None:
    r, acc = rng.random(), 0.0
    for _, build, share in EDIT_KINDS:
        acc += share
        if r < acc:
            return build(rng, f, max_chars)
    return None


def examples(files: list[SourceFile], seed: int, max_chars: int,
             mix: tuple[float, float, float, float] = (0.25, 0.1, 0.45, 0.2),
             edit_stream: Iterator[Pieces] | None = None,
             language_weights: dict[str, float] | None = None) -> Iterator[Pieces]:
    """An endless, seeded stream of training examples over `files` (lm, repo, fim, edit).

    Files are drawn language first (each language equally often, or as `language_weights`
    says: a language not named weighs 1), so a language with many files does not crowd out
    the others. The edit share comes from `edit_stream` when
    given (edit_mix.py's multilingual kinds), else from this module's Python kinds."""
    rng = random.Random(seed)
    groups: dict[str, list[SourceFile]] = {}
    by_language: dict[str, list[SourceFile]] = {}
    for f in files:
        groups.setdefault(f.path.rsplit("/", 1)[0], []).append(f)
        by_language.setdefault(f.language, []).append(f)
    group_list = [g for g in groups.values() if len(g) >= 2]
    languages = sorted(by_language)
    weights = [(language_weights or {}).get(lang, 1.0) for lang in languages]
    while True:
        # rng.choice when unweighted keeps the streams of earlier runs (same seed) unchanged
        language = rng.choices(languages, weights)[0] if language_weights else rng.choice(
            languages)
        f = rng.choice(by_language[language])
        r = rng.random()
        if r < mix[0]:
            yield lm_example(rng, f, max_chars)
        elif r < mix[0] + mix[1] and group_list:
            yield repo_example(rng, rng.choice(group_list), max_chars)
        elif r < mix[0] + mix[1] + mix[2]:
            siblings = groups[f.path.rsplit("/", 1)[0]]
            other = rng.choice(siblings) if len(siblings) > 1 and rng.random() < 0.3 else None
            ex = fim_example(rng, f, other if other is not f else None, max_chars)
            if ex is not None:
                yield ex
        elif edit_stream is not None:
            yield next(edit_stream)
        else:
            task = edit_task(rng, f, max_chars)
            if task is not None:
                yield task.pieces() + [task.rewrite, "<|endoftext|>"]
