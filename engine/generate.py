"""Decoding one request: prefill, decode loop, result.

The request's parameters and result are in engine/request.py. Reads top-down in
pipeline order: stop-string handling, the state that outlives a request, then
``generate`` (prefix-cache lookup, then passes that each verify a draft and emit the
accepted tokens, then finish). Every forward pass -- prefill, decode, verification --
goes through the backend's ``forward`` (engine/backend.py), so the loop runs unchanged
on numpy or ggml.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.backend import Backend, PrefixStore
from engine.healing import Healing
from engine.request import GenerateParams, GenerateResult, check_context
from engine.speculative import (
    DraftTuner,
    SpecConfig,
    Speculation,
    SuggestionMemory,
    verify,
)
from engine.targets.base import OnText, ShouldStop
from engine.tokenizer import Tokenizer

__all__ = [
    "DecodeState",
    "StopMatcher",
    "generate",
    "prefill",
    "warm",
]


class StopMatcher:
    """Finds stop strings in streamed text and holds back what may start one.

    Text that could still turn out to be the beginning of a stop string is not
    released to the stream yet, so a client never sees text that the final
    answer trims.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.text = ""  # everything decoded so far
        self.released = 0  # len of the prefix of text already handed out
        self.stopped = False

    def feed(self, delta: str) -> str:
        """Add decoded text; return the part that is safe to release."""
        if not self.stops:
            self.text += delta
            self.released = len(self.text)
            return delta
        # A new match can only start within max(len(stop)) - 1 chars before delta.
        search_from = max(0, len(self.text) - max(map(len, self.stops)) + 1)
        self.text += delta
        hits = [i for i in (self.text.find(s, search_from) for s in self.stops) if i >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            self.stopped = True
            return self._release(len(self.text))
        hold = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.text)), hold, -1):
                if self.text.endswith(s[:n]):
                    hold = n
                    break
        return self._release(len(self.text) - hold)

    def flush(self) -> str:
        return self._release(len(self.text))

    def _release(self, upto: int) -> str:
        out = self.text[self.released : upto]
        self.released = max(self.released, upto)
        return out


@dataclass(frozen=True, kw_only=True)
class DecodeState:
    """What outlives a request on one model: its prefix cache, the last suggestion per
    place, the draft-length tuner and which drafters run. The target owns one and
    drives it from its single worker thread. The default (no caches) decodes every
    request from scratch but still speculates."""

    prefix_cache: PrefixStore | None = None
    suggestions: SuggestionMemory | None = None
    tuner: DraftTuner = field(default_factory=DraftTuner)
    speculation: SpecConfig = SpecConfig()


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1e3


def prefill(model: Backend, tokens: Sequence[int], cache: Any,
            should_stop: ShouldStop | None = None) -> bool:
    """Append ``tokens`` to ``cache`` in slices of ``model.prefill_slice`` tokens, asking for
    no logits; False when ``should_stop`` ended it early (what was computed stays in the
    cache). A keystroke that cancels a long prefill, or a request that pre-empts a warm-up,
    waits for at most one slice (the backend sizes it to a fraction of a second). The size
    is fixed per model, so the same request always computes the same batches."""
    step = model.prefill_slice
    for start in range(0, len(tokens), step):
        if should_stop is not None and should_stop():
            return False
        model.forward(np.asarray(tokens[start : start + step], np.int64), cache, last_n=0)
    return True


def warm(model: Backend, tokens: Sequence[int], state: DecodeState,
         should_stop: ShouldStop | None = None) -> dict[str, Any]:
    """Compute the keys and values of ``tokens`` into the prefix cache ahead of the
    requests that will share them (the `prefill` RPC). Resumable: what an earlier,
    pre-empted warm-up computed is found by the lookup and not computed again."""
    t_start = time.perf_counter()
    cache = model.new_cache()
    cached = 0
    if state.prefix_cache is not None:
        cached = state.prefix_cache.lookup(tokens, cache, max_tokens=len(tokens))
    complete = prefill(model, tokens[cached:], cache, should_stop)
    if state.prefix_cache is not None:
        state.prefix_cache.insert(tokens[: cache.length], cache)
    return {"prompt_tokens": len(tokens), "cached_tokens": cached,
            "prefilled_tokens": cache.length - cached, "complete": complete,
            "total_ms": _ms(t_start)}


def _prompt_ids(model: Backend, tokenizer: Tokenizer, params: GenerateParams) -> list[int]:
    if params.tokens is not None:
        prompt = list(params.tokens)
    else:
        assert params.prompt is not None
        prompt = tokenizer.encode_prompt(params.prompt)
    check_context(len(prompt), model.context_limit)
    vocab = model.vocab_size
    if any(not 0 <= t < vocab for t in prompt):
        raise ValueError(f"tokens: ids must be in 0..{vocab - 1}")
    return prompt


