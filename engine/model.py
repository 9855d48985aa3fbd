"""Llama and Qwen2 decoders in numpy: the engine's one forward primitive.

``Transformer.forward(tokens, cache)`` runs ``T`` new tokens at positions
``cache.length .. cache.length + T - 1`` and appends their keys and values to the
cache. Prefill (T = prompt length), decode (T = 1), speculative verification
(T = K + 1) and scoring all go through it.

Numerics follow Hugging Face ``LlamaForCausalLM`` and ``Qwen2ForCausalLM`` (RMSNorm,
rotary embeddings with the ``rotate_half`` convention and HF's scaling types, see
engine/rope.py, grouped-query attention, SwiGLU, optional biases), so their published
checkpoints load and match: tests/engine/test_reference.py holds the engine to logits
recorded from transformers. Qwen2 is Llama with q/k/v biases (and an optional sliding
window, refused when enabled). Everything is float32.

Decode speed is dominated by the number of numpy calls, not by FLOPs (a call
costs ~3 µs; the tiny model's matrices are ~100 KB), so the layer is written to
minimise calls: fused q|k|v and gate|up projections, rotary applied to q and k
in one shot, the query heads of each kv head stacked into one matmul.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.kv_cache import KVCache
from engine.prefix_cache import PrefixCache
from engine.rope import RopeConfig, RopeTable
from engine.weights import load_checkpoint

# Query chunk for long prefills: bounds the attention score matrix to
# [H, chunk, S] floats instead of [H, T, S]; 256 measured fastest (cache-sized).
PREFILL_CHUNK = 256

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    model_type: str = "llama"
    rms_norm_eps: float = 1e-6
    rope: RopeConfig = RopeConfig()
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    # Which projections carry biases (HF: Llama's attention_bias covers q, k, v and o;
    # Qwen2 always has q/k/v biases and none on o; Llama's mlp_bias covers all three).
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()  # Llama 3 lists several; the first is the main one
    untrained: bool = False
    fim_order: str = "psm"  # "spm" (suffix-prefix-middle) or "psm"

    def __post_init__(self) -> None:
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(f"model_type {self.model_type!r} is not supported "
                             f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.head_dim % 2:
            raise ValueError("head_dim must be even for rotary embeddings")
        if self.fim_order not in ("spm", "psm"):
            raise ValueError(f"fim_order must be 'spm' or 'psm', got {self.fim_order!r}")

    @property
    def eos_token_id(self) -> int | None:
        return self.eos_token_ids[0] if self.eos_token_ids else None

    @classmethod
    def from_hf(cls, cfg: dict[str, Any]) -> ModelConfig:
        """Read a Hugging Face Llama or Qwen2 ``config.json`` dict, as published.

        Fields that do not change the numerics (``torch_dtype``/``dtype``,
        ``use_cache``, ``initializer_range``, ``transformers_version``…) are ignored;
        fields that would change them and are not implemented are refused by name.
        """
        model_type = cfg.get("model_type") or "llama"
        heads = cfg["num_attention_heads"]
        extra = cfg.get("sparkedit") or {}
        eos = cfg.get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, list) else (() if eos is None else (eos,))
        act = cfg.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError(f"hidden_act {act!r} is not supported (only silu)")
        if cfg.get("use_sliding_window"):  # Qwen2: only active when switched on
            raise ValueError("use_sliding_window: true is not supported (sliding-window "
                             "attention); published Qwen2.5 configs set it to false")
        if model_type == "qwen2":
            qkv_bias, o_bias, mlp_bias = True, False, False
        else:
            qkv_bias = o_bias = bool(cfg.get("attention_bias", False))
            mlp_bias = bool(cfg.get("mlp_bias", False))
        return cls(
            model_type=model_type,
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_hidden_layers=cfg["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=cfg.get("num_key_value_heads") or heads,
            head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
            rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
            rope=RopeConfig.from_hf(cfg),
            max_position_embeddings=cfg.get("max_position_embeddings", 2048),
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            qkv_bias=qkv_bias,
            o_bias=o_bias,
            mlp_bias=mlp_bias,
            bos_token_id=cfg.get("bos_token_id"),
            eos_token_ids=eos_ids,
            untrained=bool(extra.get("untrained", False)),
            fim_order=extra.get("fim_order", "psm"),
        )

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class LayerWeights:
    w_qkv: np.ndarray  # [D, (H + 2 KV) * hd]; input_layernorm and q scale folded in
    b_qkv: np.ndarray | None  # [(H + 2 KV) * hd]; q part scaled like w_qkv's q columns
    w_o: np.ndarray  # [H * hd, D]
    b_o: np.ndarray | None  # [D]
    w_gate_up: np.ndarray  # [D, 2 I]; post_attention_layernorm folded in
    b_gate_up: np.ndarray | None  # [2 I]
    w_down: np.ndarray  # [I, D]
    b_down: np.ndarray | None  # [D]


def _layer_weights(c: ModelConfig, w: dict[str, np.ndarray], i: int) -> LayerWeights:
    """One layer's tensors, fused and with the norm gains and q scale folded in."""
    f32 = np.float32
    p = f"model.layers.{i}."

    def get(name: str) -> np.ndarray:
        if p + name not in w:
            raise ValueError(f"checkpoint has no {p + name} (model_type {c.model_type})")
        return np.asarray(w[p + name], f32)

    def bias(names: list[str], on: bool) -> np.ndarray | None:
        return np.concatenate([get(n + ".bias") for n in names]) if on else None

    qkv_names = [f"self_attn.{n}_proj" for n in "qkv"]
    mlp_names = ["mlp.gate_proj", "mlp.up_proj"]
    q_width = c.num_attention_heads * c.head_dim
    q_scale = f32(1.0 / np.sqrt(c.head_dim))
    # Folded at load to save numpy calls per layer (linear, so exact up to rounding):
    # the RMSNorm gains scale the rows of the next projection, and the 1/sqrt(hd)
    # attention scale the q columns and the q bias (rotary is linear, and the bias is
    # added before rotary, so scaling q's weights and bias scales the rotated q).
    attn_norm = get("input_layernorm.weight")
    mlp_norm = get("post_attention_layernorm.weight")
    w_qkv = np.concatenate([get(n + ".weight") for n in qkv_names], 0).T * attn_norm[:, None]
    w_qkv[:, :q_width] *= q_scale  # [D, N_qkv]
    b_qkv = bias(qkv_names, c.qkv_bias)
    if b_qkv is not None:
        b_qkv[:q_width] *= q_scale
    w_gate_up = np.concatenate([get(n + ".weight") for n in mlp_names], 0).T * mlp_norm[:, None]
    return LayerWeights(
        w_qkv=np.ascontiguousarray(w_qkv),
        b_qkv=b_qkv,
        w_o=np.ascontiguousarray(get("self_attn.o_proj.weight").T),
        b_o=bias(["self_attn.o_proj"], c.o_bias),
        w_gate_up=np.ascontiguousarray(w_gate_up),
        b_gate_up=bias(mlp_names, c.mlp_bias),
        w_down=np.ascontiguousarray(get("mlp.down_proj.weight").T),
        b_down=bias(["mlp.down_proj"], c.mlp_bias),
    )


