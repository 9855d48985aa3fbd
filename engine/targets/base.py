"""What the engine server needs from a target: the seam between scheduling and forward passes.

A target is driven from ONE worker thread at a time (the scheduler's), so it may keep
per-model state (KV and prefix caches) without locks; `info` and `tokenize` may be called
from other threads and must not touch that state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from engine.request import GenerateParams, GenerateResult

# on_text(text_delta, token_ids): called from the worker thread as tokens are accepted.
OnText = Callable[[str, list[int]], None]
# should_stop(): polled once per forward pass; True ends the job with finish_reason "cancelled".
ShouldStop = Callable[[], bool]


class TargetError(RuntimeError):
    """An expected failure of a target (a refused key, an unreachable or rate-limiting
    server, a retired model): answered as a `target` RPC error in one line, no traceback."""


@runtime_checkable
class Target(Protocol):
    name: str

    def info(self) -> dict[str, Any]:
        """{model, target, context_limit, untrained, fim_order, special_tokens, limits}."""
        ...

    def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]:
        """{tokens: [int]} plus {offsets: [[start, end]]} (character offsets) when asked."""
        ...

    def generate(self, params: GenerateParams, on_text: OnText | None = None,
                 should_stop: ShouldStop | None = None) -> GenerateResult:
        """Decode one job; raises ContextOverflowError when it cannot fit."""
        ...

    def prefill(self, params: GenerateParams,
                should_stop: ShouldStop | None = None) -> dict[str, Any]:
        """Cache the prompt's keys and values for later requests (engine.generate.warm):
        {prompt_tokens, cached_tokens, prefilled_tokens, complete, total_ms}; `complete`
        false when `should_stop` ended it early."""
        ...

    def score(self, tokens: list[int],
              should_stop: ShouldStop | None = None) -> list[float | None]:
        """[None, log p(t1 | t0), ...] for validated tokens (engine.scoring.tokens_from_wire);
        fewer entries when `should_stop` ended it early."""
        ...
