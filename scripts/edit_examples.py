"""Next-edit training and evaluation examples in the language server's eight languages.

Each example (`EditExample`, edit_core.py) is laid out exactly as the server's
`build_edit_prompt` lays out a next-edit request (`pieces()`), with the region and cursor
the server would choose (`choose_region` over the document's syntax tree) and the history
as the server records it; `training_pieces()` adds the rewrite and `<|endoftext|>`.
Every example's rewrite passes the server's gates (edit_gates.py) and leaves the document
parsing whenever it parsed before the user's change.

Kinds, each a function (rng, SourceFile, max_chars) -> EditExample | None:
- propagation (edit_propagation.py): rename, replace_call, add_argument, convert;
- typing: the user is in the middle of a line; the rewrite finishes it;
- no_edit: the user's change needs nothing in the region; the rewrite is the region;
- mined (`mined`, from a `ReleasePair`): one or more hunks of a real diff between two
  releases are the history, a later hunk's region is the target.
"""

from __future__ import annotations

import difflib
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from edit_core import EditExample, Replacement, gate, next_edit
from edit_propagation import (
    add_argument,
    convert,
    new_name,
    parsed_file,
    rename,
    rename_candidates,
    replace_call,
)
from edit_syntax import COMMENTS, LANGUAGES, NUMBERS, STRINGS, Syntax, default_syntax
from training_data import SourceFile

__all__ = ["EditExample", "KINDS", "ReleasePair", "gate", "load_release_pairs", "mined",
           "mined_examples", "no_edit", "typing"]

Kind = Callable[[random.Random, SourceFile, int], EditExample | None]
_NOTES = ("TODO: handle the empty case", "NOTE: keep in sync with the docs",
          "FIXME: slow for large inputs", "the order matters here", "see the release notes",
          "checked by the caller")


def typing(rng: random.Random, f: SourceFile, max_chars: int,
           syntax: Syntax | None = None) -> EditExample | None:
    """The user typed the start of a line (into a blank line, or a new one)."""
    p = parsed_file(f, syntax, rng)
    if p is None:
        return None
    text = p.text
    candidates, at = [], 0
    for body in text.split("\n"):
        if len(body.strip()) >= 4:
            candidates.append((at, body))
        at += len(body) + 1
    if not candidates:
        return None
    start, body = rng.choice(candidates)
    indent = len(body) - len(body.lstrip())
    col = rng.randint(indent + 1, len(body) - 1)
    end = start + len(body)
    if rng.random() < 0.5 or end >= len(text):
        original = text[:start] + text[end:]  # the line was blank
        change = (start, start, body[:col])
    else:
        original = text[:start] + text[end + 1:]  # no line yet: the user opened one
        change = (start, start, body[:col] + "\n")
    cursor = start + col
    return next_edit("typing", f.language, f.path, original, [change], cursor,
                     [(cursor, cursor, body[col:])], max_chars, syntax=syntax)


def _literal_change(rng: random.Random, node_text: str) -> str | None:
    if node_text[:1].isdigit():
        if not node_text.isdigit():
            return None
        return str(int(node_text) * rng.choice((2, 10)) + rng.randint(1, 9))
    quote = node_text[-1:]
    if quote not in ("'", '"', "`") or node_text.endswith(quote * 3) or len(node_text) < 3 \
            or node_text[-2] == "\\":
        return None
    return node_text[:-1] + rng.choice((" again", " now", " (done)", "!")) + quote


def no_edit(rng: random.Random, f: SourceFile, max_chars: int,
            syntax: Syntax | None = None) -> EditExample | None:
    """A change that needs nothing more in the region around it: a literal changed, a
    comment added, or the last occurrence of a rename made (every earlier one is in the
    history)."""
    syntax = syntax or default_syntax()
    p = parsed_file(f, syntax, rng)
    if p is None:
        return None
    variant = rng.randrange(3)
    changes: list[Replacement]
    if variant == 0:
        literals = list(p.nodes(NUMBERS[f.language] | STRINGS[f.language]))
        if not literals:
            return None
        node = rng.choice(literals)
        new = _literal_change(rng, p.text_of(node))
        if new is None:
            return None
        changes = [(p.start(node), p.end(node), new)]
        cursor = p.start(node) + len(new) - (0 if new[:1].isdigit() else 1)
    elif variant == 1:
        comment = "#" if f.language == "python" else "//"
        statements = [n for n in p.nodes() if n.parent is not None and
                      n.parent.type in p.spec.block_types and n.is_named and
                      n.type not in COMMENTS[f.language]]
        if not statements:
            return None
        node = rng.choice(statements)
        at = p.text.rfind("\n", 0, p.start(node)) + 1
        indent = p.text[at:p.start(node)]
        if indent.strip():
            return None
        line = f"{indent}{comment} {rng.choice(_NOTES)}\n"
        changes = [(at, at, line)]
        cursor = at + len(line) - 1
    else:
        candidates = rename_candidates(p)
        if not candidates:
            return None
        old = rng.choice(sorted(candidates))
        new = new_name(rng, old, f.language, p.text)
        uses = sorted(candidates[old], key=lambda n: n.start_byte)
        if new is None or len(uses) > 6:
            return None
        delta = len(new) - len(old)
        changes = [(p.start(n) + k * delta, p.end(n) + k * delta, new)
                   for k, n in enumerate(uses)]
        cursor = changes[-1][0] + len(new)
    return next_edit("no_edit", f.language, f.path, p.text, changes, cursor, [], max_chars,
                     syntax=syntax, need_change=False)


