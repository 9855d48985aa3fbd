"""Inline completion: document text + cursor offset -> a suggestion from the engine.

Shared by the language server and `sparkedit suggest`; it knows nothing about LSP.
The engine is reached only through an `EngineClient`-like object (`tokenize`,
`generate`), so cancelling the awaiting task cancels the engine job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from lsp_server.context.assemble import Context, ContextOptions, ContextRefused
from lsp_server.documents import Document
from lsp_server.prompts import (
    END_OF_TEXT,
    FILE_SEP,
    FimOrder,
    FimTokens,
    Tokenized,
    build_fim_prompt,
)

if TYPE_CHECKING:
    from lsp_server.workspace import Workspace

log = logging.getLogger(__name__)

TIMING_KEYS = ("context_ms", "queue_ms", "ttft_ms", "total_ms", "simulated")
STATS_KEYS = ("prompt_tokens", "cached_prompt_tokens", "output_tokens", "forward_passes",
              "accepted_draft_tokens", "drafters")
DRAFTERS = ("region", "previous", "lookup")  # the engine's drafters (engine/drafters.py)

# Only this many characters per token of budget are sent to `tokenize`: no tokenizer
# here averages more than a few characters per token on code, so the window still
# fills the budget, and a keystroke in a large file does not tokenize all of it.
CHARS_PER_TOKEN_BOUND = 12


class Engine(Protocol):
    async def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]: ...
    async def generate(self, params: dict[str, Any], on_token: Any = None) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class CompletionOptions:
    budget: int = 2048  # prompt tokens, FIM markers included
    max_tokens: int = 64
    # Ghost text should end where a block ends (a blank line closes it) or where a FIM
    # model signals the end of the middle or of the file.
    stop: tuple[str, ...] = ("\n\n", END_OF_TEXT, FILE_SEP)
    temperature: float = 0.0
    prefix_share: float = 0.75
    heal: bool = True  # token healing of a cursor inside a word (engine/healing.py)
    drafters: tuple[str, ...] | None = None  # names from DRAFTERS; () plain; None the default


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    text: str
    finish_reason: str | None
    timing: dict[str, Any]  # TIMING_KEYS; None where not measured
    stats: dict[str, Any]  # STATS_KEYS; None where not measured
    model: str | None
    untrained: bool
    prompt_chars_dropped: tuple[int, int] = field(default=(0, 0))  # (prefix, suffix)


class CompletionError(Exception):
    """The request cannot be served as asked (budget too small, model without FIM)."""


def effective_budget(options: CompletionOptions, info: dict[str, Any]) -> int:
    """The prompt budget, leaving room in the model's context for the answer."""
    limit = info.get("context_limit")
    if isinstance(limit, int) and limit > 0:
        return min(options.budget, limit - options.max_tokens)
    return options.budget


