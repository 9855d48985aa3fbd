"""The simulated Cerebras wafer: the numpy model on this host.

Numerics are local and exact; the calibrated timing model comes later, so
`timing.simulated` stays None for now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.generate import (
    MAX_STOP_STRINGS,
    DecodeState,
    GenerateParams,
    GenerateResult,
    generate,
)
from engine.kv_cache import KVCache
from engine.model import load_model
from engine.prefix_cache import PrefixCache
from engine.scoring import score
from engine.speculative import DraftTuner, SpecConfig, SuggestionMemory
from engine.targets.base import OnText, ShouldStop
from engine.tokenizer import Tokenizer


class WaferSimTarget:
    name = "wafer-sim"

    def __init__(self, model_dir: str | Path, *, prefix_cache_bytes: int = 512 << 20,
                 speculation: SpecConfig | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.model = load_model(self.model_dir)
        self.tokenizer = Tokenizer.from_dir(self.model_dir)
        config = self.model.config
        # Worker-thread state: caches and draft statistics live as long as the model.
        self.state = DecodeState(prefix_cache=PrefixCache(max_bytes=prefix_cache_bytes),
                                 suggestions=SuggestionMemory(), tuner=DraftTuner(),
                                 speculation=speculation or SpecConfig())
        # Fixed at load time, so `info` never touches state the worker thread mutates.
        self._info: dict[str, Any] = {
            "model": self.model_dir.name,
            "target": self.name,
            "context_limit": int(self.model.context_limit),
            "vocab_size": int(config.vocab_size),
            "untrained": bool(config.untrained),
            "fim_order": config.fim_order,
            "special_tokens": {k: int(v) for k, v in self.tokenizer.special_ids.items()},
            "kv_bytes_per_token": KVCache(config).bytes_per_token,
            "prefix_cache_bytes": int(prefix_cache_bytes),
            # max_tokens is an upper bound: decoding ends at the context limit ("length").
            "limits": {
                "max_tokens": int(self.model.context_limit),
                "max_prompt_tokens": int(self.model.context_limit),
                "max_stop": MAX_STOP_STRINGS,
            },
        }

    def info(self) -> dict[str, Any]:
        return {**self._info, "limits": dict(self._info["limits"]),
                "special_tokens": dict(self._info["special_tokens"])}

    def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]:
        if not offsets:
            return {"tokens": [int(t) for t in self.tokenizer.encode(text)]}
        ids, spans = self.tokenizer.encode_with_offsets(text)
        return {"tokens": [int(t) for t in ids],
                "offsets": [[int(s), int(e)] for s, e in spans]}

    def generate(self, params: GenerateParams, on_text: OnText | None = None,
                 should_stop: ShouldStop | None = None) -> GenerateResult:
        return generate(self.model, self.tokenizer, params, on_text=on_text,
                        should_stop=should_stop, state=self.state)

    def score(self, tokens: list[int],
              should_stop: ShouldStop | None = None) -> list[float | None]:
        # A fresh cache: scoring neither reads nor disturbs the prefix cache of decoding.
        return score(self.model, tokens, should_stop)
