"""Reference fixtures: tiny random Llama and Qwen2 checkpoints plus the logits
Hugging Face transformers computes for them (dev-only; ``pip install -e .[fixtures]``).

Each fixture under ``tests/data/reference/<name>/`` is a checkpoint written by
``save_pretrained`` (safetensors; one sharded with a tiny ``max_shard_size``, one
fp16, one bf16) and ``reference.npz`` with, for fixed prompts, the logits of the
checkpoint reloaded by transformers in float32 with eager attention, plus the
rotary ``inv_freq`` and cos/sin at far positions. ``published_rope.npz`` holds
transformers' ``inv_freq`` and cos/sin for configs copied from published model
cards (``configs/*.json``), so rope scaling is checked at their real sizes. The
Qwen2 fixture's ``config.json`` is rewritten in the layout Qwen2.5-Coder publishes
(``rope_theta`` at top level, ``rope_scaling: null``, ``use_sliding_window: false``…)
and transformers reloads it from that file, and it carries a tokenizer with
Qwen's added-token structure (FIM markers are added tokens *not* flagged special).

tests/engine/test_reference.py reads only these files, so the test suite needs
neither torch nor transformers.

Usage: python scripts/make_reference_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "reference"
FAR_POSITIONS = [0, 1, 7, 1000, 4095]
PUBLISHED_FAR_POSITIONS = [0, 1, 8191, 32767, 131071]

# Small but not degenerate: GQA (and MQA), head_dim both given (and != hidden/heads)
# and derived, two layers so the residual stream and cache of a later layer matter.
FIXTURES: dict[str, dict[str, Any]] = {
    "llama-untied-llama3": {
        "class": LlamaConfig, "dtype": torch.float32, "max_shard_size": "40KB",
        "config": dict(vocab_size=80, hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       head_dim=16, max_position_embeddings=4096, rms_norm_eps=1e-5,
                       tie_word_embeddings=False, bos_token_id=1,
                       eos_token_id=[2, 3],  # Llama 3 lists several
                       # original context 32 puts head_dim 16's wavelengths (6 to
                       # ~20k positions) in all three llama3 bands.
                       rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0,
                                        "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0,
                                        "original_max_position_embeddings": 32}),
    },
    "llama-tied-linear-bias": {
        "class": LlamaConfig, "dtype": torch.float16, "max_shard_size": None,
        "config": dict(vocab_size=64, hidden_size=32, intermediate_size=48,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                       max_position_embeddings=4096, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
                       rope_parameters={"rope_type": "linear", "rope_theta": 500.0,
                                        "factor": 4.0}),
    },
    "qwen2-tied": {
        "class": Qwen2Config, "dtype": torch.bfloat16, "max_shard_size": None,
        "config": dict(vocab_size=352, hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=4096, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, bos_token_id=None, eos_token_id=None,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        "published_layout": True,
        "tokenizer": True,
    },
}

# Qwen2.5's pre-tokenizer split (from its tokenizer.json) and added-token layout:
# control tokens special, FIM and repository markers added but NOT special.
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
              r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN_ADDED = [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
              ("<tool_call>", False), ("</tool_call>", False), ("<|fim_prefix|>", False),
              ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
              ("<|repo_name|>", False), ("<|file_sep|>", False)]
CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "for i in range(10):\n    print(i, 'héllo wörld')\n",
    "import os\nimport sys\n\nif __name__ == '__main__':\n    sys.exit(main())\n",
] * 20


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Weights far from HF's std-0.02 init so logits are spread out and every term
    (norm gains, biases) moves them measurably."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif "embed_tokens" in name:
                p.copy_(noise)
            else:
                p.copy_(0.2 * noise)


def published_layout(cfg: dict[str, Any]) -> dict[str, Any]:
    """A config.json shaped like Qwen2.5-Coder-1.5B's, with this fixture's sizes."""
    return {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
        "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu",
        "hidden_size": cfg["hidden_size"], "initializer_range": 0.02,
        "intermediate_size": cfg["intermediate_size"],
        "max_position_embeddings": cfg["max_position_embeddings"], "max_window_layers": 28,
        "model_type": "qwen2", "num_attention_heads": cfg["num_attention_heads"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "num_key_value_heads": cfg["num_key_value_heads"], "rms_norm_eps": cfg["rms_norm_eps"],
        "rope_scaling": None, "rope_theta": cfg["rope_parameters"]["rope_theta"],
        "sliding_window": 131072, "tie_word_embeddings": cfg["tie_word_embeddings"],
        "torch_dtype": "bfloat16", "transformers_version": "4.45.0.dev0", "use_cache": True,
        "use_sliding_window": False, "vocab_size": cfg["vocab_size"],
    }


def write_qwen_like_tokenizer(out: Path) -> int:
    """tokenizer.json + tokenizer_config.json with Qwen2.5's structure; returns its size."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=330, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    for content, special in QWEN_ADDED:
        added = AddedToken(content, normalized=False, special=special)
        (tok.add_special_tokens if special else tok.add_tokens)([added])
    tok.save(str(out / "tokenizer.json"))
    decoder = {str(tok.token_to_id(c)): {"content": c, "lstrip": False, "normalized": False,
                                         "rstrip": False, "single_word": False, "special": s}
               for c, s in QWEN_ADDED}
    (out / "tokenizer_config.json").write_text(json.dumps({
        "add_prefix_space": False, "added_tokens_decoder": decoder,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": None,
        "clean_up_tokenization_spaces": False, "eos_token": "<|endoftext|>",
        "errors": "replace", "model_max_length": 32768, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None}, indent=2) + "\n")
    return tok.get_vocab_size(with_added_tokens=True)


