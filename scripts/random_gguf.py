"""GGUF files of random weights with a published model's shape, for the backend benchmark.

Speed and memory depend on shapes and weight types, not on what the weights say, so a
model with Qwen2.5-Coder's published config and random weights measures what the real
checkpoint would (none can be downloaded here). The weights go through the same writer
and the same llama.cpp quantization as a converted checkpoint (engine/ggml/convert.py),
one tensor at a time, so even a 7B file is written within a few hundred MB of memory.

Usage: python scripts/random_gguf.py CONFIG.json OUT_DIR --quant q8_0,bf16
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.ggml.convert import quantize, write_gguf  # noqa: E402
from engine.model import ModelConfig  # noqa: E402
from engine.weights import f32_to_bf16  # noqa: E402


@dataclass(frozen=True)
class RandomTensor:
    """A TensorRef look-alike whose values are drawn on demand (seeded by name)."""

    path: Path
    name: str
    shape: tuple[int, ...]
    dtype: str = "BF16"
    scale: float = 0.02
    ones: bool = False  # norm gains

    def float32(self) -> np.ndarray:
        if self.ones:
            return np.ones(self.shape, np.float32)
        seed = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        return (rng.standard_normal(self.shape, dtype=np.float32) * self.scale)

    def raw(self) -> np.ndarray:
        return f32_to_bf16(self.float32())


def random_tensors(config: ModelConfig, folder: Path) -> dict[str, RandomTensor]:
    c = config
    d, kv, hd = c.hidden_size, c.num_key_value_heads, c.head_dim
    q = c.num_attention_heads * hd
    out: dict[str, RandomTensor] = {}

    def add(name: str, shape: tuple[int, ...], **kw: object) -> None:
        out[name] = RandomTensor(folder, name, shape, **kw)  # type: ignore[arg-type]

    add("model.embed_tokens.weight", (c.vocab_size, d))
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        add(p + "input_layernorm.weight", (d,), ones=True)
        add(p + "post_attention_layernorm.weight", (d,), ones=True)
        for name, rows in (("q", q), ("k", kv * hd), ("v", kv * hd)):
            add(p + f"self_attn.{name}_proj.weight", (rows, d))
            if c.qkv_bias:
                add(p + f"self_attn.{name}_proj.bias", (rows,))
        add(p + "self_attn.o_proj.weight", (d, q))
        add(p + "mlp.gate_proj.weight", (c.intermediate_size, d))
        add(p + "mlp.up_proj.weight", (c.intermediate_size, d))
        add(p + "mlp.down_proj.weight", (d, c.intermediate_size))
    add("model.norm.weight", (d,), ones=True)
    if not c.tie_word_embeddings:
        add("lm_head.weight", (c.vocab_size, d))
    return out


def make(config_path: Path, out_dir: Path, quants: list[str],
         vocab_from: Path | None = None) -> dict[str, Path]:
    """GGUF files of ``config_path``'s shape at each quantization (made once, reused).

    ``vocab_from``: a model folder whose tokenizer.json is written into the files (padded to
    the config's vocabulary with unused tokens), so that the language server can run them;
    without it they carry no vocabulary and are driven by token ids."""
    hf = {k: v for k, v in json.loads(config_path.read_text()).items()
          if not k.startswith("_")}
    hf.pop("bos_token_id", None)
    hf.pop("eos_token_id", None)
    config = ModelConfig.from_hf(hf)
    folder = out_dir / (config_path.stem + ("-vocab" if vocab_from else ""))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(hf, indent=1))
    paths = {q: folder / f"{q}.gguf" for q in quants}
    bf16 = folder / "bf16.gguf"
    if not bf16.exists() and not all(p.exists() for p in paths.values()):
        tmp = folder / "bf16.gguf.partial"
        if vocab_from is not None:
            shutil.copy(vocab_from / "tokenizer.json", folder / "tokenizer.json")
        write_gguf(folder, tmp, dtype="bf16", tensors=random_tensors(config, folder),
                   progress=lambda s: print(f"\r{s}", end="", file=sys.stderr, flush=True))
        print(file=sys.stderr)
        # Not left beside the files: its 8k tokens are not the model's 150k, so the engine
        # must tokenize with the padded vocabulary inside the GGUF.
        (folder / "tokenizer.json").unlink(missing_ok=True)
        shutil.move(tmp, bf16)
    for q, path in paths.items():
        if not path.exists() and q != "bf16":
            print(f"quantizing {folder.name} to {q}", file=sys.stderr)
            tmp = folder / f"{q}.gguf.partial"
            quantize(bf16, tmp, q)
            shutil.move(tmp, path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--quant", default="q8_0,bf16")
    args = parser.parse_args()
    for q, path in make(args.config, args.out, args.quant.split(",")).items():
        print(q, path, path.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
