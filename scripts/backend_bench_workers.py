"""The measuring side of scripts/bench_backends.py: each function runs in a fresh process.

``python scripts/bench_backends.py --worker SIDE ...`` calls one of the ``worker_*``
functions and prints its JSON on stdout, so every engine's memory is its own. ``peer`` is
llama-cpp-python's own ``Llama``; ``ours`` is sparkedit's ``generate`` on ``GgmlModel``;
both load the same GGUF file with the same threads and context settings.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EDITS = REPO / "tests" / "data" / "edits" / "click-8.1.7-8.1.8.jsonl"
THREADS = 2
N_CTX = 4096
N_BATCH = 512
FLASH_ATTN = False  # llama-cpp-python's Llama default; both sides use the same
PROMPT = 512
DECODE = 64
REPEATS = 5


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set of this process, MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def random_prompt(vocab: int, n: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(0, min(vocab, 8000), n).tolist()


# ---------------------------------------------------------------------------- workers


def peer_model(path: str, n_ctx: int, draft: bool = False) -> Any:
    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    return Llama(model_path=path, n_ctx=n_ctx, n_batch=N_BATCH, n_ubatch=N_BATCH,
                 n_threads=THREADS, n_threads_batch=THREADS, flash_attn=FLASH_ATTN,
                 verbose=False, draft_model=LlamaPromptLookupDecoding() if draft else None,
                 logits_all=draft)  # its drafting reads every row's logits


def ours_model(path: str, n_ctx: int) -> Any:
    from engine.ggml.model import GgmlModel

    return GgmlModel.load(path, threads=THREADS, context=n_ctx, flash_attn=FLASH_ATTN)


def _peer_decode(llm: Any, prompt: list[int], n: int, stop: set[int]) -> tuple[list[int],
                                                                                  list[float]]:
    """Greedy tokens and the time each arrived (from the call), stopping at ``stop`` ids."""
    out, stamps, t0 = [], [], time.perf_counter()
    for tok in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
        if tok in stop:
            break
        out.append(int(tok))
        stamps.append(time.perf_counter() - t0)
        if len(out) >= n:
            break
    return out, stamps


def _ours_decode(model: Any, tok: Any, prompt: list[int], n: int, *, drafters: tuple | None,
                 draft: str | None = None, state: Any = None) -> tuple[list[int], list[float],
                                                                         dict[str, Any]]:
    from engine.generate import DecodeState, generate
    from engine.request import GenerateParams

    stamps: list[float] = []
    t0 = time.perf_counter()

    def on_text(_text: str, accepted: list[int]) -> None:
        now = time.perf_counter() - t0
        stamps.extend([now] * len(accepted))

    params = GenerateParams(tokens=tuple(prompt), max_tokens=n, draft=draft,
                            drafters=drafters)
    result = generate(model, tok, params, on_text=on_text, state=state or DecodeState())
    return result.tokens, stamps[: len(result.tokens)], result.stats


def _decode_tps(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


class _NoText:
    """generate() needs a tokenizer for stop strings and text; token-id runs need neither."""

    special_ids: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        return []

    def incremental_decoder(self) -> Any:
        class D:
            def push(self, ids: list[int]) -> str:
                return ""

            def flush(self) -> str:
                return ""
        return D()


def worker_model(side: str, path: str) -> dict[str, Any]:
    prompt_len, out = PROMPT, {}
    if side == "peer":
        llm = peer_model(path, N_CTX)
        prompt = random_prompt(llm.n_vocab(), prompt_len)
        times = []
        for _ in range(2):
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(prompt)
            times.append(time.perf_counter() - t0)
        out["prefill_tps"] = prompt_len / min(times)
        for k in (1, 17):
            costs = []
            for r in range(REPEATS):
                llm.n_tokens = prompt_len
                t0 = time.perf_counter()
                llm.eval(random_prompt(llm.n_vocab(), k, seed=r + 1))
                costs.append(time.perf_counter() - t0)
            out[f"pass{k}_ms"] = 1e3 * statistics.median(costs)
        llm.n_tokens = prompt_len
        tokens, stamps = _peer_decode(llm, prompt, DECODE, set())
        out["decode_tps"] = _decode_tps(stamps)
    else:
        from engine.generate import DecodeState, prefill

        model = ours_model(path, N_CTX)
        prompt = random_prompt(model.vocab_size, prompt_len)
        times = []
        for _ in range(2):
            cache = model.new_cache()
            t0 = time.perf_counter()
            prefill(model, prompt, cache)
            times.append(time.perf_counter() - t0)
        out["prefill_tps"] = prompt_len / min(times)
        # pass17: a verification pass, logits on all 17 rows; pass17_last: logits on the last
        # row only, the work llama.cpp's Llama.eval does for 17 tokens
        for name, k, rows in (("pass1", 1, 1), ("pass17", 17, 17), ("pass17_last", 17, 1)):
            costs = []
            for r in range(REPEATS):
                cache.truncate(prompt_len)
                t0 = time.perf_counter()
                model.forward(random_prompt(model.vocab_size, k, seed=r + 1), cache,
                              last_n=rows)
                costs.append(time.perf_counter() - t0)
            out[f"{name}_ms"] = 1e3 * statistics.median(costs)
        state = DecodeState(prefix_cache=model.new_prefix_store(0))
        tokens, stamps, _ = _ours_decode(model, _NoText(), prompt, DECODE, drafters=(),
                                         state=state)
        out["decode_tps"] = _decode_tps(stamps)
        # A perfect draft: the region drafter holding the model's own greedy output.
        from engine.speculative import SpecConfig

        perfect = DecodeState(prefix_cache=model.new_prefix_store(0),
                              speculation=SpecConfig(drafters=("region",)))
        region = _IdDraft(tokens)
        got, stamps2, stats = _ours_decode(model, region, prompt, DECODE, drafters=None,
                                           draft="perfect", state=perfect)
        out["perfect_identical"] = got == tokens
        out["perfect_decode_tps"] = _decode_tps(stamps2)
        out["perfect_tokens_per_pass"] = len(got) / max(1, stats["forward_passes"] - 1)
    out["rss_mb"], out["peak_rss_mb"] = rss_mb()
    return out


class _IdDraft(_NoText):
    """A tokenizer stand-in whose encode() of the draft returns fixed token ids."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def encode(self, text: str) -> list[int]:
        return list(self.ids)