KINDS: dict[str, Kind] = {"rename": rename, "replace_call": replace_call,
                          "add_argument": add_argument, "convert": convert,
                          "typing": typing, "no_edit": no_edit}
PROPAGATION = ("rename", "replace_call", "add_argument", "convert")


# -- mined from two releases -----------------------------------------------------------------

@dataclass(frozen=True)
class ReleasePair:
    """One file in two consecutive releases of a package (a `release_pairs.jsonl` record)."""

    package: str
    registry: str
    language: str
    path: str
    old_version: str
    new_version: str
    licence: str
    old_text: str
    new_text: str
    split: str = ""

    @classmethod
    def from_record(cls, record: dict[str, str]) -> ReleasePair:
        return cls(**{f.name: str(record.get(f.name, "")) for f in fields(cls)})


def load_release_pairs(path: str | Path) -> Iterator[ReleasePair]:
    """The records of a `release_pairs.jsonl` file, in file order (blank lines skipped)."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield ReleasePair.from_record(json.loads(line))


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def mined(rng: random.Random, pair: ReleasePair, max_chars: int,
          syntax: Syntax | None = None) -> EditExample | None:
    """Hunks of the real diff up to one chosen at random are made (the newest one to three
    of them are the history); the rewrite makes the later hunks inside the region at the
    next hunk, where the cursor goes."""
    language = pair.language.lower() if pair.language.lower() in LANGUAGES else ""
    syntax = syntax or default_syntax()
    spec = syntax.spec(language) if language else syntax.registry.for_path(pair.path)
    if spec is None:
        return None
    old, new = _lines(pair.old_text), _lines(pair.new_text)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    # a copy: get_grouped_opcodes trims the first and last "equal" runs of the cached list
    opcodes = list(matcher.get_opcodes())
    groups = [[op for op in g if op[0] != "equal"] for g in matcher.get_grouped_opcodes(2)]
    groups = [g for g in groups if g]
    if len(groups) < 2:
        return None
    last = rng.randrange(len(groups) - 1)
    shown = range(max(0, last - rng.randrange(3)), last + 1)
    target = rng.randrange(last + 1, len(groups))

    def text_with(done: int) -> tuple[list[str], dict[tuple, int]]:
        """Lines with the first `done` groups made, and where each change op starts."""
        made = {op for g in groups[:done] for op in g}
        lines: list[str] = []
        where: dict[tuple, int] = {}
        for op in opcodes:
            tag, i1, i2, j1, j2 = op
            where[op] = len(lines)
            lines += new[j1:j2] if tag == "equal" or op in made else old[i1:i2]
        return lines, where

    changes: list[Replacement] = []
    for g in shown:
        lines, where = text_with(g)
        first, final = groups[g][0], groups[g][-1]
        start = sum(map(len, lines[:where[first]]))
        end = start + sum(map(len, old[first[1]:final[2]]))
        changes.append((start, end, "".join(new[first[3]:final[4]])))
    lines, where = text_with(last + 1)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    targets = [(offsets[where[op]], offsets[where[op] + op[2] - op[1]], "".join(new[op[3]:op[4]]))
               for g in groups[last + 1:] for op in g]
    tag, i1, i2, j1, j2 = groups[target][0]
    cursor = offsets[where[groups[target][0]]]
    if tag == "replace":
        cursor += _common_prefix(old[i1].rstrip("\n"), new[j1])
    original = "".join(text_with(shown[0])[0])
    return next_edit("mined", spec.name, pair.path, original, changes, cursor, targets,
                     max_chars, syntax=syntax)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def mined_examples(pairs: Iterable[ReleasePair], seed: int, max_chars: int,
                   tries: int = 3) -> Iterator[EditExample]:
    """Examples from each pair in turn, up to `tries` attempts per pair."""
    rng = random.Random(seed)
    for pair in pairs:
        for _ in range(tries):
            example = mined(rng, pair, max_chars)
            if example is not None:
                yield example
                break
