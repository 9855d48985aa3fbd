"""The numpy decoder against a plain reference, and its cache invariants."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from engine.kv_cache import KVCache
from engine.model import ModelConfig, Transformer, load_model
from engine.models import untrained_model_dir
from engine.weights import f32_to_bf16, load_checkpoint

HF_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 97,
    "hidden_size": 48,
    "intermediate_size": 80,
    "num_hidden_layers": 2,
    "num_attention_heads": 6,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500.0,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
}


def random_weights(cfg: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    d, hd, inter = cfg["hidden_size"], cfg["head_dim"], cfg["intermediate_size"]
    h, kv, v = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]

    def w(*shape: int, s: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * s).astype(np.float32)

    out = {"model.embed_tokens.weight": w(v, d, s=1.0), "model.norm.weight": 1 + w(d)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out |= {
            p + "self_attn.q_proj.weight": w(h * hd, d),
            p + "self_attn.k_proj.weight": w(kv * hd, d),
            p + "self_attn.v_proj.weight": w(kv * hd, d),
            p + "self_attn.o_proj.weight": w(d, h * hd),
            p + "mlp.gate_proj.weight": w(inter, d),
            p + "mlp.up_proj.weight": w(inter, d),
            p + "mlp.down_proj.weight": w(d, inter),
            p + "input_layernorm.weight": 1 + w(d),
            p + "post_attention_layernorm.weight": 1 + w(d),
        }
    if not cfg["tie_word_embeddings"]:
        out["lm_head.weight"] = w(v, d)
    return out


def reference_forward(cfg: dict, w: dict[str, np.ndarray], tokens: list[int]) -> np.ndarray:
    """HF LlamaForCausalLM written out plainly: per-head loops, float64."""
    hd = cfg["head_dim"]
    h, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    eps, n = cfg["rms_norm_eps"], len(tokens)
    W = {k: v.astype(np.float64) for k, v in w.items()}

    def rms(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    inv_freq = 1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd)
    ang = np.outer(np.arange(n), inv_freq)
    cos = np.concatenate([np.cos(ang)] * 2, -1)
    sin = np.concatenate([np.sin(ang)] * 2, -1)

    def rope(x: np.ndarray) -> np.ndarray:  # x [n, hd]
        rot = np.concatenate([-x[:, hd // 2 :], x[:, : hd // 2]], -1)
        return x * cos + rot * sin

    x = W["model.embed_tokens.weight"][tokens]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms(x, W[p + "input_layernorm.weight"])
        q = a @ W[p + "self_attn.q_proj.weight"].T
        k = a @ W[p + "self_attn.k_proj.weight"].T
        v = a @ W[p + "self_attn.v_proj.weight"].T
        heads = []
        for head in range(h):
            j = head // (h // kv)
            qh = rope(q[:, head * hd : (head + 1) * hd])
            kh = rope(k[:, j * hd : (j + 1) * hd])
            vh = v[:, j * hd : (j + 1) * hd]
            s = qh @ kh.T / np.sqrt(hd)
            s[np.triu(np.ones((n, n), bool), 1)] = -np.inf
            pr = np.exp(s - s.max(-1, keepdims=True))
            pr /= pr.sum(-1, keepdims=True)
            heads.append(pr @ vh)
        x = x + np.concatenate(heads, -1) @ W[p + "self_attn.o_proj.weight"].T
        m = rms(x, W[p + "post_attention_layernorm.weight"])
        g = m @ W[p + "mlp.gate_proj.weight"].T
        u = m @ W[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "mlp.down_proj.weight"].T
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return rms(x, W["model.norm.weight"]) @ head.T


def write_bf16_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """safetensors' numpy API cannot write bf16, so lay the file out by hand."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        raw = f32_to_bf16(arr).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_model_dir(tmp: Path, cfg: dict, dtype: str) -> dict[str, np.ndarray]:
    w = random_weights(cfg)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.json").write_text(json.dumps(cfg))
    if dtype == "bf16":
        write_bf16_safetensors(tmp / "model.safetensors", w)
        # What the model actually holds after bf16 rounding.
        return {k: (f32_to_bf16(v).astype(np.uint32) << 16).view(np.float32) for k, v in w.items()}
    np_dtype = np.float16 if dtype == "fp16" else np.float32
    stored = {k: v.astype(np_dtype) for k, v in w.items()}
    save_file(stored, str(tmp / "model.safetensors"))
    return {k: v.astype(np.float32) for k, v in stored.items()}