class Transformer:
    """The numpy backend (engine/backend.py): float32 weights, exact against transformers."""

    name = "numpy"
    weights = "f32"
    prefill_slice = PREFILL_CHUNK

    def __init__(self, config: ModelConfig, weights: dict[str, np.ndarray]) -> None:
        self.config = config
        c = config
        f32 = np.float32
        self.embed = np.ascontiguousarray(weights["model.embed_tokens.weight"], f32)  # [V, D]
        if self.embed.shape != (c.vocab_size, c.hidden_size):
            raise ValueError(f"embed_tokens {self.embed.shape} != config "
                             f"{(c.vocab_size, c.hidden_size)}")
        # The output head is kept [V, D] and applied as unembed @ h.T: for the 2-64 rows of
        # a verification pass OpenBLAS runs that layout about 1.4x faster than h @ [D, V].
        if c.tie_word_embeddings:  # HF ignores a stored lm_head.weight when tied
            self.unembed = self.embed  # [V, D], no copy
        elif "lm_head.weight" in weights:
            self.unembed = np.ascontiguousarray(weights["lm_head.weight"], f32)  # [V, D]
        else:
            raise ValueError("tie_word_embeddings is false but the checkpoint has no "
                             "lm_head.weight")
        self.final_norm = np.asarray(weights["model.norm.weight"], f32)  # [D]
        self.layers = [_layer_weights(c, weights, i) for i in range(c.num_hidden_layers)]
        n_qkv = (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim
        expect_qkv = (c.hidden_size, n_qkv)
        if self.layers and self.layers[0].w_qkv.shape != expect_qkv:
            raise ValueError(f"q/k/v weights {self.layers[0].w_qkv.shape} != config {expect_qkv}")
        self.rope = RopeTable(c.rope.inv_freq(c.head_dim), c.max_position_embeddings)
        self.rope.get(0, 1)  # build the first block now, not inside the first request

    @property
    def context_limit(self) -> int:
        return self.config.max_position_embeddings

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def untrained(self) -> bool:
        return self.config.untrained

    @property
    def fim_order(self) -> str:
        return self.config.fim_order

    @property
    def kv_bytes_per_token(self) -> int:
        return KVCache(self.config).bytes_per_token

    @property
    def weights_bytes(self) -> int:
        arrays = [self.embed, self.final_norm]
        if self.unembed is not self.embed:
            arrays.append(self.unembed)
        for lw in self.layers:
            arrays.extend(a for a in vars(lw).values() if a is not None)
        return int(sum(a.nbytes for a in arrays))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "weights": self.weights,
                "weights_bytes": self.weights_bytes}

    def new_cache(self) -> KVCache:
        return KVCache(self.config)

    def new_prefix_store(self, max_bytes: int) -> PrefixCache:
        return PrefixCache(max_bytes=max_bytes)

    def forward(
        self, tokens: np.ndarray | list[int], cache: KVCache, *, last_n: int | None = None
    ) -> np.ndarray:
        """Run tokens [T] at positions cache.length.. and append them to the cache.

        Returns logits [T, V] float32, or only the last ``last_n`` rows when given
        (a long prefill needs at most the last row; [T, V] for T = 128k would be GBs).
        """
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)  # [T]
        n = tokens.shape[0]
        if n == 0:
            raise ValueError("forward() needs at least one token")
        keep = n if last_n is None else min(last_n, n)
        out: list[np.ndarray] = []
        # Long inputs are processed in query chunks; each chunk is an ordinary
        # forward at the cache's current length, so results are identical.
        for s in range(0, n, PREFILL_CHUNK):
            chunk = tokens[s : s + PREFILL_CHUNK]
            want = min(chunk.shape[0], keep - (n - s - chunk.shape[0]))
            h = self._hidden(chunk, cache)  # [t, D]
            if want > 0:
                out.append(self._logits(h[-want:]))
        if not out:
            return np.empty((0, self.config.vocab_size), np.float32)
        return out[0] if len(out) == 1 else np.concatenate(out, 0)

    def _logits(self, h: np.ndarray) -> np.ndarray:
        x = _rms_norm(h, self.config.rms_norm_eps) * self.final_norm  # [t, D]
        return np.ascontiguousarray((self.unembed @ x.T).T)  # [t, V]

    def _hidden(self, tokens: np.ndarray, cache: KVCache) -> np.ndarray:
        """Final hidden states [T, D] (before the final norm) for one chunk."""
        c = self.config
        t = tokens.shape[0]
        start = cache.length
        cache.reserve(t)
        cos, sin = self.rope.get(start, start + t)  # [T, 1, hd]
        mask = None
        if t > 1:
            # Query i (position start+i) sees keys 0..start+i.
            key_pos = np.arange(start + t)  # [S]
            query_pos = np.arange(start, start + t)[:, None]  # [T, 1]
            mask = np.where(key_pos > query_pos, -np.inf, 0.0).astype(np.float32)  # [T, S]
        x = self.embed[tokens]  # [T, D]
        for i, lw in enumerate(self.layers):
            x = x + self._attention(i, lw, _rms_norm(x, c.rms_norm_eps), cache, cos, sin, mask)
            x = x + self._mlp(lw, _rms_norm(x, c.rms_norm_eps))
        cache.advance(t)
        return x

    def _attention(
        self,
        layer: int,
        lw: LayerWeights,
        x: np.ndarray,  # [T, D]
        cache: KVCache,
        cos: np.ndarray,  # [T, 1, hd]
        sin: np.ndarray,  # [T, 1, hd]
        mask: np.ndarray | None,  # [T, S]
    ) -> np.ndarray:
        c = self.config
        t = x.shape[0]
        h, kv, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        g = h // kv
        qkv = x @ lw.w_qkv  # [T, (H + 2KV) * hd]
        if lw.b_qkv is not None:
            qkv += lw.b_qkv
        qkv = qkv.reshape(t, h + 2 * kv, hd)
        # Rotary on q and k together: x*cos2 + [x2, x1]*sin2 (see RopeTable).
        qk = qkv[:, : h + kv]  # [T, H + KV, hd]
        swapped = np.concatenate((qk[..., hd // 2 :], qk[..., : hd // 2]), axis=-1)
        qk = qk * cos
        swapped *= sin
        qk += swapped
        q = qk[:, :h]  # [T, H, hd], already scaled by 1/sqrt(hd) (folded into w_qkv)
        keys, values = cache.update(layer, qk[:, h:], qkv[:, h + kv :])  # [KV,hd,S], [KV,S,hd]
        # Query heads sharing a kv head (HF repeat_kv: head j*G+r uses kv head j)
        # are stacked so one batched matmul over KV covers all of them.
        q = q.reshape(t, kv, g, hd).transpose(1, 2, 0, 3).reshape(kv, g * t, hd)  # [KV, G*T, hd]
        scores = q @ keys  # [KV, G*T, S]
        if mask is not None:
            s = scores.shape[-1]
            scores = scores.reshape(kv, g, t, s)
            scores += mask
            scores = scores.reshape(kv, g * t, s)
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        out = scores @ values  # [KV, G*T, hd]
        out = out.reshape(kv, g, t, hd).transpose(2, 0, 1, 3).reshape(t, h * hd)  # [T, H*hd]
        out = out @ lw.w_o  # [T, D]
        if lw.b_o is not None:
            out += lw.b_o
        return out

    def _mlp(self, lw: LayerWeights, x: np.ndarray) -> np.ndarray:
        gu = x @ lw.w_gate_up  # [T, 2I]
        if lw.b_gate_up is not None:
            gu += lw.b_gate_up
        inter = gu.shape[-1] // 2
        gate, up = gu[:, :inter], gu[:, inter:]
        # silu(g) = g * sigmoid(g), sigmoid via tanh: no overflow warnings for large |g|.
        act = gate * (0.5 + 0.5 * np.tanh(0.5 * gate)) * up  # [T, I]
        out = act @ lw.w_down  # [T, D]
        if lw.b_down is not None:
            out += lw.b_down
        return out


def _rms_norm(x: np.ndarray, eps: float) -> np.ndarray:
    """HF LlamaRMSNorm without its gain: x * rsqrt(mean(x^2) + eps), float32.

    x: [T, D] -> [T, D]. The gain is folded into the next projection.
    """
    ms = np.einsum("td,td->t", x, x)  # [T]
    ms *= np.float32(1.0 / x.shape[-1])
    ms += np.float32(eps)
    np.sqrt(ms, out=ms)
    return x / ms[:, None]


def load_config(model_dir: str | Path) -> ModelConfig:
    return ModelConfig.from_hf(json.loads((Path(model_dir) / "config.json").read_text()))


def load_model(model_dir: str | Path) -> Transformer:
    """Load a Hugging Face Llama or Qwen2 folder (config.json + safetensors, one file or
    shards)."""
    return Transformer(load_config(model_dir), load_checkpoint(model_dir))
