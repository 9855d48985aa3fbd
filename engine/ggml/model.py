"""The ggml backend's forward primitive: a GGUF model in one llama.cpp context.

llama.cpp keeps keys and values inside its context, so the engine's "cache" is a view of
sequence 0 of that context: ``GgmlCache`` holds the token ids the sequence holds for the
request that owns it. Only one cache owns the sequence at a time (the engine runs one job
at a time on one worker thread); a new request's cache starts empty and either adopts a
prefix of what the sequence already holds (engine/ggml/prefix.py) or clears it.

``forward`` runs new tokens in batches of ``n_batch`` through ``llama_decode`` and asks for
logits only on the rows wanted (a verification pass wants all K+1; a long prefill only its
last); ``truncate`` is ``llama_memory_seq_rm`` from the cut to the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.ggml.gguf_file import GgufError, GgufFacts, check_memory, read_facts
from engine.ggml.prefix import SavedStates
from engine.ggml.runtime import ensure_backend

log = logging.getLogger("sparkedit.ggml")

DEFAULT_MAX_CONTEXT = 32768  # KV cells allocated when the model allows more (--context)
BUILD_HINT = ("reinstall it with CMAKE_ARGS=-DGGML_LLAMAFILE=OFF pip install --no-cache-dir "
              "--force-reinstall llama-cpp-python (README, Compute backends)")
N_BATCH = 512  # tokens per llama_decode call, as llama-cpp-python's Llama defaults
PREFILL_SLICE_S = 0.15  # seconds of prefill between two looks for a cancel or a request
GGML_TYPE_F32, GGML_TYPE_F16 = 0, 1


def exact_verification(flash_attn: bool) -> bool:
    """Does a pass of K+1 tokens compute each row bit for bit as a one-token pass does?

    With llama.cpp's own matrix kernels and without flash attention, yes for the 2-33 rows
    of a verification pass (tests/engine/test_ggml_backend.py checks it per weight type).
    llamafile's sgemm, which llama.cpp uses for batches of two or more rows when it is
    compiled in, sums in another order; with quantized weights that flips tokens whose top
    two logits are close, so speculative output would differ from plain decoding.
    """
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    return not flash_attn and "LLAMAFILE = 1" not in info


@dataclass
class GgmlCache:
    """Sequence 0 of the model's context as one request's cache."""

    model: GgmlModel
    tokens: list[int]

    @property
    def length(self) -> int:
        return len(self.tokens)

    def truncate(self, n: int) -> None:
        if not 0 <= n <= self.length:
            raise ValueError(f"truncate({n}) outside 0..{self.length}")
        self.model._trim(self, n)


class GgmlModel:
    """A GGUF model on llama.cpp's CPU kernels, behind the engine's Backend protocol."""

    name = "ggml"

    def __init__(self, path: Path, facts: GgufFacts, model_ptr: Any, ctx: Any,
                 n_ctx: int, kv_dtype: str, threads: int, flash_attn: bool) -> None:
        import llama_cpp

        self._llama = llama_cpp
        self.path = path
        self.facts = facts
        self._model = model_ptr
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.vocab_ptr = llama_cpp.llama_model_get_vocab(model_ptr)
        self.vocab_size = int(llama_cpp.llama_vocab_n_tokens(self.vocab_ptr))
        self.context_limit = n_ctx
        self.threads = threads
        self.weights = facts.weights
        self.weights_bytes = int(llama_cpp.llama_model_size(model_ptr))
        self.kv_dtype = kv_dtype
        self.kv_bytes_per_token = facts.kv_bytes_per_token(2 if kv_dtype == "f16" else 4)
        self.untrained = facts.untrained
        self.fim_order = facts.fim_order
        self.flash_attn = flash_attn
        self.exact_verification = exact_verification(flash_attn)
        self._batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
        # Writable numpy views over the batch's arrays: filling a 512-token batch is a few
        # vector copies instead of thousands of ctypes assignments.
        self._b_token = np.ctypeslib.as_array(self._batch.token, shape=(N_BATCH,))
        self._b_pos = np.ctypeslib.as_array(self._batch.pos, shape=(N_BATCH,))
        self._b_logits = np.ctypeslib.as_array(self._batch.logits, shape=(N_BATCH,))
        np.ctypeslib.as_array(self._batch.n_seq_id, shape=(N_BATCH,))[:] = 1
        for i in range(N_BATCH):
            self._batch.seq_id[i][0] = 0
        self._resident: list[int] = []  # what sequence 0 holds, in order
        self._owner: GgmlCache | None = None
        self.prefill_slice = self._measure_prefill_slice()

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None, context: int | None = None,
             kv_dtype: str = "f16", flash_attn: bool = False) -> GgmlModel:
        """Load a GGUF file. Raises GgufError with one line naming the file: a corrupt
        or truncated file, an architecture or weight type llama.cpp does not know, or a
        model that would not fit in this machine's memory (checked before loading)."""
        import llama_cpp

        path = Path(path)
        facts = read_facts(path)
        n_ctx = min(context or min(facts.context_length, DEFAULT_MAX_CONTEXT),
                    facts.context_length)
        kv_bytes = n_ctx * facts.kv_bytes_per_token(2 if kv_dtype == "f16" else 4)
        check_memory(path, facts, kv_bytes)
        receiver = ensure_backend()
        threads = threads or os.cpu_count() or 1
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0
        # No repacked copies of the weights ("extra buffer types"): for k-quants llama.cpp
        # would keep a second, interleaved copy beside the mapped file (a 7B q4_k_m then
        # holds 7.6 GB instead of 4.8 GB here) for no faster decoding on this CPU, and
        # its batch kernels would round differently from the one-token ones.
        mparams.use_extra_bufts = False
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise GgufError(f"{path}: llama.cpp cannot load it ({receiver.explain()})")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = N_BATCH
        cparams.n_ubatch = N_BATCH
        cparams.n_seq_max = 1
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.no_perf = True
        # Off by default: llama.cpp's CPU flash attention takes another path for a batch
        # than for one token, so a verification pass would round differently from plain
        # decoding (and it rounds attention through float16).
        cparams.flash_attn_type = int(flash_attn)
        kv_type = GGML_TYPE_F16 if kv_dtype == "f16" else GGML_TYPE_F32
        cparams.type_k = kv_type
        cparams.type_v = kv_type
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            llama_cpp.llama_model_free(model)
            raise GgufError(f"{path}: llama.cpp cannot create a context of {n_ctx} "
                                f"tokens ({receiver.explain()})")
        if not exact_verification(flash_attn):
            log.warning("%s: verification passes may round differently from one-token passes "
                        "(flash attention, or llama.cpp built with llamafile's sgemm), so "
                        "speculative output can differ from plain decoding in near ties; %s",
                        path.name, BUILD_HINT if not flash_attn else "turn flash attention off")
        return cls(path, facts, model, ctx, n_ctx, kv_dtype, threads, flash_attn)

    def close(self) -> None:
        if self._ctx:
            self._llama.llama_batch_free(self._batch)
            self._llama.llama_free(self._ctx)
            self._llama.llama_model_free(self._model)
            self._ctx = self._model = None

    def __del__(self) -> None:
        # At interpreter shutdown the binding may be gone; the process frees it anyway.
        with contextlib.suppress(Exception):
            self.close()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "weights": self.weights, "weights_bytes": self.weights_bytes,
                "gguf": str(self.path), "architecture": self.facts.architecture,
                "kv_dtype": self.kv_dtype, "threads": self.threads,
                "exact_verification": self.exact_verification}

    # ------------------------------------------------------------------ caches

    def new_cache(self) -> GgmlCache:
        return GgmlCache(self, [])

    def new_prefix_store(self, max_bytes: int) -> SavedStates:
        return SavedStates(self, max_bytes=max_bytes)

    @property
    def resident(self) -> list[int]:
        """The tokens sequence 0 holds now (read-only use)."""
        return self._resident

    def adopt(self, cache: GgmlCache, n: int) -> None:
        """Give ``cache`` the first ``n`` resident tokens (a prefix-cache hit: no compute)."""
        assert cache.length == 0 and 0 <= n <= len(self._resident)
        cache.tokens = self._resident[:n]
        self._owner = cache
        self._trim(cache, n)

    def _trim(self, cache: GgmlCache, n: int) -> None:
        if cache is self._owner and n < len(self._resident):
            self._llama.llama_memory_seq_rm(self._memory, 0, n, -1)
            del self._resident[n:]
        del cache.tokens[n:]

    def _own(self, cache: GgmlCache) -> None:
        if cache is self._owner:
            return
        # A fresh cache takes the sequence over; whatever it held is dropped.
        assert cache.length == 0, "a cache that does not own the sequence must be empty"
        if self._resident:
            self._llama.llama_memory_seq_rm(self._memory, 0, 0, -1)
            self._resident = []
        self._owner = cache

    def save_state(self) -> bytes:
        """A copy of sequence 0's keys and values (llama_state_seq_get_data)."""
        size = self._llama.llama_state_seq_get_size(self._ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        written = self._llama.llama_state_seq_get_data(self._ctx, buf, size, 0)
        return bytes(buf[:written])

    def restore_state(self, data: bytes, tokens: list[int]) -> None:
        """Make sequence 0 hold ``tokens`` from a ``save_state`` copy."""
        self._llama.llama_memory_seq_rm(self._memory, 0, 0, -1)
        self._resident = []
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if self._llama.llama_state_seq_set_data(self._ctx, buf, len(data), 0) != len(data):
            self._llama.llama_memory_seq_rm(self._memory, 0, 0, -1)
            raise RuntimeError("llama.cpp refused a saved sequence state")
        self._resident = list(tokens)
        self._owner = None

    def _measure_prefill_slice(self) -> int:
        """Tokens a prefill computes per call: about PREFILL_SLICE_S of work, from one
        timed batch at load (a multiple of 32, between 32 and N_BATCH)."""
        probe = self.new_cache()
        tokens = np.arange(64, dtype=np.int32) % self.vocab_size
        self.forward(tokens[:8], probe, last_n=0)  # first call pays one-off set-up
        started = time.perf_counter()
        self.forward(tokens, probe, last_n=0)
        rate = 64 / max(time.perf_counter() - started, 1e-6)
        probe.truncate(0)
        return int(min(N_BATCH, max(32, rate * PREFILL_SLICE_S))) // 32 * 32

    # ------------------------------------------------------------------ forward

    def forward(self, tokens: np.ndarray | list[int], cache: GgmlCache, *,
                last_n: int | None = None) -> np.ndarray:
        """Run tokens [T] at positions cache.length.. and append them to the sequence.

        Returns logits [last_n or T, V] float32 of the last rows.
        """
        ids = np.asarray(tokens, dtype=np.int32).reshape(-1)  # [T]
        n = ids.shape[0]
        if n == 0:
            raise ValueError("forward() needs at least one token")
        if cache.length + n > self.context_limit:
            raise ValueError(f"KV cache overflow: {cache.length + n} tokens > context limit "
                             f"{self.context_limit}")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"tokens: ids must be in 0..{self.vocab_size - 1}")
        self._own(cache)
        self._trim(cache, cache.length)  # drop anything held beyond this cache's tokens
        keep = n if last_n is None else max(0, min(last_n, n))
        out: list[np.ndarray] = []
        for s in range(0, n, N_BATCH):
            chunk = ids[s : s + N_BATCH]
            t = chunk.shape[0]
            first_out = max(0, n - keep - s)  # rows of this chunk that need logits
            start = cache.length
            self._batch.n_tokens = t
            self._b_token[:t] = chunk
            self._b_pos[:t] = np.arange(start, start + t, dtype=np.int32)
            self._b_logits[:t] = 0
            self._b_logits[first_out:t] = 1
            status = self._llama.llama_decode(self._ctx, self._batch)
            if status != 0:
                # A failed decode leaves the sequence as it was before this chunk.
                self._llama.llama_memory_seq_rm(self._memory, 0, start, -1)
                raise RuntimeError(f"llama_decode failed with status {status}")
            added = chunk.tolist()
            cache.tokens.extend(added)
            self._resident.extend(added)
            rows = t - first_out
            if rows > 0:
                ptr = self._llama.llama_get_logits(self._ctx)
                logits = np.ctypeslib.as_array(ptr, shape=(rows * self.vocab_size,))
                out.append(logits.reshape(rows, self.vocab_size).copy())  # [rows, V]
        if not out:
            return np.empty((0, self.vocab_size), np.float32)
        return out[0] if len(out) == 1 else np.concatenate(out, 0)
