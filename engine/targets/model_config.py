"""A production model's shape from its Hugging Face ``config.json``: what the wafer model counts.

Reads the fields as each family publishes them -- Llama / Mistral / Qwen2 / Qwen3 (dense),
Qwen2-MoE / Qwen3-MoE / Mixtral, gpt-oss, Llama 4 (``text_config`` nesting,
``interleave_moe_layer_step``, chunked attention), GLM (ChatGLM's ``num_layers`` /
``ffn_hidden_size`` / ``multi_query_group_num`` / ``kv_channels`` / ``padded_vocab_size``, and
GLM-4.5's DeepSeek-style ``n_routed_experts`` / ``first_k_dense_replace``), DeepSeek-V3 and
Kimi K2 (multi-head latent attention: ``q_lora_rank``, ``kv_lora_rank``, one cached latent
vector a token and layer) -- into one
``ModelShape``, then counts parameters, weight bytes and KV-cache bytes from it.

Counting conventions: every FFN is gated (three matrices: gate, up, down), as in all these
families; biases and norms are left out (under 0.01% of any model here). *Active* parameters are
those a token multiplies by: attention, the routed experts it is sent to, shared experts,
routers and the output head -- not the input embedding, which is a lookup. A config missing a
needed field raises ``ConfigError`` naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

KV_BYTES = 2  # the KV cache is kept in 16 bits whatever the weights' precision
MXFP4_BITS = 4.25  # 4-bit elements plus one 8-bit scale per 32-element block

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "mixtral",
            "gpt_oss", "llama4", "llama4_text", "chatglm", "glm", "glm4", "glm4_moe",
            "deepseek_v3", "kimi_k2")
_ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                  "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3",
                  "Qwen2MoeForCausalLM": "qwen2_moe", "Qwen3MoeForCausalLM": "qwen3_moe",
                  "MixtralForCausalLM": "mixtral", "GptOssForCausalLM": "gpt_oss",
                  "Llama4ForConditionalGeneration": "llama4", "Llama4ForCausalLM": "llama4_text",
                  "ChatGLMModel": "chatglm", "ChatGLMForConditionalGeneration": "chatglm",
                  "Glm4ForCausalLM": "glm4", "Glm4MoeForCausalLM": "glm4_moe",
                  "DeepseekV3ForCausalLM": "deepseek_v3"}
_DTYPE_BITS = {"bfloat16": 16, "float16": 16, "half": 16, "float32": 32, "float": 32,
               "float8_e4m3fn": 8, "float8_e5m2": 8}


class ConfigError(ValueError):
    """The config cannot be simulated; the message names the field (or the model type)."""


@dataclass(frozen=True, kw_only=True)
class Experts:
    count: int
    per_token: int
    intermediate: int  # one routed expert's FFN width
    shared_intermediate: int = 0  # total width of the always-on shared expert(s)


@dataclass(frozen=True, kw_only=True)
class LatentAttention:
    """Multi-head latent attention (DeepSeek-V3, Kimi K2): keys and values are rebuilt from
    one cached latent vector of ``kv_rank`` plus a shared rotary key of ``rope_dim``."""

    q_rank: int  # 0: queries straight from the hidden state
    kv_rank: int
    nope_dim: int
    rope_dim: int
    v_dim: int


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """One decoder-only transformer, layer by layer."""

    name: str
    family: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    dense_intermediate: int  # FFN width of the dense layers (0 when every layer is MoE)
    experts: Experts | None
    moe_layers: tuple[bool, ...]  # [num_layers]: layer i routes to experts
    windows: tuple[int | None, ...]  # [num_layers]: tokens a layer attends to; None = all
    weight_bits: float  # embeddings, attention, routers
    linear_bits: float  # dense and shared-expert FFNs
    expert_bits: float  # routed experts
    latent: LatentAttention | None = None

    # -- parameters

    @property
    def attention_params(self) -> int:
        if self.latent is not None:
            a, heads, hidden = self.latent, self.num_heads, self.hidden_size
            qk = a.nope_dim + a.rope_dim
            q = (hidden * a.q_rank + a.q_rank * heads * qk) if a.q_rank else hidden * heads * qk
            kv = hidden * (a.kv_rank + a.rope_dim) + a.kv_rank * heads * (a.nope_dim + a.v_dim)
            return q + kv + heads * a.v_dim * hidden
        q = self.num_heads * self.head_dim
        kv = self.num_kv_heads * self.head_dim
        return self.hidden_size * (2 * q + 2 * kv)  # q, o; k, v

    def _ffn(self, width: int) -> int:
        return 3 * self.hidden_size * width

    def layer_params(self, i: int, *, active: bool) -> int:
        """Parameters of layer i; with ``active`` only those one token uses."""
        ffn = self._ffn(self.dense_intermediate)
        if self.moe_layers[i]:
            e = self.experts
            assert e is not None
            routed = e.per_token if active else e.count
            ffn = (routed * self._ffn(e.intermediate) + self._ffn(e.shared_intermediate)
                   + self.hidden_size * e.count)  # the router
        return self.attention_params + ffn

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def total_params(self) -> int:
        heads = 1 if self.tie_word_embeddings else 2
        return (heads * self.embedding_params
                + sum(self.layer_params(i, active=False) for i in range(self.num_layers)))

    @property
    def active_params(self) -> int:
        return self.embedding_params + sum(self.layer_params(i, active=True)
                                           for i in range(self.num_layers))

    # -- bytes

    @property
    def weight_bytes(self) -> float:
        heads = 1 if self.tie_word_embeddings else 2
        bits = heads * self.embedding_params * self.weight_bits
        for i in range(self.num_layers):
            bits += self.attention_params * self.weight_bits
            if not self.moe_layers[i]:
                bits += self._ffn(self.dense_intermediate) * self.linear_bits
                continue
            e = self.experts
            assert e is not None
            bits += e.count * self._ffn(e.intermediate) * self.expert_bits
            bits += self._ffn(e.shared_intermediate) * self.linear_bits
            bits += self.hidden_size * e.count * self.weight_bits
        return bits / 8

    @property
    def kv_bytes_per_layer_token(self) -> int:
        if self.latent is not None:  # one latent vector and one rotary key
            return (self.latent.kv_rank + self.latent.rope_dim) * KV_BYTES
        return 2 * self.num_kv_heads * self.head_dim * KV_BYTES  # keys and values

    def attended(self, i: int, context_tokens: int) -> int:
        """Tokens layer i keeps (and reads) at this context: a window caps it."""
        window = self.windows[i]
        return context_tokens if window is None else min(context_tokens, window)

    def kv_bytes_per_sequence(self, context_tokens: int) -> int:
        return self.kv_bytes_per_layer_token * sum(
            self.attended(i, context_tokens) for i in range(self.num_layers))

    def kv_bytes_per_token(self, context_tokens: int) -> int:
        """Cache bytes per token of context, averaged over a sequence of this length: exactly
        layers x kv heads x head_dim x 2 x 2 bytes when no layer has a window."""
        return math.ceil(self.kv_bytes_per_sequence(context_tokens) / max(1, context_tokens))


# ---------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Fields:
    """Lookup by any of a field's published names; a miss names the first one."""

    raw: Mapping[str, Any]

    def get(self, *names: str, default: Any = None) -> Any:
        for name in names:
            if self.raw.get(name) is not None:
                return self.raw[name]
        return default

    def need(self, *names: str) -> Any:
        value = self.get(*names)
        if value is None:
            alt = f" (or {', '.join(repr(n) for n in names[1:])})" if names[1:] else ""
            raise ConfigError(f"config.json lacks {names[0]!r}{alt}")
        return value

    def count(self, *names: str, default: int | None = None) -> int:
        value = self.need(*names) if default is None else self.get(*names, default=default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
                or int(value) != value:
            raise ConfigError(f"config.json: {names[0]!r} must be a non-negative integer, "
                              f"got {value!r}")
        return int(value)


def _family(cfg: Mapping[str, Any]) -> str:
    family = cfg.get("model_type")
    if family is None:
        archs = cfg.get("architectures") or []
        family = next((_ARCHITECTURES[a] for a in archs if a in _ARCHITECTURES), None)
    if family is None:
        raise ConfigError("config.json lacks 'model_type' (or a known 'architectures' entry)")
    if family not in FAMILIES:
        raise ConfigError(f"model_type {family!r} is not supported (supported: "
                          f"{', '.join(FAMILIES)})")
    return str(family)


def _bits(f: _Fields, outer: Mapping[str, Any]) -> tuple[float, float, float]:
    """(weights, dense linear layers, routed experts) in bits: 16 unless the config says."""
    dtype = f.get("torch_dtype", "dtype") or outer.get("torch_dtype") or outer.get("dtype")
    base = float(_DTYPE_BITS.get(str(dtype), 16))
    quant = f.get("quantization_config") or outer.get("quantization_config") or {}
    method = str(quant.get("quant_method", "")).lower()
    if method == "mxfp4":  # gpt-oss: only the experts; attention, router and embeddings stay
        return base, base, MXFP4_BITS
    if method == "fp8":  # linear layers in 8 bits; embeddings and the head stay
        return base, 8.0, 8.0
    if isinstance(quant.get("bits"), int | float):  # GPTQ, AWQ and the like
        return base, float(quant["bits"]), float(quant["bits"])
    return base, base, base


def _windows(f: _Fields, family: str, n: int) -> tuple[int | None, ...]:
    types = f.get("layer_types")
    if types is not None:
        if len(types) != n:
            raise ConfigError(f"config.json: 'layer_types' has {len(types)} entries for "
                              f"{n} layers")
        sizes = {"sliding_attention": lambda: f.count("sliding_window"),
                 "chunked_attention": lambda: f.count("attention_chunk_size")}
        return tuple(sizes[t]() if t in sizes else None for t in types)
    if family in ("llama4", "llama4_text") and f.get("attention_chunk_size"):
        # Llama 4: layers that use rotary embeddings attend within a chunk; every 4th is global.
        rope = f.get("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(n)]
        if len(rope) != n:
            raise ConfigError(f"config.json: 'no_rope_layers' has {len(rope)} entries for "
                              f"{n} layers")
        chunk = f.count("attention_chunk_size")
        return tuple(chunk if rope[i] else None for i in range(n))
    window = f.get("sliding_window")
    if window is None or f.get("use_sliding_window") is False:
        return (None,) * n
    first = f.count("max_window_layers", default=0) if family.startswith("qwen") else 0
    return tuple(int(window) if i >= first else None for i in range(n))


def _experts(f: _Fields, family: str, n: int) -> tuple[Experts | None, tuple[bool, ...]]:
    count = f.count("num_experts", "num_local_experts", "n_routed_experts", default=0)
    if count == 0:
        return None, (False,) * n
    per_token = f.count("num_experts_per_tok", "experts_per_token")
    width = f.count("moe_intermediate_size", "intermediate_size")
    shared = f.count("shared_expert_intermediate_size", default=0)
    if f.get("n_shared_experts"):
        shared = f.count("n_shared_experts") * width
    if family in ("llama4", "llama4_text"):
        shared = width  # one shared expert as wide as a routed one
    if not 1 <= per_token <= count:
        raise ConfigError(f"config.json: num_experts_per_tok ({per_token}) must be between 1 "
                          f"and the number of experts ({count})")
    if width == 0:
        raise ConfigError("config.json: 'moe_intermediate_size' must be positive")
    experts = Experts(count=count, per_token=per_token, intermediate=width,
                      shared_intermediate=shared)
    if f.get("moe_layers") is not None:
        listed = set(f.get("moe_layers"))
        return experts, tuple(i in listed for i in range(n))
    step = f.count("interleave_moe_layer_step", "decoder_sparse_step", default=1)
    dense = set(f.get("mlp_only_layers") or ()) | set(
        range(f.count("first_k_dense_replace", default=0)))
    return experts, tuple(i not in dense and (i + 1) % max(step, 1) == 0 for i in range(n))


def parse_config(config: Mapping[str, Any], name: str = "") -> ModelShape:
    """A ``ModelShape`` from a Hugging Face config.json dict; ConfigError names what is
    missing or unsupported."""
    if not isinstance(config, Mapping):
        raise ConfigError("config.json must be a JSON object")
    outer = config
    if isinstance(config.get("text_config"), Mapping):  # Llama 4 and other multimodal configs
        config = {**config["text_config"],
                  "model_type": config["text_config"].get("model_type", config.get("model_type"))}
    family = _family(config)
    f = _Fields(config)
    n = _positive(f, *(("num_layers", "num_hidden_layers") if "num_layers" in config
                       else ("num_hidden_layers", "num_layers")))
    hidden = _positive(f, "hidden_size")
    heads = _positive(f, "num_attention_heads")
    kv_heads = heads  # Hugging Face's default when a config leaves it out
    if family in ("chatglm", "glm") and f.get("multi_query_attention"):
        kv_heads = f.count("multi_query_group_num")
    elif f.get("num_key_value_heads") is not None:
        kv_heads = f.count("num_key_value_heads")
    if kv_heads == 0 or heads % kv_heads:
        raise ConfigError(f"config.json: num_attention_heads ({heads}) must be a positive "
                          f"multiple of num_key_value_heads ({kv_heads})")
    head_dim = f.count("head_dim", "kv_channels", default=hidden // heads)
    if head_dim == 0:
        raise ConfigError("config.json: head_dim must be positive")
    latent = _latent(f) if family in ("deepseek_v3", "kimi_k2") else None
    if latent is not None:
        head_dim = latent.nope_dim + latent.rope_dim
    experts, moe_layers = _experts(f, family, n)
    dense_names = ("intermediate_size_mlp", "intermediate_size") if family.startswith(
        "llama4") else ("intermediate_size", "ffn_hidden_size")
    dense = f.count(*dense_names) if not all(moe_layers) else 0
    if dense == 0 and not all(moe_layers):
        raise ConfigError(f"config.json: {dense_names[0]!r} must be positive")
    weight_bits, linear_bits, expert_bits = _bits(f, outer)
    return ModelShape(
        name=name or str(outer.get("_name_or_path") or family),
        family=family, num_layers=n, hidden_size=hidden, num_heads=heads,
        num_kv_heads=kv_heads, head_dim=head_dim,
        vocab_size=_positive(f, "vocab_size", "padded_vocab_size"),
        tie_word_embeddings=bool(f.get("tie_word_embeddings", default=False)),
        dense_intermediate=dense, experts=experts, moe_layers=moe_layers,
        windows=_windows(f, family, n),
        weight_bits=weight_bits, linear_bits=linear_bits, expert_bits=expert_bits,
        latent=latent)


def _positive(f: _Fields, *names: str) -> int:
    value = f.count(*names)
    if value == 0:
        raise ConfigError(f"config.json: {names[0]!r} must be positive")
    return value


def _latent(f: _Fields) -> LatentAttention:
    return LatentAttention(q_rank=f.count("q_lora_rank", default=0),
                           kv_rank=f.count("kv_lora_rank"), nope_dim=f.count("qk_nope_head_dim"),
                           rope_dim=f.count("qk_rope_head_dim"), v_dim=f.count("v_head_dim"))


# ---------------------------------------------------------------------------- presets


def _data() -> Any:
    return resources.files("engine.targets") / "data"


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in (_data() / "presets").iterdir()
                  if p.name.endswith(".json"))


def preset_config(name: str) -> dict[str, Any]:
    """The preset's config.json dict; KeyError (naming the choices) for an unknown name."""
    if name not in preset_names():
        raise KeyError(f"unknown preset {name!r} (presets: {', '.join(preset_names())})")
    return json.loads((_data() / "presets" / f"{name}.json").read_text(encoding="utf-8"))


def load_preset(name: str) -> ModelShape:
    return parse_config(preset_config(name), name=name)