def worker_edits(side: str, path: str, n_edits: int) -> dict[str, Any]:
    from bench_engine import EXTRA_TOKENS, edit_prompt

    from engine.models import default_model_dir
    from engine.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(default_model_dir())
    edits = [json.loads(line) for line in EDITS.read_text().splitlines()][:n_edits]
    stop = set(tok.special_ids.values())
    runs: dict[str, list[dict[str, Any]]] = {}
    modes = ("plain", "lookup") if side == "peer" else ("plain", "speculative")
    models = {}
    if side == "peer":
        models = {"plain": peer_model(path, 1024), "lookup": peer_model(path, 1024, True)}
    else:
        model = ours_model(path, 1024)
    for e in edits:
        max_tokens = len(tok.encode(e["region_new"])) + EXTRA_TOKENS
        # Room for llama.cpp's lookup drafter to run 10 tokens past the output: near a full
        # context its Llama.eval fails to store the logits of a long draft.
        prompt = edit_prompt(tok, e, 1024 - 16, max_tokens)
        for mode in modes:
            t0 = time.perf_counter()
            if side == "peer":
                tokens, stamps = _peer_decode(models[mode], prompt, max_tokens, stop)
            else:
                from engine.generate import DecodeState

                drafters = () if mode == "plain" else None
                tokens, stamps, _ = _ours_decode(model, tok, prompt, max_tokens,
                                                 drafters=drafters, draft=e["region_old"],
                                                 state=DecodeState())
            total = time.perf_counter() - t0
            runs.setdefault(mode, []).append({"tokens": tokens, "seconds": total,
                                              "ttft": stamps[0] if stamps else total})
    return {"runs": runs, **dict(zip(("rss_mb", "peak_rss_mb"), rss_mb(), strict=True))}


def worker_ttft(side: str, path: str, context: int) -> dict[str, Any]:
    n_ctx = context + 256
    if side == "peer":
        llm = peer_model(path, n_ctx)
        vocab = llm.n_vocab()
    else:
        from engine.generate import DecodeState

        model = ours_model(path, n_ctx)
        vocab = model.vocab_size
        state = DecodeState(prefix_cache=model.new_prefix_store(1 << 30))
    base = random_prompt(vocab, context - 64)
    times = []
    for r in range(3):
        keystroke = base + random_prompt(vocab, 64, seed=100 + r)
        if side == "peer":
            if r == 0:
                llm.reset()
                llm.eval(base)
            t0 = time.perf_counter()
            next(iter(llm.generate(keystroke, temp=0.0, top_k=1, reset=True)))
            times.append(time.perf_counter() - t0)
            llm.n_tokens = len(base)  # the next keystroke shares only the base
        else:
            from engine.generate import warm

            if r == 0:
                warm(model, base, state)
            _, stamps, stats = _ours_decode(model, _NoText(), keystroke, 1, drafters=(),
                                            state=state)
            assert stats["cached_prompt_tokens"] >= len(base)
            times.append(stamps[0])
    return {"ttft_ms": 1e3 * statistics.median(times), "times_ms": [1e3 * t for t in times]}


def worker_cold(path: str, n: int) -> dict[str, Any]:
    """llama.cpp's own cold prefill of ``n`` tokens (what a warm-up saves)."""
    llm = peer_model(path, n + 256)
    t0 = time.perf_counter()
    llm.eval(random_prompt(llm.n_vocab(), n))
    return {"cold_prefill_s": time.perf_counter() - t0}


def worker_big(path: str) -> dict[str, Any]:
    from engine.generate import DecodeState

    t0 = time.perf_counter()
    model = ours_model(path, 2048)
    load_s = time.perf_counter() - t0
    prompt = random_prompt(model.vocab_size, 128)
    tokens, stamps, _ = _ours_decode(model, _NoText(), prompt, 16, drafters=(),
                                     state=DecodeState())
    current, peak = rss_mb()
    return {"load_s": load_s, "decode_tps": _decode_tps(stamps), "rss_mb": current,
            "peak_rss_mb": peak, "weights_bytes": model.weights_bytes}
