"""The edit part of the training mix, and fixed evaluation tasks, over files of all eight
languages. `edit_examples` replaces `training_data.edit_task` in the training stream.

Shares of the stream (of the examples yielded, not of the attempts):

| part        | share | what                                                         |
|-------------|-------|--------------------------------------------------------------|
| propagation | 30 %  | rename, replace_call, add_argument, convert (equal shares)   |
| typing      | 20 %  | finish the line being typed                                  |
| no_edit     | 15 %  | the change needs nothing in the region: the rewrite is a copy |
| instruction | 25 %  | instruction_examples.py's kinds (some of them "no change")   |
| mined       | 10 %  | later hunks of a real diff between two releases              |

Without release pairs the mined share goes to propagation. A part whose attempt fails is
tried again (with another file), so the shares hold whatever the kinds' yields are, unless
a part fails PART_TRIES times in a row (files or pairs that have nothing of it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from edit_core import EditExample
from edit_examples import KINDS, PROPAGATION, ReleasePair, mined
from edit_syntax import LANGUAGES
from instruction_examples import InstructionExample, instruction_example, kinds_for
from training_data import Pieces, SourceFile

SHARES = {"propagation": 0.30, "typing": 0.20, "no_edit": 0.15, "instruction": 0.25,
          "mined": 0.10}
PART_TRIES = 200  # attempts at one part before another is drawn (its share then shrinks)
MAX_MISSES = 10_000  # attempts in a row without an example: the files have none to give
EDIT_TASK_KINDS = (*PROPAGATION, "typing", "no_edit")
T = TypeVar("T")


def _usable(files: Iterable[SourceFile]) -> list[SourceFile]:
    return [f for f in files if f.language in LANGUAGES and f.text.strip()]


def _attempt(rng: random.Random, part: str, files: Sequence[SourceFile],
             pairs: Sequence[ReleasePair], max_chars: int
             ) -> EditExample | InstructionExample | None:
    """One try; None when it gives nothing. Real files hold what no builder foresaw (Python
    2 that tree-sitter accepts and `ast` does not, grammar corners): a builder that fails on
    one is a failed try, not the end of a training run of hours."""
    try:
        return _build(rng, part, files, pairs, max_chars)
    except (SyntaxError, ValueError, RecursionError, LookupError, AttributeError,
            AssertionError, UnicodeError):
        return None


def _build(rng: random.Random, part: str, files: Sequence[SourceFile],
           pairs: Sequence[ReleasePair], max_chars: int
           ) -> EditExample | InstructionExample | None:
    if part == "mined":
        return mined(rng, rng.choice(pairs), max_chars)
    f = rng.choice(files)
    if part == "instruction":
        return instruction_example(rng, f, max_chars)
    kind = rng.choice(PROPAGATION) if part == "propagation" else part
    return KINDS[kind](rng, f, max_chars)


def edit_task(rng: random.Random, f: SourceFile, max_chars: int
              ) -> EditExample | InstructionExample | None:
    """One attempt on one file, a part drawn by SHARES (mined left out): a drop-in for
    `training_data.edit_task` (the result has `pieces()` and `rewrite`)."""
    if f.language not in LANGUAGES:
        return None
    parts = [part for part in SHARES if part != "mined"]
    part = rng.choices(parts, [SHARES[part] for part in parts])[0]
    return _attempt(rng, part, [f], (), max_chars)


def edit_examples(files: Sequence[SourceFile], seed: int, max_chars: int,
                  release_pairs: Iterable[ReleasePair] = ()) -> Iterator[Pieces]:
    """An endless, seeded stream of edit examples (prompt pieces, the rewrite and
    `<|endoftext|>`), mixed as SHARES says. RuntimeError when MAX_MISSES attempts in a
    row give nothing (no file has anything to edit)."""
    rng = random.Random(seed)
    usable, pairs = _usable(files), list(release_pairs)
    shares = dict(SHARES)
    if not pairs:
        shares["propagation"] += shares.pop("mined")
    if not usable:
        shares = {"mined": 1.0} if pairs else {}
    if not shares:
        raise ValueError("no file in a language with syntax support, and no release pairs")
    parts, weights = list(shares), list(shares.values())
    part = rng.choices(parts, weights)[0]
    misses = 0
    while True:
        example = _attempt(rng, part, usable, pairs, max_chars)
        if example is None:
            misses += 1
            if misses >= MAX_MISSES:
                raise RuntimeError(f"{MAX_MISSES} attempts in a row gave no edit example")
            if misses % PART_TRIES == 0:
                part = rng.choices(parts, weights)[0]
            continue
        misses = 0
        yield example.training_pieces()
        part = rng.choices(parts, weights)[0]


def _fixed(n: int, seed: int, kinds: Sequence[str],
           build: Callable[[random.Random, str], T | None], attempts_per_task: int) -> list[T]:
    """n tasks, the kinds in turn; a kind that gives nothing in its attempts is skipped."""
    rng = random.Random(seed)
    out: list[T] = []
    live = list(kinds)
    turn = 0
    while len(out) < n and live:
        kind = live[turn % len(live)]
        for _ in range(attempts_per_task):
            task = build(rng, kind)
            if task is not None:
                out.append(task)
                turn += 1
                break
        else:
            live.remove(kind)
    return out


def held_out_edit_tasks(files: Sequence[SourceFile], n: int, seed: int,
                        max_chars: int = 2400, max_rewrite_chars: int = 1200,
                        release_pairs: Sequence[ReleasePair] = ()) -> list[EditExample]:
    """A fixed list of next-edit tasks (pass held-out files): the kinds in turn, each on a
    file of a language drawn uniformly, with its expected rewrite (`rewrite`); "mined" too
    when release pairs are given."""
    usable, pairs = _usable(files), list(release_pairs)
    by_language: dict[str, list[SourceFile]] = {}
    for f in usable:
        by_language.setdefault(f.language, []).append(f)
    languages = sorted(by_language)

    def build(rng: random.Random, kind: str) -> EditExample | None:
        # language first, so that the tasks cover every language, not the one with most files
        if kind == "mined":
            task = mined(rng, rng.choice(pairs), max_chars)
        else:
            task = KINDS[kind](rng, rng.choice(by_language[rng.choice(languages)]),
                               max_chars) if usable else None
        return task if task is not None and len(task.rewrite) <= max_rewrite_chars else None

    kinds = (*EDIT_TASK_KINDS, "mined") if pairs else EDIT_TASK_KINDS
    return _fixed(n, seed, kinds, build, attempts_per_task=300)


def held_out_instruction_tasks(files: Sequence[SourceFile], n: int, seed: int,
                               max_chars: int = 2400) -> list[InstructionExample]:
    """A fixed list of instruction tasks (pass held-out files): the kinds in turn. Score a
    model's rewrite with `task.check(rewrite)` (check_instruction with the task's kind and
    args); `task.example.rewrite` is the reference answer."""
    usable = _usable(files)
    kinds = sorted({kind for f in usable for kind in kinds_for(f.language)})

    def build(rng: random.Random, kind: str) -> InstructionExample | None:
        suited = [f for f in usable if kind in kinds_for(f.language)]
        return instruction_example(rng, rng.choice(suited), max_chars, kind)

    return _fixed(n, seed, kinds, build, attempts_per_task=300)
