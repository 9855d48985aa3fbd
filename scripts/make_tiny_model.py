"""Write the small, untrained model folder that ships with the engine.

The folder is a Hugging Face Llama checkpoint in miniature (``config.json``,
``model.safetensors``, ``tokenizer.json``, ``README.md``) so that every code path
that loads a real checkpoint is exercised by the embedded one. The weights are
random (fixed seed); the tokenizer is a byte-level BPE trained on this
interpreter's standard library, which is Python source present on every machine
that can run the engine.

Usage: python scripts/make_tiny_model.py [--out DIR]

The output is deterministic: running it twice on the same machine gives
byte-identical files (checked with ``--check``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "engine" / "models" / "tiny-untrained"

# Order matters: ids are assigned in this order, so <|endoftext|> is id 0.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|fim_pad|>",
    "<|edit_history|>",
    "<|instruction|>",
    "<|region_start|>",
    "<|cursor|>",
    "<|region_end|>",
    "<|rewrite|>",
]

VOCAB_SIZE = 8192
CORPUS_CAP_BYTES = 3_000_000
SEED = 20240601

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "rope_theta": 1_000_000.0,
    "max_position_embeddings": 131072,
    # Untied: with random tied weights the residual stream still looks like the input
    # embedding, so greedy decoding would only repeat the last prompt token.
    "tie_word_embeddings": False,
    "attention_bias": False,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "torch_dtype": "float16",
    "sparkedit": {
        "untrained": True,
        "fim_order": "spm",
        "generator": "scripts/make_tiny_model.py",
    },
}

MODEL_CARD = """\
# tiny-untrained

A placeholder model for sparkedit's engine: a 4-layer Llama-shaped decoder
(hidden 128, 4 query heads, 2 key/value heads, vocabulary 8192) with
**random, untrained weights** (fixed seed). Its completions are noise. It exists
so the engine, the protocol and the editor integrations can be built and tested
end to end before a trained model replaces it.

- `tokenizer.json`: byte-level BPE trained on the Python standard library, with
  the Qwen2.5-Coder fill-in-the-middle tokens and sparkedit's edit tokens.
- `model.safetensors`: float16 weights, Hugging Face Llama names, untied `lm_head`.
- `config.json`: Hugging Face Llama format; `sparkedit.untrained` is `true`.

Regenerate with `python scripts/make_tiny_model.py` (deterministic).
"""


def corpus_files(cap_bytes: int = CORPUS_CAP_BYTES) -> list[Path]:
    """A sorted, size-capped list of top-level standard-library modules.

    Only the top level, so that the list does not depend on which optional
    test or vendored packages a distribution chose to install.
    """
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    chosen: list[Path] = []
    total = 0
    for path in sorted(stdlib.glob("*.py"), key=lambda p: p.name):
        size = path.stat().st_size
        if total + size > cap_bytes:
            continue
        chosen.append(path)
        total += size
    return chosen


def read_corpus(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        yield path.read_text(encoding="utf-8", errors="replace")


def train_tokenizer(paths: list[Path]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    # GPT-2 style byte-level pre-tokenization: every byte is representable, so any
    # file can be encoded; runs of spaces stay together, which suits indentation.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(read_corpus(paths), trainer=trainer)
    return tok


def random_weights(cfg: dict, seed: int = SEED) -> dict[str, np.ndarray]:
    """Llama weights in Hugging Face names, small normal init, float16."""
    rng = np.random.default_rng(seed)
    d = cfg["hidden_size"]
    hd = cfg["head_dim"]
    h = cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"]
    inter = cfg["intermediate_size"]
    n_layers = cfg["num_hidden_layers"]
    std = 0.02
    # Residual-branch outputs are scaled down with depth (GPT-2 init) so the
    # residual stream keeps a sane size even with random weights.
    out_std = std / np.sqrt(2 * n_layers)

    def normal(shape: tuple[int, ...], s: float) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * s).astype(np.float16)

    w: dict[str, np.ndarray] = {"model.embed_tokens.weight": normal((cfg["vocab_size"], d), std)}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = normal((h * hd, d), std)
        w[p + "self_attn.k_proj.weight"] = normal((kv * hd, d), std)
        w[p + "self_attn.v_proj.weight"] = normal((kv * hd, d), std)
        w[p + "self_attn.o_proj.weight"] = normal((d, h * hd), out_std)
        w[p + "mlp.gate_proj.weight"] = normal((inter, d), std)
        w[p + "mlp.up_proj.weight"] = normal((inter, d), std)
        w[p + "mlp.down_proj.weight"] = normal((d, inter), out_std)
        w[p + "input_layernorm.weight"] = np.ones(d, np.float16)
        w[p + "post_attention_layernorm.weight"] = np.ones(d, np.float16)
    w["model.norm.weight"] = np.ones(d, np.float16)
    w["lm_head.weight"] = normal((cfg["vocab_size"], d), std)
    return w


def write_model(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    paths = corpus_files()
    tok = train_tokenizer(paths)
    for i, name in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(name) == i, name
    assert tok.get_vocab_size() == VOCAB_SIZE, tok.get_vocab_size()
    tok.save(str(out / "tokenizer.json"), pretty=False)
    save_file(random_weights(CONFIG), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(CONFIG, indent=2, sort_keys=True) + "\n")
    (out / "README.md").write_text(MODEL_CARD)


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="write twice and compare digests")
    args = ap.parse_args(argv)
    write_model(args.out)
    first = digest(args.out)
    for name, h in first.items():
        size = (args.out / name).stat().st_size
        print(f"{name:20s} {size:>10,d} bytes  sha256:{h}", file=sys.stderr)
    if args.check:
        write_model(args.out)
        if digest(args.out) != first:
            print("output differs between runs", file=sys.stderr)
            return 1
        print("deterministic: identical on a second run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
