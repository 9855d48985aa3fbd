"""Hugging Face Llama/Qwen2 folders to GGUF, with the ``gguf`` package's writer and names.

What llama.cpp's own converter does for these two families, without torch: the
architecture's hyperparameters, tensor names from ``gguf.TensorNameMap``, the q/k rows
of Llama permuted from Hugging Face's rotate-half layout to llama.cpp's interleaved
rotary layout (Qwen2 runs NEOX-style rotary and keeps them), Llama 3 rope scaling as a
``rope_freqs`` tensor, linear scaling as metadata, tied embeddings as a missing output
tensor, and the byte-level BPE vocabulary (tokens, types, merges, pre-tokenizer name).
A folder without a tokenizer gets ``no_vocab`` (the engine tokenizes with the folder's
``tokenizer.json`` anyway).

Weights are written as stored (float32, float16, or bfloat16 bits) one tensor at a time,
then ``llama_model_quantize`` turns the file into q8_0 or q4_k_m, so the quantization is
llama.cpp's own. Norms, biases and rope factors stay float32.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.model import ModelConfig
from engine.weights import TensorRef, checkpoint_tensors, f32_to_bf16

Progress = Callable[[str], None]

# GGUF pre-tokenizer names of the byte-level BPE splitters we can recognise.
_PRE_TOKENIZERS = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
    r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
}


class ConversionError(ValueError):
    """The folder cannot be converted; the message names the file and the reason."""


@dataclass(frozen=True)
class _Tensor:
    name: str  # GGUF name
    shape: tuple[int, ...]
    load: Callable[[], np.ndarray]  # the array to write, made when it is written
    dtype: Any  # numpy dtype written
    raw_dtype: Any  # gguf.GGMLQuantizationType or None


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Hugging Face's rotate-half q/k rows -> llama.cpp's interleaved pairs (per head)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _llama3_rope_factors(config: ModelConfig) -> np.ndarray:
    """What llama.cpp divides each rotary frequency by: base / llama3-scaled frequency."""
    rope, dim = config.rope, config.head_dim
    base = 1.0 / (rope.theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    scaled = rope.inv_freq(dim).astype(np.float64)
    return (base / scaled).astype(np.float32)


def source_dtype(tensors: dict[str, TensorRef]) -> str:
    """The widest float type among the matrices: "f32", "bf16" or "f16"."""
    kinds = {t.dtype for t in tensors.values() if len(t.shape) == 2}
    if "F32" in kinds or not kinds:
        return "f32"
    return "bf16" if "BF16" in kinds else "f16"


def _matrix(ref: TensorRef, dtype: str, permute_heads: int | None) -> _Tensor:
    import gguf

    def load() -> np.ndarray:
        if dtype == "bf16" and ref.dtype == "BF16":
            w = ref.raw()  # bit patterns, written as they are
        elif dtype == "bf16":
            w = f32_to_bf16(ref.float32())
        elif dtype == "f16":
            w = ref.raw() if ref.dtype == "F16" else ref.float32().astype(np.float16)
        else:
            w = ref.float32()
        return _permute(w, permute_heads) if permute_heads else w

    np_dtype = {"bf16": np.uint16, "f16": np.float16, "f32": np.float32}[dtype]
    raw = gguf.GGMLQuantizationType.BF16 if dtype == "bf16" else None
    return _Tensor("", ref.shape, load, np_dtype, raw)


def _vector(ref: TensorRef, permute_heads: int | None) -> _Tensor:
    def load() -> np.ndarray:
        v = ref.float32()
        return _permute(v, permute_heads) if permute_heads else v

    return _Tensor("", ref.shape, load, np.float32, None)


def _tensors(config: ModelConfig, refs: dict[str, TensorRef], dtype: str,
             arch: Any) -> Iterator[_Tensor]:
    import gguf

    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    llama = config.model_type == "llama"
    for hf_name, ref in refs.items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # Hugging Face ignores a stored head when tied; llama.cpp reuses the embedding
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConversionError(f"{ref.path}: tensor {hf_name} has no GGUF name for "
                                  f"{config.model_type}")
        heads = None
        if llama and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            heads = config.num_attention_heads
        elif llama and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            heads = config.num_key_value_heads
        made = _matrix(ref, dtype, heads) if len(ref.shape) == 2 else _vector(ref, heads)
        yield _Tensor(name, made.shape, made.load, made.dtype, made.raw_dtype)
    if llama and config.rope.rope_type == "llama3":
        factors = _llama3_rope_factors(config)
        yield _Tensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight",
                      factors.shape, lambda: factors, np.float32, None)


# ---------------------------------------------------------------------------- vocabulary


def _pre_tokenizer(spec: dict[str, Any]) -> str | None:
    """The GGUF pre-tokenizer name for a tokenizer.json's splitter, None if unknown."""
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    for step in steps:
        if step.get("type") == "Split":
            regex = (step.get("pattern") or {}).get("Regex")
            if regex in _PRE_TOKENIZERS:
                return _PRE_TOKENIZERS[regex]
            return None
    if any(s.get("type") == "ByteLevel" and s.get("use_regex", True) for s in steps):
        return "gpt-2"
    return None


def _looks_control(text: str) -> bool:
    return text.startswith("<|") and text.endswith("|>")


