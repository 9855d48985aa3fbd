"""Next edits and instruction edits run through the engine as the language server runs them.

- The prompt is the task's `pieces()` tokenized as the server tokenizes it: special-token
  pieces as their single ids, every other piece encoded literally on its own.
- Decoding is greedy with the region as the speculative draft; it ends at the first
  special token (the engine ends an answer there), or at `max_tokens`: the expected
  rewrite's tokens + 16 for next edits, the server's budget (region tokens x 1.25 + 32) for
  instructions, where the answer's length is not known.
- A prompt longer than the context is trimmed from its front (after the first markers,
  which keep the instruction), never into the region; a task whose region alone does not
  fit is skipped (and counted as a miss).
- A next edit's output is destructive when it deletes or rewrites a non-blank line of the
  region that the expected rewrite keeps unchanged and that lies more than CURSOR_REACH
  lines from the cursor; `shown` says whether the server's gates would let it through.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from edit_core import EditExample
from instruction_examples import InstructionExample

from engine.generate import generate
from engine.model import Transformer
from engine.request import GenerateParams
from engine.tokenizer import Tokenizer
from lsp_server.context.languages import LanguageRegistry
from lsp_server.edit_gates import CURSOR_REACH, check_next_edit

PROPAGATION = ("rename", "replace_call", "add_argument", "convert")
NEXT_EDIT_SLACK = 16  # tokens of max_tokens beyond the expected rewrite's
REWRITE_GROWTH = 1.25  # the server's budget for a rewrite (lsp_server/edit_flow.py)
REWRITE_EXTRA = 32


@dataclass(frozen=True)
class EditOutcome:
    kind: str
    language: str
    exact: bool
    output: str
    tokens: int  # generated
    total_ms: float  # prefill + decode
    skipped: bool = False  # the region alone does not fit the context
    destructive: bool = False
    shown: bool = False  # the server's gates let the output through (for a changed region)


@dataclass(frozen=True)
class InstructionOutcome:
    kind: str
    language: str
    passed: bool
    satisfied: bool  # the reference answer is "no change"
    skipped: bool = False


def prompt_ids(tok: Tokenizer, pieces: Sequence[str]) -> list[int]:
    """The server's tokenization of a prompt's pieces."""
    ids: list[int] = []
    for piece in pieces:
        special = tok.special_ids.get(piece)
        ids.extend([special] if special is not None else tok.encode(piece))
    return ids


def fit_prompt(ids: list[int], budget: int, keep_head: int, region_at: int) -> list[int]:
    """`ids` cut to `budget` tokens by dropping tokens after the first `keep_head`, never
    at or after `region_at` (where the region starts): the result may stay over budget."""
    if len(ids) <= budget:
        return ids
    drop = min(len(ids) - budget, max(0, region_at - keep_head))
    return ids[:keep_head] + ids[keep_head + drop:]


def _markers(tok: Tokenizer, ids: list[int]) -> tuple[int, int]:
    """(tokens up to and including <|edit_history|>, index of <|region_start|>)."""
    history, region = tok.special_ids["<|edit_history|>"], tok.special_ids["<|region_start|>"]
    return ids.index(history) + 1, ids.index(region)


def rewrite(model: Transformer, tok: Tokenizer, example: EditExample, max_tokens: int,
            context_cap: int | None = None) -> tuple[str, int, float] | None:
    """(output, generated tokens, total ms) of greedy decoding with the region as draft;
    None when the prompt from the region on does not fit the context."""
    limit = model.context_limit if context_cap is None else min(model.context_limit,
                                                                  context_cap)
    ids = prompt_ids(tok, example.pieces())
    keep_head, region_at = _markers(tok, ids)
    ids = fit_prompt(ids, max(1, limit - max_tokens), keep_head, region_at)
    if len(ids) >= limit:
        return None
    result = generate(model, tok, GenerateParams(
        tokens=tuple(ids), max_tokens=max_tokens, draft=example.region_text))
    return result.text, len(result.tokens), float(result.timing["total_ms"])


def _equal_lines(a: list[str], b: list[str]) -> tuple[set[int], list[tuple[int, int]]]:
    """(lines of `a` kept unchanged in `b`, [i1, i2) ranges of `a` deleted or rewritten)."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    kept: set[int] = set()
    changed: list[tuple[int, int]] = []
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag == "equal":
            kept.update(range(i1, i2))
        elif i2 > i1:
            changed.append((i1, i2))
    return kept, changed


def destructive_lines(region: str, expected: str, output: str, cursor: int,
                      reach: int = CURSOR_REACH) -> list[int]:
    """0-based lines of `region` that `output` deletes or rewrites although `expected`
    keeps them unchanged, that are not blank and lie more than `reach` lines from the
    cursor (`cursor`: an offset into `region`)."""
    before = region.split("\n")
    kept, _ = _equal_lines(before, expected.split("\n"))
    _, changed = _equal_lines(before, output.split("\n"))
    cursor_line = region.count("\n", 0, cursor)
    return [i for i1, i2 in changed for i in range(i1, i2)
            if i in kept and before[i].strip() and abs(i - cursor_line) > reach]


class Gates:
    """The server's next-edit gates, with one parser per language."""

    def __init__(self) -> None:
        self.registry = LanguageRegistry()

    def shown(self, example: EditExample, output: str) -> bool:
        spec = self.registry.get(example.language)
        parser = self.registry.parser(spec) if spec is not None else None
        r = example.region
        return check_next_edit(text=example.text, start=r.start, end=r.end, new_region=output,
                               cursor=r.cursor, history=list(example.history),
                               parser=parser) is None


def judge_edit(example: EditExample, output: str, gates: Gates, tokens: int = 0,
               total_ms: float = 0.0) -> EditOutcome:
    """Exact match, and whether the output is destructive and would be shown."""
    r = example.region
    destructive = bool(destructive_lines(example.region_text, example.rewrite, output,
                                         r.cursor - r.start))
    return EditOutcome(example.kind, example.language, output == example.rewrite, output,
                       tokens, total_ms, destructive=destructive,
                       shown=output != example.region_text and gates.shown(example, output))


def run_edits(model: Transformer, tok: Tokenizer, tasks: Sequence[EditExample],
              gates: Gates) -> list[EditOutcome]:
    out = []
    for task in tasks:
        max_tokens = len(tok.encode(task.rewrite)) + NEXT_EDIT_SLACK
        got = rewrite(model, tok, task, max_tokens)
        if got is None:
            out.append(EditOutcome(task.kind, task.language, False, "", 0, 0.0, skipped=True))
            continue
        out.append(judge_edit(task, got[0], gates, got[1], got[2]))
    return out


def copy_edits(tasks: Sequence[EditExample], gates: Gates) -> list[EditOutcome]:
    """The reference answer "copy the region unchanged"."""
    return [judge_edit(task, task.region_text, gates) for task in tasks]


def run_instructions(model: Transformer, tok: Tokenizer, tasks: Sequence[InstructionExample]
                     ) -> list[InstructionOutcome]:
    out = []
    for task in tasks:
        region = task.example.region_text
        max_tokens = math.ceil(len(tok.encode(region)) * REWRITE_GROWTH) + REWRITE_EXTRA
        got = rewrite(model, tok, task.example, max_tokens)
        passed = got is not None and task.check(got[0])
        out.append(InstructionOutcome(task.kind, task.language, passed, task.satisfied,
                                      skipped=got is None))
    return out


def copy_instructions(tasks: Sequence[InstructionExample]) -> list[InstructionOutcome]:
    return [InstructionOutcome(t.kind, t.language, t.check(t.example.region_text), t.satisfied)
            for t in tasks]
