"""What a GGUF file is, found out before its weights are loaded.

llama.cpp itself validates the file: a vocabulary-only load reads the header, every
tensor's description (type and bounds within the file) and the hyperparameters, so a
truncated or corrupt file, an unknown architecture or an unknown weight type fail here, in
milliseconds, with llama.cpp's own reason. The facts it yields size the KV cache, so the
memory a full load would need is checked against what the machine has before loading.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

from engine.ggml.runtime import ensure_backend

GGUF_MAGIC = b"GGUF"
OVERHEAD_BYTES = 256 << 20  # compute buffers, logits and the process itself, roughly

# general.file_type -> the name users know (llama.cpp's LLAMA_FTYPE_* values)
FILE_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1",
              10: "q2_k", 11: "q3_k_s", 12: "q3_k_m", 13: "q3_k_l", 14: "q4_k_s",
              15: "q4_k_m", 16: "q5_k_s", 17: "q5_k_m", 18: "q6_k", 32: "bf16"}


class GgufError(ValueError):
    """A GGUF file that cannot be used; the message names the file and why."""


@dataclass(frozen=True, kw_only=True)
class GgufFacts:
    architecture: str
    context_length: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_embd: int
    key_length: int
    value_length: int
    weights: str
    untrained: bool
    fim_order: str
    file_bytes: int

    def kv_bytes_per_token(self, itemsize: int) -> int:
        return self.n_layer * self.n_head_kv * (self.key_length + self.value_length) * itemsize


def _meta(llama_cpp: object, model: object, key: str) -> str | None:
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_model_meta_val_str(model, key.encode(), buf, len(buf))  # type: ignore[attr-defined]
    return buf.value.decode("utf-8", "replace") if n >= 0 else None


def load_vocab_only(path: Path) -> object:
    """llama.cpp's model handle with the vocabulary and hyperparameters, no weights.
    Raises GgufError with llama.cpp's reason."""
    import llama_cpp

    if not path.is_file():
        raise GgufError(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise GgufError(f"{path}: not a GGUF file (no GGUF magic at its start)")
    receiver = ensure_backend()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise GgufError(f"{path}: llama.cpp cannot read it ({receiver.explain()})")
    return model


def _number(text: str | None) -> int | None:
    """A metadata value as an int; per-layer arrays ("[2, 2, ...]") give their largest."""
    if text is None:
        return None
    parts = [p for p in text.strip("[]").replace(",", " ").split() if p]
    try:
        return max(int(float(p)) for p in parts) if parts else None
    except ValueError:
        return None


def read_facts(path: Path) -> GgufFacts:
    """Hyperparameters from the metadata (a vocabulary-only load has no hparams to ask:
    llama.cpp aborts the process if its per-layer getters are called on one)."""
    import llama_cpp

    model = load_vocab_only(path)
    try:
        def meta(key: str) -> str | None:
            return _meta(llama_cpp, model, key)

        arch = meta("general.architecture") or "unknown"
        n_embd = _number(meta(f"{arch}.embedding_length")) or 0
        n_head = _number(meta(f"{arch}.attention.head_count")) or 1
        head_dim = n_embd // n_head
        n_head_kv = _number(meta(f"{arch}.attention.head_count_kv")) or n_head
        file_type = _number(meta("general.file_type"))
        return GgufFacts(
            architecture=arch,
            context_length=_number(meta(f"{arch}.context_length")) or 4096,
            n_layer=_number(meta(f"{arch}.block_count")) or 0,
            n_head=n_head,
            n_head_kv=n_head_kv,
            n_embd=n_embd,
            key_length=_number(meta(f"{arch}.attention.key_length")) or head_dim,
            value_length=_number(meta(f"{arch}.attention.value_length")) or head_dim,
            weights=FILE_TYPES.get(file_type, f"type {file_type}") if file_type is not None
            else "?",
            untrained=(meta("sparkedit.untrained") or "").lower() == "true",
            fim_order=meta("sparkedit.fim_order") or "psm",
            file_bytes=path.stat().st_size,
        )
    finally:
        llama_cpp.llama_model_free(model)


def available_memory() -> int:
    """Bytes the kernel says a new allocation can have (MemAvailable)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_memory(path: Path, facts: GgufFacts, kv_bytes: int) -> None:
    """Refuse a load whose weights + KV cache + overhead exceed the available memory."""
    need = facts.file_bytes + kv_bytes + OVERHEAD_BYTES
    have = available_memory()
    if need > have:
        gib = 2**30
        raise GgufError(f"{path}: needs about {need / gib:.1f} GiB ({facts.file_bytes / gib:.1f}"
                        f" GiB weights + {kv_bytes / gib:.1f} GiB KV cache), only "
                        f"{have / gib:.1f} GiB available; try a smaller --quant or --context")
