"""One generate request and its result: parameters validated from the wire, the result
sent back, and the error of a prompt the context cannot hold.

Shared by the decode loop (engine/generate.py), the targets (engine/targets/) and the
engine server; it imports none of them. Light to import (no numpy): the engine server and
the scheduler import it at start; what validation needs of the decoder is imported on the
first request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "MAX_STOP_STRINGS",
    "ContextOverflowError",
    "GenerateParams",
    "GenerateResult",
    "check_context",
]


class ContextOverflowError(ValueError):
    """The prompt plus max_tokens does not fit the target's context; answered as
    `context_overflow` rather than `invalid_params` so a client can shrink its budget."""


MAX_STOP_STRINGS = 16


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return (_is_int(x) or isinstance(x, float)) and math.isfinite(x)


def check_context(prompt_tokens: int, context_limit: int) -> None:
    """Raise ContextOverflowError when the prompt alone exceeds the context.

    A prompt that fits decodes until the context is full (finish "length"); the
    output is not required to fit up front, so max_tokens is an upper bound.
    """
    if prompt_tokens > context_limit:
        raise ContextOverflowError(
            f"prompt of {prompt_tokens} tokens exceeds the model's context limit of "
            f"{context_limit} tokens"
        )


@dataclass(frozen=True, kw_only=True)
class GenerateParams:
    """One ``generate`` request. Exactly one of ``prompt`` and ``tokens`` is set.

    ``prompt`` is parsed for special-token strings (FIM markers written by the
    prompt builder); ``tokens`` are used as given.
    """

    prompt: str | None = None
    tokens: tuple[int, ...] | None = None
    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    draft: str | None = None  # text the output is expected to copy (an edit's region)
    document: str | None = None  # a newer job for the same document cancels this one
    heal: str | None = None  # the output must begin with this text, which is then removed
    drafters: tuple[str, ...] | None = None  # None: the engine's default; (): plain decoding
    stream: bool = False

    @classmethod
    def from_wire(
        cls,
        wire: Mapping[str, Any],
        *,
        vocab_size: int | None = None,
        context_limit: int | None = None,
    ) -> GenerateParams:
        """Validate a wire dict; raise ValueError naming the offending field.

        Unknown keys are ignored (newer clients may send more). With
        ``vocab_size``/``context_limit`` token ids and a token prompt's length are
        checked too (the length as ContextOverflowError).
        """
        from engine.healing import MAX_HEAL_CHARS
        from engine.speculative import DRAFTERS

        if not isinstance(wire, Mapping):
            raise ValueError(f"params: expected a map, got {type(wire).__name__}")
        prompt, tokens = wire.get("prompt"), wire.get("tokens")
        if (prompt is None) == (tokens is None):
            raise ValueError("prompt/tokens: give exactly one of 'prompt' and 'tokens'")
        if prompt is not None and (not isinstance(prompt, str) or not prompt):
            raise ValueError("prompt: must be a non-empty string")
        if tokens is not None:
            if not isinstance(tokens, list | tuple) or not tokens:
                raise ValueError("tokens: must be a non-empty list of token ids")
            for t in tokens:
                if not _is_int(t) or t < 0 or (vocab_size is not None and t >= vocab_size):
                    bound = f"0..{vocab_size - 1}" if vocab_size is not None else ">= 0"
                    raise ValueError(f"tokens: {t!r} is not a token id ({bound})")
            tokens = tuple(tokens)
            if context_limit is not None:
                check_context(len(tokens), context_limit)
        max_tokens = wire.get("max_tokens", cls.max_tokens)
        if not _is_int(max_tokens) or max_tokens < 1:
            raise ValueError(f"max_tokens: must be an integer >= 1, got {max_tokens!r}")
        temperature = wire.get("temperature", cls.temperature)
        if not _is_number(temperature) or temperature < 0:
            raise ValueError(f"temperature: must be a number >= 0, got {temperature!r}")
        top_p = wire.get("top_p", cls.top_p)
        if not _is_number(top_p) or not 0 < top_p <= 1:
            raise ValueError(f"top_p: must be a number in (0, 1], got {top_p!r}")
        seed = wire.get("seed")
        if seed is not None and (not _is_int(seed) or seed < 0):
            raise ValueError(f"seed: must be a non-negative integer or null, got {seed!r}")
        stop = wire.get("stop") or ()
        if isinstance(stop, str):  # OpenAI accepts a single string; so do we
            stop = (stop,)
        if not isinstance(stop, list | tuple) or len(stop) > MAX_STOP_STRINGS:
            raise ValueError(f"stop: must be a list of at most {MAX_STOP_STRINGS} strings")
        if not all(isinstance(s, str) and s for s in stop):
            raise ValueError("stop: every stop string must be a non-empty string")
        draft = wire.get("draft")
        if draft is not None and not isinstance(draft, str):
            raise ValueError(f"draft: must be a string or null, got {type(draft).__name__}")
        document = wire.get("document")
        if document is not None and not isinstance(document, str):
            raise ValueError(f"document: must be a string or null, got {type(document).__name__}")
        heal = wire.get("heal")
        if heal is not None and (not isinstance(heal, str) or len(heal) > MAX_HEAL_CHARS):
            raise ValueError(f"heal: must be a string of at most {MAX_HEAL_CHARS} characters "
                             "or null")
        drafters = wire.get("drafters")
        if drafters is not None:
            if not isinstance(drafters, list | tuple) or not all(
                    isinstance(d, str) for d in drafters):
                raise ValueError("drafters: must be a list of drafter names or null")
            unknown = sorted(set(drafters) - set(DRAFTERS))
            if unknown:
                raise ValueError(f"drafters: unknown {', '.join(unknown)} "
                                 f"(known: {', '.join(DRAFTERS)})")
            drafters = tuple(d for d in DRAFTERS if d in drafters)  # engine's priority order
        stream = wire.get("stream", False)
        if not isinstance(stream, bool):
            raise ValueError(f"stream: must be a boolean, got {stream!r}")
        return cls(
            prompt=prompt,
            tokens=tokens,
            max_tokens=max_tokens,
            temperature=float(temperature),
            top_p=float(top_p),
            seed=seed,
            stop=tuple(stop),
            draft=draft,
            document=document,
            heal=heal or None,
            drafters=drafters,
            stream=stream,
        )


@dataclass
class GenerateResult:
    """``tokens`` are every sampled token except a final EOS; ``text`` is their
    decoded text, cut before the first stop string when one ended the job."""

    text: str
    tokens: list[int]
    finish_reason: str  # "eos" | "stop" | "length" | "cancelled"
    stats: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        wire = asdict(self)
        wire["tokens"] = [int(t) for t in self.tokens]
        return wire