async def _tokenize(engine: Engine, text: str) -> Tokenized:
    if not text:
        return Tokenized(text="", ids=[], offsets=[])
    answer = await engine.tokenize(text, offsets=True)
    offsets = [(int(s), int(e)) for s, e in answer["offsets"]]
    return Tokenized(text=text, ids=list(answer["tokens"]), offsets=offsets)


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    # The engine stops at a stop string; cutting here too keeps the contract even for
    # a target that returns the stop string itself.
    cut = min((i for s in stops if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


async def complete(text: str, offset: int, *, engine: Engine, info: dict[str, Any],
                   options: CompletionOptions) -> Suggestion:
    """A completion for the cursor at string offset `offset` of `text`.

    Raises CompletionError for a request that cannot be served; engine errors
    (EngineError, EngineConnectionError) propagate for the caller to degrade on.
    """
    assert 0 <= offset <= len(text), "callers map positions to valid offsets"
    started = time.perf_counter()
    budget = effective_budget(options, info)
    try:
        special = FimTokens.from_info(info.get("special_tokens") or {})
        order = FimOrder(info.get("fim_order") or FimOrder.SPM)
    except (KeyError, ValueError) as exc:
        raise CompletionError(f"the model cannot fill in the middle: {exc}") from exc
    window = budget * CHARS_PER_TOKEN_BOUND
    prefix = await _tokenize(engine, text[max(0, offset - window):offset])
    suffix = await _tokenize(engine, text[offset:offset + window])
    try:
        prompt = build_fim_prompt(prefix=prefix, suffix=suffix, budget=budget, special=special,
                                  order=order, prefix_share=options.prefix_share,
                                  heal=options.heal)
    except ValueError as exc:
        raise CompletionError(str(exc)) from exc
    context_ms = (time.perf_counter() - started) * 1000
    suggestion = await generate_suggestion(prompt.tokens, prompt.heal, context_ms, engine=engine,
                                           info=info, options=options)
    return replace(suggestion, prompt_chars_dropped=(prompt.prefix_chars_dropped,
                                                     prompt.suffix_chars_dropped))


async def complete_in_workspace(workspace: Workspace, doc: Document, offset: int, *,
                                engine: Engine, info: dict[str, Any],
                                options: CompletionOptions, remote: bool = False) -> Suggestion:
    """A completion whose prompt is the workspace's context, exact to the tokenizer.

    When the engine's model has other special tokens than the tokenizer the workspace counts
    with, the context would not be exact, so the engine tokenizes a plain prompt instead.

    `remote`: the prompt leaves the machine (a remote target), so secrets are redacted and
    a document that is excluded or ignored by git is refused."""
    if not context_fits_engine(workspace, info):
        if remote:
            raise CompletionError("the remote target's tokenizer differs from the context "
                                  "tokenizer; refusing to send a prompt that was not redacted")
        log.warning("the engine's model has other special tokens than the context tokenizer; "
                    "completing without workspace context")
        return await complete(doc.text, offset, engine=engine, info=info, options=options)
    started = time.perf_counter()
    context = completion_context(workspace, doc, offset, info=info, options=options,
                                 remote=remote)
    context_ms = (time.perf_counter() - started) * 1000
    return await generate_suggestion(list(context.tokens), context.heal, context_ms,
                                     engine=engine, info=info, options=options)


def context_fits_engine(workspace: Workspace, info: dict[str, Any]) -> bool:
    """Whether the workspace counts with the engine model's tokenizer (same special ids), so
    that its context is the exact prompt."""
    return (info.get("special_tokens") or {}) == workspace.special_ids


def completion_context(workspace: Workspace, doc: Document, offset: int, *,
                       info: dict[str, Any], options: CompletionOptions,
                       remote: bool = False) -> Context:
    """The prompt `complete_in_workspace` sends for this cursor (also what the background
    warm-up prefills); CompletionError when it cannot be built."""
    try:
        return workspace.context(doc, offset, ContextOptions(
            budget=effective_budget(options, info), fim_order=fim_order(info).value,
            heal=options.heal, prefix_share=options.prefix_share, remote=remote))
    except (ValueError, ContextRefused) as exc:
        raise CompletionError(str(exc)) from exc


def fim_order(info: dict[str, Any]) -> FimOrder:
    try:
        return FimOrder(info.get("fim_order") or FimOrder.SPM)
    except ValueError as exc:
        raise CompletionError(f"the model's FIM order is unknown: {exc}") from exc


async def generate_suggestion(tokens: list[int], heal: str, context_ms: float, *,
                              engine: Engine, info: dict[str, Any],
                              options: CompletionOptions) -> Suggestion:
    """Ask the engine to continue a finished prompt; the answer as a `Suggestion`."""
    params: dict[str, Any] = {
        "tokens": tokens,
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        "top_p": 1.0,
        "seed": 0,
        "stop": list(options.stop),
        "draft": None,
        "heal": heal or None,
        "stream": False,
    }
    if options.drafters is not None:
        params["drafters"] = list(options.drafters)
    answer = await engine.generate(params)
    engine_timing = answer.get("timing") or {}
    engine_stats = answer.get("stats") or {}
    timing: dict[str, Any] = {key: engine_timing.get(key) for key in TIMING_KEYS}
    timing["context_ms"] = round(context_ms, 3)
    stats = {key: engine_stats.get(key) for key in STATS_KEYS}
    return Suggestion(
        text=_cut_at_stop(answer.get("text", ""), options.stop),
        finish_reason=answer.get("finish_reason"),
        timing=timing,
        stats=stats,
        model=info.get("model"),
        untrained=bool(info.get("untrained")),
    )