@pytest.mark.parametrize(
    ("dtype", "tied"), [("fp32", False), ("fp16", False), ("bf16", False), ("fp32", True)]
)
def test_matches_plain_reference(tmp_path: Path, dtype: str, tied: bool) -> None:
    cfg = HF_CONFIG | {"tie_word_embeddings": tied}
    weights = make_model_dir(tmp_path, cfg, dtype)
    loaded = load_checkpoint(tmp_path)
    assert set(loaded) == set(weights)
    for k, v in weights.items():
        np.testing.assert_array_equal(loaded[k], v)
    model = load_model(tmp_path)
    tokens = [5, 17, 3, 96, 0, 42, 42, 7, 11, 60]
    got = model.forward(np.array(tokens), KVCache(model.config))
    want = reference_forward(cfg, weights, tokens)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_config_from_hf_defaults_and_sparkedit_fields() -> None:
    cfg = ModelConfig.from_hf({k: v for k, v in HF_CONFIG.items() if k != "head_dim"}
                              | {"sparkedit": {"untrained": True, "fim_order": "spm"}})
    assert cfg.head_dim == 48 // 6 and cfg.untrained and cfg.fim_order == "spm"
    with pytest.raises(ValueError, match="fim_order"):
        ModelConfig.from_hf(HF_CONFIG | {"sparkedit": {"fim_order": "xyz"}})


@pytest.fixture(scope="module")
def small() -> Transformer:
    cfg = ModelConfig.from_hf(HF_CONFIG)
    return Transformer(cfg, random_weights(HF_CONFIG, seed=1))


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


@settings(max_examples=25, deadline=None)
@given(tokens=st.lists(st.integers(0, 96), min_size=2, max_size=40), data=st.data())
def test_incremental_equals_full(small: Transformer, tokens: list[int], data) -> None:
    full = small.forward(np.array(tokens), KVCache(small.config, block_size=8))
    split = data.draw(st.integers(1, len(tokens)))
    cache = KVCache(small.config, block_size=8)  # small blocks: exercise growth
    parts = [small.forward(np.array(tokens[:split]), cache)]
    parts += [small.forward([t], cache) for t in tokens[split:]]
    assert cache.length == len(tokens)
    _close(np.concatenate(parts), full)


def test_truncate_then_reforward(small: Transformer) -> None:
    tokens = list(range(30))
    cache = KVCache(small.config)
    full = small.forward(np.array(tokens), cache)
    cache.truncate(12)
    again = small.forward(np.array([50, 51, 52]), cache)  # overwrite stale entries
    cache.truncate(12)
    redo = small.forward(np.array(tokens[12:]), cache)
    _close(redo, full[12:])
    assert again.shape == (3, 97)
    with pytest.raises(ValueError):
        cache.truncate(31)


def test_long_input_chunks_and_last_n(small: Transformer, monkeypatch) -> None:
    import engine.model as model_mod

    tokens = np.arange(50) % 97
    full = small.forward(tokens, KVCache(small.config))
    monkeypatch.setattr(model_mod, "PREFILL_CHUNK", 16)
    chunked = small.forward(tokens, KVCache(small.config))
    last = small.forward(tokens, KVCache(small.config), last_n=20)
    _close(chunked, full)
    _close(last, full[-20:])


def test_cache_grows_in_blocks_and_refuses_overflow(small: Transformer) -> None:
    cache = KVCache(small.config, block_size=16)
    assert cache.capacity == 0
    small.forward(np.arange(5), cache)
    assert cache.capacity == 16
    small.forward(np.arange(20), cache)
    assert cache.capacity == 32 and cache.length == 25
    assert cache.bytes_per_token == 2 * 2 * 2 * 16 * 4
    with pytest.raises(ValueError, match="context limit"):
        small.forward(np.arange(40), cache)  # 25 + 40 > 64
    assert cache.length == 25


def test_embedded_model_loads() -> None:
    model = load_model(untrained_model_dir())
    assert model.config.untrained and model.config.fim_order == "spm"
    logits = model.forward(np.arange(8), model.new_cache())
    assert logits.shape == (8, model.config.vocab_size) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