def _write_vocab(writer: Any, folder: Path, config: ModelConfig, hf: dict[str, Any]) -> str:
    """Vocabulary metadata; returns how it was written (for the log)."""
    import gguf

    path = folder / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    byte_bpe = spec is not None and (spec.get("model") or {}).get("type") == "BPE" and \
        "ByteLevel" in json.dumps(spec.get("decoder"))
    if not byte_bpe:
        writer.add_tokenizer_model("no_vocab")  # the size is in the metadata already
        return "no vocabulary (no byte-level BPE tokenizer.json)"
    assert spec is not None
    vocab: dict[str, int] = spec["model"]["vocab"]
    added = {t["id"]: t for t in spec.get("added_tokens", [])}
    size = max(config.vocab_size, max(vocab.values()) + 1, max(added, default=-1) + 1)
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [int(gguf.TokenType.UNUSED)] * size
    for text, i in vocab.items():
        tokens[i], types[i] = text, int(gguf.TokenType.NORMAL)
    for i, tok in added.items():
        control = tok.get("special") or _looks_control(tok["content"])
        tokens[i] = tok["content"]
        types[i] = int(gguf.TokenType.CONTROL if control else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    pre = _pre_tokenizer(spec)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre or "default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    by_text = {t: i for i, t in enumerate(tokens)}
    eos = config.eos_token_id
    if eos is None and "<|endoftext|>" in by_text:
        eos = by_text["<|endoftext|>"]
    if eos is not None:
        writer.add_eos_token_id(eos)
    if config.bos_token_id is not None:
        writer.add_bos_token_id(config.bos_token_id)
    writer.add_add_bos_token(False)
    keys = gguf.Keys.Tokenizer
    for text, key in (("<|fim_prefix|>", keys.FIM_PRE_ID), ("<|fim_suffix|>", keys.FIM_SUF_ID),
                      ("<|fim_middle|>", keys.FIM_MID_ID), ("<|fim_pad|>", keys.FIM_PAD_ID),
                      ("<|repo_name|>", keys.FIM_REP_ID), ("<|file_sep|>", keys.FIM_SEP_ID)):
        if text in by_text:
            writer.add_uint32(key, by_text[text])
    return f"byte-level BPE, {size} tokens, pre-tokenizer {pre or 'default (unrecognised)'}"


# ---------------------------------------------------------------------------- writing


def write_gguf(folder: Path, out: Path, *, dtype: str, progress: Progress | None = None,
               tensors: dict[str, TensorRef] | None = None) -> None:
    """Write ``folder`` as a GGUF file at ``out`` with matrices in ``dtype`` (f32, bf16 or
    f16). ``tensors`` replaces the folder's checkpoint (anything with TensorRef's shape,
    dtype, raw() and float32(); the benchmarks pass random weights). Raises
    ConversionError naming the file and the problem."""
    import gguf

    try:
        hf = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config = ModelConfig.from_hf(hf)
        refs = checkpoint_tensors(folder) if tensors is None else tensors
    except (OSError, ValueError, KeyError) as exc:
        raise ConversionError(f"{folder}: {exc}") from exc
    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}[config.model_type]
    writer = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[arch])
    try:
        _write_metadata(writer, folder, config, hf, dtype)
        vocab = _write_vocab(writer, folder, config, hf)
        tensors = list(_tensors(config, refs, dtype, arch))
        for t in tensors:
            nbytes = int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
            writer.add_tensor_info(t.name, t.shape, np.dtype(t.dtype), nbytes,
                                   raw_dtype=t.raw_dtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = sum(int(np.prod(t.shape)) for t in tensors)
        done, shown = 0, -1
        for t in tensors:
            writer.write_tensor_data(t.load())
            done += int(np.prod(t.shape))
            percent = 100 * done // max(1, total)
            if progress is not None and percent // 5 > shown:  # every 5 %
                shown = percent // 5
                progress(_bar(f"converting {folder.name} ({dtype})", done, total))
        writer.flush()
    except OSError as exc:
        raise ConversionError(f"{out}: cannot write: {exc}") from exc
    finally:
        writer.close()
    if progress is not None:
        progress(f"converted {folder.name}: {vocab}")


def _write_metadata(writer: Any, folder: Path, config: ModelConfig, hf: dict[str, Any],
                    dtype: str) -> None:
    import gguf

    c = config
    writer.add_name(folder.name)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_key_length(c.head_dim)
    writer.add_value_length(c.head_dim)
    writer.add_rope_dimension_count(c.head_dim)
    writer.add_rope_freq_base(c.rope.theta)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_vocab_size(c.vocab_size)
    if c.rope.rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(c.rope.factor)
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "bf16": gguf.LlamaFileType.MOSTLY_BF16}[dtype]
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    # sparkedit's own facts about the checkpoint, read back by engine/ggml/model.py.
    writer.add_string("sparkedit.fim_order", c.fim_order)
    writer.add_bool("sparkedit.untrained", c.untrained)


def _bar(label: str, done: int, total: int, width: int = 30) -> str:
    frac = done / total if total else 1.0
    filled = math.floor(frac * width)
    return f"{label} [{'#' * filled}{'.' * (width - filled)}] {100 * frac:3.0f}%"


def quantize(source: Path, out: Path, quant: str, *, threads: int | None = None) -> None:
    """llama.cpp's own quantization of a GGUF file (q8_0, q4_k_m, bf16 or f32)."""
    import llama_cpp

    from engine.ggml.runtime import ensure_backend

    ensure_backend()
    ftype = {"f32": llama_cpp.LLAMA_FTYPE_ALL_F32, "bf16": llama_cpp.LLAMA_FTYPE_MOSTLY_BF16,
             "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
             "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[quant]
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads or os.cpu_count() or 1
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(),
                                            params)
    if status != 0:
        raise ConversionError(f"{source}: llama.cpp could not quantize it to {quant} "
                              f"(status {status})")