def rope_tables(rotary: torch.nn.Module, positions: list[int]) -> dict[str, np.ndarray]:
    x = torch.zeros(1, dtype=torch.float32)
    cos, sin = rotary(x, torch.tensor([positions]))  # [1, P, hd]
    return {"inv_freq": rotary.inv_freq.numpy().astype(np.float32),
            "rope_positions": np.array(positions, np.int64),
            "rope_cos": cos[0].numpy().astype(np.float32),
            "rope_sin": sin[0].numpy().astype(np.float32)}


def make_fixture(out: Path, name: str, spec: dict[str, Any], seed: int) -> None:
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    config = spec["class"](**spec["config"])
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize(model, seed)
    model.to(spec["dtype"])
    kwargs = {"max_shard_size": spec["max_shard_size"]} if spec["max_shard_size"] else {}
    model.save_pretrained(folder, safe_serialization=True, **kwargs)
    for extra in ("generation_config.json",):  # not a model file; keep fixtures minimal
        (folder / extra).unlink(missing_ok=True)
    if spec.get("published_layout"):
        (folder / "config.json").write_text(
            json.dumps(published_layout(spec["config"]), indent=2) + "\n")
    if spec.get("tokenizer"):
        size = write_qwen_like_tokenizer(folder)
        assert size <= spec["config"]["vocab_size"], (size, spec["config"]["vocab_size"])
    # The reference reads back exactly the files the engine will read, widened to
    # float32 (the engine computes in float32 whatever the storage type).
    ref = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                               attn_implementation="eager").eval()
    vocab = spec["config"]["vocab_size"]
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for i, length in enumerate((1, 9, 40)):
        tokens = rng.integers(0, vocab, size=length).astype(np.int64)
        with torch.no_grad():
            logits = ref(torch.from_numpy(tokens)[None]).logits[0]  # [T, V]
        arrays[f"prompt_{i}"] = tokens
        arrays[f"logits_{i}"] = logits.numpy().astype(np.float32)
    arrays |= rope_tables(ref.model.rotary_emb, FAR_POSITIONS)
    np.savez_compressed(folder / "reference.npz", **arrays)


def published_rope(out: Path) -> None:
    """HF's inv_freq and cos/sin for the rope settings of published configs."""
    arrays: dict[str, np.ndarray] = {}
    for path in sorted((out / "configs").glob("*.json")):
        cfg = json.loads(path.read_text())
        cls, rotary = ((Qwen2Config, Qwen2RotaryEmbedding) if cfg["model_type"] == "qwen2"
                       else (LlamaConfig, LlamaRotaryEmbedding))
        tables = rope_tables(rotary(cls.from_dict(cfg)), PUBLISHED_FAR_POSITIONS)
        arrays |= {f"{path.stem}/{k}": v for k, v in tables.items()}
    np.savez_compressed(out / "published_rope.npz", **arrays)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for seed, (name, spec) in enumerate(FIXTURES.items()):
        make_fixture(args.out, name, spec, seed)
    published_rope(args.out)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {len(FIXTURES)} fixtures to {args.out} ({total / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