def generate(
    model: Backend,
    tokenizer: Tokenizer,
    params: GenerateParams,
    on_text: OnText | None = None,
    should_stop: ShouldStop | None = None,
    state: DecodeState | None = None,
) -> GenerateResult:
    """Decode one request; raises ContextOverflowError when the prompt exceeds the context.

    Each pass feeds the tokens not yet in the cache plus a draft, keeps what
    ``verify`` accepts (rolling the cache back over the rest) and streams those
    tokens at once. Output equals plain decoding (see engine/speculative.py).
    """
    t_start = time.perf_counter()
    state = state or DecodeState()
    prompt = _prompt_ids(model, tokenizer, params)
    limit = model.context_limit
    rng = np.random.default_rng(params.seed)
    # Any control token (end of text, file separator, FIM or edit markers) ends the answer:
    # no completion or rewrite wants one inside its text.
    end_ids = set(tokenizer.special_ids.values())
    cache = model.new_cache()
    cached = 0
    if state.prefix_cache is not None:
        cached = state.prefix_cache.lookup(prompt, cache, max_tokens=len(prompt) - 1)
    previous = state.suggestions.recall(params.document, prompt) if state.suggestions else None
    region = tokenizer.encode(params.draft) if params.draft else None
    speculation = (state.speculation if params.drafters is None
                   else SpecConfig(drafters=params.drafters))
    spec = Speculation(speculation, state.tuner, prompt=prompt, region=region,
                       previous=previous, vocab_size=model.vocab_size)
    healing = Healing.for_text(tokenizer, params.heal)
    decoder = tokenizer.incremental_decoder()
    stops = StopMatcher(params.stop)
    seq = list(prompt)  # prompt + output: what the drafters read
    out: list[int] = []
    passes, finish, prefill_ms, ttft_ms, t_first = 0, "", 0.0, None, t_start
    t_prefill = time.perf_counter()
    # Every pass that yields logits has the shape [last, d1..dK], the prompt's last token
    # included: a backend whose kernels round differently for other batch shapes then
    # still computes each row as plain decoding does.
    if not prefill(model, prompt[cached:-1], cache, should_stop):
        finish = "cancelled"
    pending = prompt[cache.length:]  # tokens whose keys and values are not cached yet

    while not finish:
        if should_stop is not None and should_stop():
            finish = "cancelled"
            break
        # Room: a pass yields at most K+1 tokens and must fit the context.
        room = min(params.max_tokens - len(out) - 1, limit - cache.length - len(pending))
        # The healed first token is constrained, so nothing can be drafted before it.
        drafter, draft = (None, []) if healing and not out else spec.propose(seq, len(out), room)
        t_pass = time.perf_counter()
        logits = model.forward(np.asarray(pending + draft, np.int64), cache,
                               last_n=len(draft) + 1)  # [K+1, V]
        if healing and not out:
            logits[0] = healing.constrain(logits[0])
        new = verify(logits, draft, temperature=params.temperature, top_p=params.top_p, rng=rng)
        cache.truncate(cache.length - (len(draft) - (len(new) - 1)))  # drop rejected drafts
        spec.record(drafter, len(draft), len(new) - 1,
                    len(pending) + len(draft) if passes else None, time.perf_counter() - t_pass)
        passes += 1
        if passes == 1:
            prefill_ms, ttft_ms = _ms(t_prefill), _ms(t_start)
            t_first = time.perf_counter()
        pending, delta, accepted = new[-1:], "", []
        for tok in new:
            if tok in end_ids:
                finish = "eos"
                break
            out.append(tok)
            seq.append(tok)
            accepted.append(tok)
            delta += stops.feed(decoder.push([tok]))
            if stops.stopped:
                finish = "stop"
            # "length": no room for (the pass that would feed) the next token.
            elif len(out) >= params.max_tokens or len(prompt) + len(out) - 1 >= limit:
                finish = "length"
            if finish:
                break
        delta = healing.strip(delta) if healing else delta
        if on_text is not None and (delta or accepted):
            on_text(delta, accepted)

    if not stops.stopped:
        # End of stream: complete a held-back partial character (as U+FFFD), then
        # release text held back in case it began a stop string.
        tail = stops.feed(decoder.flush())
        if stops.stopped:
            finish = "stop"
        tail += stops.flush()
        tail = healing.strip(tail) if healing else tail
        if on_text is not None and tail:
            on_text(tail, [])
    # The cache holds prompt + output up to the last fed token; keep it for the next request.
    kept = min(cache.length, len(seq))
    cache.truncate(kept)
    if state.prefix_cache is not None:
        state.prefix_cache.insert(seq[:kept], cache)
    if state.suggestions is not None:
        state.suggestions.remember(params.document, prompt, out)
    return GenerateResult(
        text=stops.text[len(healing.text):] if healing else stops.text,
        tokens=out,
        finish_reason=finish,
        stats={
            "prompt_tokens": len(prompt),
            "cached_prompt_tokens": cached,
            "output_tokens": len(out),
            "forward_passes": passes,
            "accepted_draft_tokens": spec.accepted,
            "drafters": spec.stats(),
        },
        timing={
            "context_ms": None,
            "queue_ms": None,  # filled in by the scheduler
            "prefill_ms": prefill_ms,
            "ttft_ms": ttft_ms,
            "decode_ms": _ms(t_first) if ttft_ms is not None else 0.0,
            "total_ms": _ms(t_start),
            "simulated": None,
        },
    )
