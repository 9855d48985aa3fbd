"""predict_edit against a real engine process (and a scripted one for exact outcomes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.models import default_model_dir, untrained_model_dir
from engine.request import GenerateParams
from engine.tokenizer import Tokenizer
from lsp_server.completion import STATS_KEYS, TIMING_KEYS, CompletionError
from lsp_server.documents import AppliedEdit, Document
from lsp_server.edit_flow import EditSuggestion, predict_edit, why_no_edit
from lsp_server.edit_prompt_text import CURSOR, REGION_END, REGION_START
from lsp_server.edits import TextEdit
from lsp_server.engine_process import EngineOptions, EngineProcess
from lsp_server.workspace import Workspace, WorkspaceSettings

URI = "file:///project/stats.py"
# A Qwen2-shaped random model with a Qwen-style tokenizer: no sparkedit edit tokens.
QWEN = Path(__file__).parents[1] / "data" / "reference" / "qwen2-tied"
SOURCE = '''import math


def mean(values):
    total = 0
    for value in values:
        total += value
    return total / len(values)


def spread(values):
    return max(values) - min(values)
'''
OLD, NEW = "total", "total_sum"


def _workspace(model_dir: Path) -> Workspace:
    return Workspace(tokenizer=Tokenizer.from_dir(model_dir),
                     settings=WorkspaceSettings(root=None))


def _renamed_first_use(workspace: Workspace, source: str = SOURCE, old: str = OLD,
                       new: str = NEW) -> tuple[Document, int]:
    """The user renamed the first use of `old` (as the training data's rename examples)."""
    before = Document(uri=URI, text=source, version=1, language_id="python")
    workspace.opened(before)
    at = source.index(old)
    after = Document(uri=URI, text=source[:at] + new + source[at + len(old):], version=2,
                     language_id="python")
    workspace.changed(before, after, [AppliedEdit(start=at, removed=old, inserted=new)],
                      now=100.0)
    workspace.history.close_open(110.0)
    return after, at + len(new)


def _apply(text: str, edits: list[TextEdit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[:edit.start] + edit.new_text + text[edit.end:]
    return text


def _check_mechanics(text: str, suggestion: EditSuggestion, budget: int) -> None:
    region = suggestion.region
    assert set(suggestion.timing) == set(TIMING_KEYS)
    assert set(suggestion.stats) == set(STATS_KEYS)
    assert isinstance(suggestion.timing["context_ms"], float)
    assert isinstance(suggestion.stats["accepted_draft_tokens"], int)  # the draft was used
    assert 0 < suggestion.stats["prompt_tokens"] <= budget
    if suggestion.finish_reason == "length":
        assert suggestion.edits == [] and suggestion.new_region == ""
        return
    if suggestion.suppressed:  # a quality gate held an (untrained) model's rewrite back
        assert suggestion.edits == [] and suggestion.new_region != text[region.start:region.end]
        return
    assert _apply(text, suggestion.edits) \
        == text[:region.start] + suggestion.new_region + text[region.end:]
    assert all(region.start <= e.start <= e.end <= region.end for e in suggestion.edits)


@pytest.fixture
async def untrained():
    engine = EngineProcess(EngineOptions(model=str(untrained_model_dir()), log_level="WARNING"))
    try:
        yield await engine.handle()
    finally:
        await engine.stop()


async def test_next_edit_mechanics_with_a_real_engine(untrained):
    workspace = _workspace(untrained_model_dir())
    doc, cursor = _renamed_first_use(workspace)
    suggestion = await predict_edit(workspace, doc, cursor, engine=untrained.client,
                                    info=untrained.info, budget=512)
    _check_mechanics(doc.text, suggestion, 512)
    # the region is the function around the cursor, whole lines
    region_text = doc.text[suggestion.region.start:suggestion.region.end]
    assert region_text.startswith("def mean(values):\n") and region_text.endswith("\n")
    assert suggestion.region.cursor == cursor


async def test_instruction_edit_of_a_selection_with_a_real_engine(untrained):
    workspace = _workspace(untrained_model_dir())
    doc = Document(uri=URI, text=SOURCE, version=1, language_id="python")
    workspace.opened(doc)
    start = SOURCE.index("max(values)")
    suggestion = await predict_edit(workspace, doc, start, engine=untrained.client,
                                    info=untrained.info, budget=512,
                                    instruction="use a local variable",
                                    selection=(start, start + 5))
    line = SOURCE.index("    return max")
    assert (suggestion.region.start, suggestion.region.end) == (line, len(SOURCE))
    _check_mechanics(SOURCE, suggestion, 512)


async def test_the_trained_model_completes_a_rename_and_its_edits_apply():
    workspace = _workspace(default_model_dir())
    # A short function, so that the small model's rewrite ends before max_tokens and
    # its edits are applied (at the time of writing: a wrong but finished rewrite).
    source = "def area(width, height):\n    result = width * height\n    print(result)\n" \
             "    return result\n"
    doc, cursor = _renamed_first_use(workspace, source, "result", "result_value")
    engine = EngineProcess(EngineOptions(model=str(default_model_dir()), log_level="WARNING"))
    try:
        handle = await engine.handle()
        suggestion = await predict_edit(workspace, doc, cursor, engine=handle.client,
                                        info=handle.info, budget=768)
    finally:
        await engine.stop()
    # The 3M model's quality is low: only the mechanics are asserted, not the rename.
    _check_mechanics(doc.text, suggestion, 768)


class ScriptedEngine:
    """Answers `generate` with a fixed text, or with `text(draft)` (the region it was sent);
    keeps the params, checked as the engine would."""

    def __init__(self, text: str | Callable[[str], str], finish_reason: str = "eos") -> None:
        self.text, self.finish_reason = text, finish_reason
        self.params: list[dict[str, Any]] = []

    async def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]:
        raise AssertionError("the edit prompt is built with the workspace's counter")

    async def generate(self, params: dict[str, Any], on_token: Any = None) -> dict[str, Any]:
        GenerateParams.from_wire(params, vocab_size=8192, context_limit=1024)
        self.params.append(params)
        text = self.text if isinstance(self.text, str) else self.text(params["draft"])
        return {"text": text, "tokens": [], "finish_reason": self.finish_reason,
                "stats": {"prompt_tokens": len(params["tokens"]), "accepted_draft_tokens": 7},
                "timing": {"ttft_ms": 1.0, "total_ms": 2.0}}


INFO = {"context_limit": 1024, "special_tokens": dict(Tokenizer.from_dir(
    untrained_model_dir()).special_ids)}


async def test_a_finished_rename_becomes_small_edits_and_the_draft_is_the_region():
    workspace = _workspace(untrained_model_dir())
    doc, cursor = _renamed_first_use(workspace)
    region_start = doc.text.index("def mean")
    region_end = doc.text.index("\n\n\ndef spread") + 1
    rewrite = doc.text[region_start:region_end].replace(f"{OLD} ", f"{NEW} ")
    engine = ScriptedEngine(rewrite + "<|endoftext|>")
    suggestion = await predict_edit(workspace, doc, cursor, engine=engine, info=INFO, budget=512)
    sent = engine.params[0]
    assert sent["draft"] == doc.text[region_start:region_end]
    assert sent["temperature"] == 0.0 and sent["stop"] == ["<|endoftext|>"]
    assert sent["max_tokens"] >= len(workspace.counter.ids(sent["draft"]))
    assert len(sent["tokens"]) + sent["max_tokens"] <= INFO["context_limit"]
    assert (suggestion.region.start, suggestion.region.end) == (region_start, region_end)
    assert suggestion.new_region == rewrite
    assert _apply(doc.text, suggestion.edits) == SOURCE.replace(OLD, NEW)
    assert [e.new_text for e in suggestion.edits] == ["_sum", "_sum"]  # one word each
    assert suggestion.stats["accepted_draft_tokens"] == 7
    assert suggestion.timing["total_ms"] == 2.0


LONG_SOURCE = SOURCE.replace("    return total / len(values)\n", """\
    count = len(values)
    if count == 0:
        raise ValueError("no values")
    log.debug("mean of %d", count)
    log.flush()
    return total / count
""")


async def test_a_rewrite_that_deletes_untouched_lines_is_not_shown():
    workspace = _workspace(untrained_model_dir())
    doc, cursor = _renamed_first_use(workspace, LONG_SOURCE)
    engine = ScriptedEngine(lambda region: region.replace(
        '    log.debug("mean of %d", count)\n    log.flush()\n', "") + "<|endoftext|>")
    suggestion = await predict_edit(workspace, doc, cursor, engine=engine, info=INFO, budget=512)
    assert suggestion.new_region and suggestion.edits == []
    assert suggestion.suppressed == "destructive"
    assert why_no_edit(suggestion) == ("nothing was changed: it deletes or rewrites lines that "
                                       "neither the cursor nor the recent edits point at")
    # the same rewrite carrying the rename on is shown, edits and all
    engine = ScriptedEngine(lambda region: region.replace("total ", "total_sum ")
                            + "<|endoftext|>")
    shown = await predict_edit(workspace, doc, cursor, engine=engine, info=INFO, budget=512)
    assert shown.suppressed is None and len(shown.edits) == 2


async def test_a_rewrite_that_undoes_the_rename_is_not_shown():
    workspace = _workspace(untrained_model_dir())
    doc, cursor = _renamed_first_use(workspace)
    engine = ScriptedEngine(lambda region: region.replace(NEW, OLD) + "<|endoftext|>")
    suggestion = await predict_edit(workspace, doc, cursor, engine=engine, info=INFO, budget=512)
    assert suggestion.edits == [] and suggestion.suppressed == "undoes_last_edit"


async def test_an_instruction_edit_that_does_not_parse_is_refused_with_the_reason():
    workspace = _workspace(untrained_model_dir())
    doc, _ = _renamed_first_use(workspace)
    start = doc.text.index("def spread")
    engine = ScriptedEngine(lambda region: region.replace("(values):", "(values)")
                            + "<|endoftext|>")
    suggestion = await predict_edit(workspace, doc, start, engine=engine, info=INFO, budget=512,
                                    instruction="add a docstring", selection=(start, len(doc.text)))
    assert suggestion.edits == [] and suggestion.suppressed == "breaks_parse"
    assert why_no_edit(suggestion) == "nothing was changed: the proposed edit does not parse"
    unchanged = await predict_edit(workspace, doc, start, engine=ScriptedEngine(
        lambda region: region + "<|endoftext|>"), info=INFO, budget=512,
        instruction="add a docstring", selection=(start, len(doc.text)))
    assert unchanged.edits == [] and why_no_edit(unchanged) == "no change proposed"


async def test_a_truncated_rewrite_gives_no_edits():
    workspace = _workspace(untrained_model_dir())
    doc, cursor = _renamed_first_use(workspace)
    engine = ScriptedEngine("def mean(val", finish_reason="length")
    suggestion = await predict_edit(workspace, doc, cursor, engine=engine, info=INFO, budget=512)
    assert suggestion.edits == [] and suggestion.finish_reason == "length"
    assert why_no_edit(suggestion) == ("no edit: the model's rewrite did not finish within its "
                                       "token limit")


QWEN_INFO = {"context_limit": 4096,
             "special_tokens": dict(Tokenizer.from_dir(QWEN).special_ids)}


async def test_a_model_without_edit_tokens_gets_the_plain_text_layout():
    workspace = _workspace(QWEN)
    doc, cursor = _renamed_first_use(workspace)
    region_start = doc.text.index("def mean")
    region_end = doc.text.index("\n\n\ndef spread") + 1
    region = doc.text[region_start:region_end]
    rewrite = region.replace(f"{OLD} ", f"{NEW} ")
    engine = ScriptedEngine(rewrite + REGION_END + "\n\ndef spread")
    suggestion = await predict_edit(workspace, doc, cursor, engine=engine, info=QWEN_INFO,
                                    budget=2048)
    sent = engine.params[0]
    prompt = workspace.counter.decode(sent["tokens"])
    assert prompt is not None and prompt.startswith("### User Edits:\n\n--- a/")
    assert f"{REGION_START}\n{region[:cursor - region_start]}{CURSOR}" in prompt
    assert prompt.endswith(f"{REGION_END}\n\n\ndef spread(values):\n"
                           "    return max(values) - min(values)\n"
                           f"\n### Response:\n{REGION_START}\n")
    assert sent["draft"] == region and sent["stop"] == [REGION_END, "<|endoftext|>"]
    # the rewrite may copy the region and then write the end marker
    assert sent["max_tokens"] >= len(workspace.counter.ids(region + REGION_END))
    assert _apply(doc.text, suggestion.edits) == SOURCE.replace(OLD, NEW)
    assert [e.new_text for e in suggestion.edits] == ["_sum", "_sum"]


async def test_an_engine_with_another_tokenizer_than_the_workspace_is_a_clear_error():
    workspace = _workspace(untrained_model_dir())
    doc, cursor = _renamed_first_use(workspace)
    with pytest.raises(CompletionError, match="restart the language server"):
        await predict_edit(workspace, doc, cursor, engine=ScriptedEngine(""), info=QWEN_INFO,
                           budget=512)


class Recording:
    """An engine client that keeps the params of each `generate`."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.params: list[dict[str, Any]] = []

    async def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]:
        return await self.client.tokenize(text, offsets)

    async def generate(self, params: dict[str, Any], on_token: Any = None) -> dict[str, Any]:
        self.params.append(params)
        return await self.client.generate(params, on_token)


async def test_edits_with_a_real_model_that_has_no_edit_tokens():
    workspace = _workspace(QWEN)
    doc, cursor = _renamed_first_use(workspace)
    start = doc.text.index("max(values)")
    engine = EngineProcess(EngineOptions(model=str(QWEN), log_level="WARNING"))
    try:
        handle = await engine.handle()
        assert "<|region_start|>" not in handle.info["special_tokens"]
        client = Recording(handle.client)
        next_edit = await predict_edit(workspace, doc, cursor, engine=client, info=handle.info,
                                       budget=768)
        instructed = await predict_edit(workspace, doc, start, engine=client, info=handle.info,
                                        budget=768, instruction="use a local variable",
                                        selection=(start, start + 5))
    finally:
        await engine.stop()
    # An untrained model: only the mechanics are asserted, not what it writes.
    _check_mechanics(doc.text, next_edit, 768)
    _check_mechanics(doc.text, instructed, 768)
    for sent, heads in zip(client.params, (("### User Edits:",),
                                           ("### Instruction:\nuse a local variable",
                                            "### User Edits:")), strict=True):
        prompt = workspace.counter.decode(sent["tokens"])
        assert prompt is not None
        for marker in (*heads, "### User Excerpt:", REGION_START, CURSOR, REGION_END,
                       "### Response:"):
            assert marker in prompt
        assert REGION_END in sent["stop"]
    assert client.params[1]["draft"] == doc.text[doc.text.index("    return max"):]


async def test_a_budget_too_small_for_the_region_is_a_clear_error():
    workspace = _workspace(untrained_model_dir())
    doc, cursor = _renamed_first_use(workspace)
    with pytest.raises(CompletionError, match="budget of 16"):
        await predict_edit(workspace, doc, cursor, engine=ScriptedEngine(""), info=INFO,
                           budget=16)
    with pytest.raises(CompletionError, match="context of 40"):
        await predict_edit(workspace, doc, cursor, engine=ScriptedEngine(""),
                           info={**INFO, "context_limit": 40}, budget=512)
