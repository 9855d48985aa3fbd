"""The simulated Cerebras wafer: the numpy model on this host, timed as a production model.

Numerics are local and exact. Every answer also carries ``timing.simulated``: what a chosen
production model (the *profile*, a preset of engine/targets/wafer_model.py) would have taken
on the wafer for the same prompt, cached prefix, output and accepted tokens per pass, in the
Cerebras ``time_info`` shape. With ``pace`` each pass's tokens are held back until the
simulated wafer would have produced them, so an editor shows the wafer's timing (never
faster than the local run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.backend import PrefixStore
from engine.backend_choice import ModelSpec, load
from engine.generate import DecodeState, generate, warm
from engine.request import MAX_STOP_STRINGS, GenerateParams, GenerateResult, check_context
from engine.scoring import score
from engine.speculative import DraftTuner, SpecConfig, SuggestionMemory
from engine.targets.base import OnText, ShouldStop
from engine.targets.model_config import load_preset
from engine.targets.wafer_model import WaferModel, WaferProfile

DEFAULT_PROFILE = "qwen2.5-coder-32b"
PACE_SLICE_S = 0.02  # a paced wait checks for cancellation this often


class WaferSimTarget:
    name = "wafer-sim"

    def __init__(self, model: str | Path | ModelSpec, *, prefix_cache_bytes: int = 512 << 20,
                 speculation: SpecConfig | None = None, profile: str = DEFAULT_PROFILE,
                 pace: bool = False, wafer_model: WaferModel | None = None) -> None:
        spec = model if isinstance(model, ModelSpec) else ModelSpec(path=Path(model),
                                                                    backend="numpy")
        self.model_dir = spec.path
        # KeyError for an unknown profile, before the model loads.
        self.profile = WaferProfile(name=profile, shape=load_preset(profile),
                                    model=wafer_model or WaferModel())
        self.pace = pace
        loaded = load(spec)  # ModelLoadError: one line naming the file
        self.model, self.tokenizer = loaded.backend, loaded.tokenizer
        # Worker-thread state: caches and draft statistics live as long as the model.
        self.state = DecodeState(prefix_cache=self.model.new_prefix_store(prefix_cache_bytes),
                                 suggestions=SuggestionMemory(), tuner=DraftTuner(),
                                 speculation=speculation or SpecConfig())
        # Fixed at load time, so `info` never touches state the worker thread mutates.
        self._info: dict[str, Any] = {
            "model": self.model_dir.name,
            "target": self.name,
            **self.model.describe(),
            "backend_reason": loaded.reason,
            "context_limit": int(self.model.context_limit),
            "vocab_size": int(self.model.vocab_size),
            "untrained": bool(self.model.untrained),
            "fim_order": self.model.fim_order,
            "special_tokens": {k: int(v) for k, v in self.tokenizer.special_ids.items()},
            "kv_bytes_per_token": int(self.model.kv_bytes_per_token),
            "prefix_cache_bytes": int(prefix_cache_bytes),
            "simulated": {"profile": profile, "pace": pace,
                          "wafers": self.profile.model.wafers(self.profile.shape)},
            # max_tokens is an upper bound: decoding ends at the context limit ("length").
            "limits": {
                "max_tokens": int(self.model.context_limit),
                "max_prompt_tokens": int(self.model.context_limit),
                "max_stop": MAX_STOP_STRINGS,
            },
        }

    def info(self) -> dict[str, Any]:
        return {**self._info, "limits": dict(self._info["limits"]),
                "special_tokens": dict(self._info["special_tokens"]),
                "simulated": dict(self._info["simulated"])}

    def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]:
        if not offsets:
            return {"tokens": [int(t) for t in self.tokenizer.encode(text)]}
        ids, spans = self.tokenizer.encode_with_offsets(text)
        return {"tokens": [int(t) for t in ids],
                "offsets": [[int(s), int(e)] for s, e in spans]}

    def generate(self, params: GenerateParams, on_text: OnText | None = None,
                 should_stop: ShouldStop | None = None) -> GenerateResult:
        state, pacer = self.state, None
        if self.pace:
            pacer = Pacer(self.profile, on_text, should_stop or _never)
            on_text = pacer if on_text is not None else None
            assert state.prefix_cache is not None
            state = replace(state, prefix_cache=LookupProbe(state.prefix_cache,
                                                            pacer.prefilled))
        result = generate(self.model, self.tokenizer, params, on_text=on_text,
                          should_stop=should_stop, state=state)
        stats = result.stats
        simulated = self.profile.time_info(
            prompt_tokens=stats["prompt_tokens"], cached_tokens=stats["cached_prompt_tokens"],
            output_tokens=stats["output_tokens"], forward_passes=stats["forward_passes"])
        result.timing["simulated"] = simulated
        if pacer is not None:  # a non-streamed answer, too, comes when the wafer's would
            pacer.wait_until(simulated["total_time"])
        return result

    def prefill(self, params: GenerateParams,
                should_stop: ShouldStop | None = None) -> dict[str, Any]:
        tokens = list(params.tokens) if params.tokens is not None else \
            self.tokenizer.encode_prompt(params.prompt or "")
        check_context(len(tokens), self.model.context_limit)
        return warm(self.model, tokens, self.state, should_stop)

    def score(self, tokens: list[int],
              should_stop: ShouldStop | None = None) -> list[float | None]:
        # A fresh cache: scoring neither reads nor disturbs the prefix cache of decoding.
        return score(self.model, tokens, should_stop)


def _never() -> bool:
    return False


@dataclass
class LookupProbe:
    """The prefix cache, passed through, noting what ``generate``'s lookup found: the pacer
    needs the prompt and its cached part before the first pass to time the prefill."""

    cache: PrefixStore
    on_lookup: Callable[[int, int], None]  # (prompt tokens, cached tokens)

    def lookup(self, tokens: Sequence[int], cache: Any, *, max_tokens: int) -> int:
        cached = self.cache.lookup(tokens, cache, max_tokens=max_tokens)
        self.on_lookup(len(tokens), cached)
        return cached

    def insert(self, tokens: Sequence[int], cache: Any) -> None:
        self.cache.insert(tokens, cache)

    def stats(self) -> dict[str, int]:
        return self.cache.stats()


class Pacer:
    """An ``on_text`` that releases each pass's tokens at the simulated wafer's time.

    The simulated clock starts with the job: prefill of the uncached prompt, then one pass
    per ``on_text`` call that carries tokens. A token the local run produces later than the
    wafer would is released at once.
    """

    def __init__(self, profile: WaferProfile, on_text: OnText | None,
                 should_stop: ShouldStop) -> None:
        self.profile = profile
        self.on_text = on_text
        self.should_stop = should_stop
        self.started = time.perf_counter()
        self.simulated = 0.0  # seconds on the wafer's clock so far
        self.token_s = profile.token_s(1)

    def prefilled(self, prompt_tokens: int, cached_tokens: int) -> None:
        self.simulated += self.profile.prompt_s(prompt_tokens, cached_tokens)
        self.token_s = self.profile.token_s(prompt_tokens)

    def __call__(self, text: str, tokens: list[int]) -> None:
        if tokens:
            self.simulated += self.profile.model.pass_s(self.token_s, len(tokens))
            self.wait_until(self.simulated)
        if self.on_text is not None:
            self.on_text(text, tokens)

    def wait_until(self, simulated_s: float) -> None:
        deadline = self.started + simulated_s
        while not self.should_stop():
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            time.sleep(min(left, PACE_SLICE_S))
