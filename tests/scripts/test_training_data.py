"""The training-data builders: each example kind has the layout and content it promises."""

from __future__ import annotations

import email.message
import itertools
import random
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import training_data as td  # noqa: E402

from engine.models import untrained_model_dir  # noqa: E402

SOURCE = td.SourceFile("pkg/shapes.py", '''\
import math


def area(radius, scale):
    return math.pi * radius * radius * scale


class Circle:
    def __init__(self, radius):
        self.radius = radius

    def grow(self, factor):
        bigger = self.radius * factor
        self.radius = bigger
        return area(bigger, 1)

    def report(self):
        total = area(self.radius, 2)
        print(total)
        return total
''', "MIT")


def test_fim_split_partitions_the_text() -> None:
    for seed in range(200):
        split = td.fim_split(random.Random(seed), SOURCE.text)
        assert split is not None
        prefix, middle, suffix = split
        assert prefix + middle + suffix == SOURCE.text


def test_rename_task_finishes_the_rename_in_the_region() -> None:
    tasks = [t for seed in range(300)
             if (t := td.rename_task(random.Random(seed), SOURCE, 2000)) is not None]
    assert tasks, "the source has repeated identifiers"
    for task in tasks:
        removed = [line[1:] for line in task.history.splitlines() if line.startswith("-")
                   and not line.startswith("---")]
        added = [line[1:] for line in task.history.splitlines() if line.startswith("+")
                 and not line.startswith("+++")]
        assert len(removed) == len(added) == 1
        before, after = re.findall(r"\w+", removed[0]), re.findall(r"\w+", added[0])
        old, new = next((a, b) for a, b in zip(before, after, strict=True) if a != b)
        assert new.startswith(old)
        assert re.search(rf"\b{old}\b", task.region), "the user renamed only the first use"
        assert not re.search(rf"\b{old}\b", task.rewrite), "the rewrite renames every use"
        assert task.rewrite == re.sub(rf"\b{old}\b", new, task.region)
        assert task.region[task.cursor - len(new):task.cursor] == new


def test_add_argument_task_passes_the_new_argument_at_call_sites() -> None:
    tasks = [t for seed in range(300)
             if (t := td.add_argument_task(random.Random(seed), SOURCE, 2000)) is not None]
    assert tasks
    for task in tasks:
        added = [line for line in task.history.splitlines() if line.startswith("+def")]
        assert len(added) == 1 and "=None" in added[0]
        arg = re.search(r"(\w+)=None", added[0])[1]
        assert task.rewrite.count(f"{arg}={arg}") == task.region.count("area(")
        assert task.rewrite.replace(f", {arg}={arg}", "") == task.region


def test_edit_pieces_follow_the_documented_layout() -> None:
    task = td.typing_task(random.Random(1), SOURCE, 2000)
    assert task is not None
    pieces = task.pieces()
    markers = [p for p in pieces if p in td.SPECIAL]
    assert markers == ["<|edit_history|>", "<|file_sep|>", "<|region_start|>", "<|cursor|>",
                       "<|region_end|>", "<|rewrite|>"]
    region = pieces[pieces.index("<|region_start|>") + 1] + pieces[pieces.index("<|cursor|>") + 1]
    assert region == task.region


def test_encoder_keeps_special_token_strings_in_source_literal() -> None:
    encoder = td.Encoder(Tokenizer.from_file(str(untrained_model_dir() / "tokenizer.json")))
    eot = encoder.special_ids["<|endoftext|>"]
    ids = encoder.encode(["<|file_sep|>", "x = '<|endoftext|>'\n", "<|endoftext|>"])
    assert ids[0] == encoder.special_ids["<|file_sep|>"] and ids[-1] == eot
    assert eot not in ids[1:-1]


def test_example_stream_is_deterministic_per_seed() -> None:
    files = [SOURCE, td.SourceFile("pkg/other.py", SOURCE.text.replace("area", "size"), "MIT")]
    first = list(itertools.islice(td.examples(files, seed=3, max_chars=600), 40))
    again = list(itertools.islice(td.examples(files, seed=3, max_chars=600), 40))
    other = list(itertools.islice(td.examples(files, seed=4, max_chars=600), 40))
    assert first == again and first != other
    kinds = {next((p for p in ex if p in td.SPECIAL), None) for ex in first}
    assert {"<|file_sep|>", "<|edit_history|>"} <= kinds


def test_language_weights_change_how_often_a_language_is_drawn() -> None:
    python = td.SourceFile("pkg/a.py", SOURCE.text, "MIT")
    rust = td.SourceFile("crate/a.rs", "fn area(r: f64) -> f64 {\n    r * r\n}\n", "MIT",
                         language="rust")
    edits = itertools.repeat(["<|edit_history|>", "x", "<|endoftext|>"])

    def python_share(weights: dict[str, float] | None) -> float:
        stream = td.examples([python, rust], seed=5, max_chars=600, edit_stream=edits,
                             language_weights=weights)
        texts = ["".join(ex) for ex in itertools.islice(stream, 600)]
        drawn = [t for t in texts if "a.py" in t or "a.rs" in t]
        return sum("a.py" in t for t in drawn) / len(drawn)

    assert 0.4 < python_share(None) < 0.6
    assert python_share({"python": 4}) > 0.72
    assert python_share({"rust": 4, "python": 1}) < 0.28


@pytest.mark.parametrize("licence, allowed", [
    ("MIT", True), ("BSD-3-Clause", True), ("Apache-2.0", True), ("PSF-2.0", True),
    ("MPL-2.0 AND MIT", False), ("GPL-3.0-or-later", False), ("LGPLv3", False),
    ("Proprietary", False),
])
def test_only_permissive_licences_are_used(licence: str, allowed: bool) -> None:
    meta = email.message.Message()
    meta["License-Expression"] = licence
    dist = SimpleNamespace(metadata=meta)
    assert (td._licence(dist) is not None) is allowed
