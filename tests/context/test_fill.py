"""The trailing repository segment: the room the other segments leave goes to more of the
repository, the budget full over a large real tree, the front of the prompt still stable."""

from __future__ import annotations

import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server.context.layout import ContextOptions, fill_allotment, shared_prefix
from lsp_server.documents import AppliedEdit, Document
from lsp_server.workspace import Workspace, WorkspaceSettings

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULE = STDLIB / "asyncio" / "tasks.py"
TYPED = "        result = self._normalize(value)\n"


@pytest.fixture(scope="module")
def stdlib() -> Workspace:
    if not MODULE.is_file():
        pytest.skip(f"this Python has no standard library source at {STDLIB}")
    tokenizer = Tokenizer.from_dir(default_model_dir())
    workspace = Workspace(tokenizer=tokenizer, settings=WorkspaceSettings(
        root=STDLIB, exclude=("site-packages/", "test/", "idlelib/")))
    workspace.build_index()
    return workspace


def open_module(workspace: Workspace) -> tuple[Document, int]:
    text = MODULE.read_text(encoding="utf-8")
    doc = Document(uri=MODULE.as_uri(), text=text, version=0, language_id="python")
    workspace.opened(doc)
    anchor = text.index("\n    def ", len(text) // 4)
    return doc, text.index("\n", text.index(":\n", anchor) + 2) + 1


@pytest.mark.parametrize("budget", [4096, 32768, 131072])
def test_the_budget_is_filled_from_the_repository(stdlib, budget):
    doc, offset = open_module(stdlib)
    options = ContextOptions(budget=budget)
    without = stdlib.context(doc, offset, replace(options, fill=False))
    context = stdlib.context(doc, offset, options)
    assert 0.97 * budget <= context.total_tokens <= budget
    assert without.total_tokens < context.total_tokens
    fill = [s for s in context.segments if s.kind == "repository_fill"]
    assert fill, "the room left was handed to more repository files"
    before = [s.path for s in context.segments if s.kind != "repository_fill"]
    filled = [s.path for s in fill]
    assert len(set(filled)) == len(filled) and not set(filled) & set(before), \
        "no file is shown twice"
    # Without the fill the other segments are exactly what they were: it only adds.
    kept = [s for s in context.segments if s.kind != "repository_fill"]
    assert [s.tokens for s in kept] == [s.tokens for s in without.segments]


def test_typing_keeps_the_front_of_a_full_prompt(stdlib):
    doc, offset = open_module(stdlib)
    budget = 131072
    options = ContextOptions(budget=budget)
    previous = stdlib.context(doc, offset, options).tokens
    shared, fills = [], []
    for ch in TYPED:
        before = doc
        doc = Document(uri=doc.uri, text=doc.text[:offset] + ch + doc.text[offset:],
                       version=(doc.version or 0) + 1, language_id="python")
        stdlib.changed(before, doc, [AppliedEdit(start=offset, removed="", inserted=ch)])
        offset += 1
        tokens = stdlib.context(doc, offset, options).tokens
        assert len(tokens) <= budget
        shared.append(shared_prefix(previous, tokens) / len(tokens))
        fills.append(len(tokens) / budget)
        previous = tokens
    assert sum(shared) / len(shared) > 0.95
    assert min(fills) >= 0.97


def test_the_fill_keeps_its_allotment_while_what_it_holds_fits():
    available = 128 * 1000  # steps of 1000 tokens
    first = fill_allotment(40_500, available, None)
    assert first == 39_000  # rounded down, less a step to grow into
    # The current file grows: the room shrinks, but what the fill holds still fits.
    assert fill_allotment(38_800, available, first, 38_700) == first
    # Past that, a new plan, again with a step to spare.
    assert fill_allotment(38_600, available, first, 38_700) == 37_000
    # The room grows by less than two steps: kept; by more: re-planned.
    assert fill_allotment(40_900, available, first, 38_700) == first
    assert fill_allotment(41_000, available, first, 38_700) == 40_000
    assert fill_allotment(10, available, None) == 0
