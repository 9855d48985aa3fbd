"""Rotary position embeddings as Hugging Face transformers computes them.

``RopeConfig.from_hf`` reads both spellings a ``config.json`` may use: the
transformers 4.x ``rope_theta`` + ``rope_scaling`` (``type`` or ``rope_type``) and
the 5.x ``rope_parameters`` dict that holds ``rope_theta`` itself. ``inv_freq``
follows ``_compute_default_rope_parameters``, ``_compute_linear_scaling_rope_parameters``
and ``_compute_llama3_parameters`` operation by operation in float32, and the table
takes ``position * inv_freq`` in float32 as the HF rotary module does: at position
100k a float32 angle is off by up to ~0.01 rad, and the checkpoints were trained
with exactly that error, so reproducing it is what "matching" means here.

Other scaling types are refused by name rather than silently ignored: a model run
with the wrong frequencies still produces fluent-looking garbage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")
_WHY_NOT = {
    "dynamic": "it recomputes the frequencies from the current sequence length, which "
    "keys already in a KV cache cannot follow",
}


@dataclass(frozen=True, kw_only=True)
class RopeConfig:
    rope_type: str = "default"
    theta: float = 10000.0
    factor: float = 1.0
    # llama3 only: the wavelength band (in positions of the original context) that
    # is interpolated between unscaled and scaled frequencies.
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int | None = None

    def __post_init__(self) -> None:
        if self.rope_type not in SUPPORTED_ROPE_TYPES:
            why = _WHY_NOT.get(self.rope_type, "it is not implemented")
            raise ValueError(
                f"rope scaling type {self.rope_type!r} is not supported ({why}); "
                f"supported: {', '.join(SUPPORTED_ROPE_TYPES)}"
            )
        if self.theta <= 0:
            raise ValueError(f"rope_theta must be positive, got {self.theta}")
        if self.rope_type != "default" and self.factor < 1.0:
            raise ValueError(f"rope scaling factor must be >= 1, got {self.factor}")
        if self.rope_type == "llama3" and self.high_freq_factor <= self.low_freq_factor:
            raise ValueError("llama3 rope scaling needs high_freq_factor > low_freq_factor")

    @classmethod
    def from_hf(cls, cfg: dict[str, Any]) -> RopeConfig:
        """The rotary settings of a HF config dict (4.x or 5.x layout)."""
        params = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
        if not isinstance(params, dict):
            raise ValueError(f"rope_scaling must be an object or null, got {params!r}")
        if any(isinstance(v, dict) for v in params.values()):
            raise ValueError("per-layer-type rope parameters are not supported")
        rope_type = params.get("rope_type", params.get("type")) or "default"
        theta = params.get("rope_theta", cfg.get("rope_theta")) or 10000.0
        partial = params.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0))
        if partial not in (None, 1, 1.0):
            raise ValueError(f"partial_rotary_factor {partial} is not supported (only 1.0)")
        if rope_type == "default":
            return cls(theta=float(theta))
        if "factor" not in params:
            raise ValueError(f"rope scaling {rope_type!r} needs a 'factor'")
        original = params.get("original_max_position_embeddings")
        if rope_type == "llama3" and original is None:
            original = cfg.get("max_position_embeddings")  # as HF's standardize_rope_params
        return cls(
            rope_type=rope_type,
            theta=float(theta),
            factor=float(params["factor"]),
            low_freq_factor=float(params.get("low_freq_factor", 1.0)),
            high_freq_factor=float(params.get("high_freq_factor", 4.0)),
            original_max_position_embeddings=None if original is None else int(original),
        )

    def inv_freq(self, head_dim: int) -> np.ndarray:
        """Inverse frequencies [hd/2] float32, as transformers computes them."""
        f32 = np.float32
        # HF: 1.0 / (base ** (arange(0, dim, 2, dtype=int64).float() / dim)), all float32.
        exponent = np.arange(0, head_dim, 2, dtype=np.int64).astype(f32) / f32(head_dim)
        # The power is taken in float64 and rounded: numpy's float32 power is up to
        # 2 ulps off torch's, the rounded float64 one matched it bit for bit on every
        # theta/head_dim measured except one (1 ulp; tests/data/reference).
        power = (np.float64(f32(self.theta)) ** exponent.astype(np.float64)).astype(f32)
        inv = f32(1.0) / power  # [hd/2]
        if self.rope_type == "linear":
            inv = inv / f32(self.factor)
        elif self.rope_type == "llama3":
            inv = self._llama3(inv)
        assert inv.dtype == np.float32
        return inv

    def _llama3(self, inv: np.ndarray) -> np.ndarray:
        """HF ``_compute_llama3_parameters``: long wavelengths divided by ``factor``,
        short ones kept, the band between blended; same operation order, float32."""
        f32 = np.float32
        assert self.original_max_position_embeddings is not None
        old = self.original_max_position_embeddings
        factor, low, high = self.factor, self.low_freq_factor, self.high_freq_factor
        low_wavelen = old / low  # Python floats, as in HF
        high_wavelen = old / high
        wavelen = f32(2 * math.pi) / inv  # [hd/2]
        scaled = np.where(wavelen > f32(low_wavelen), inv / f32(factor), inv)
        smooth = (f32(old) / wavelen - f32(low)) / f32(high - low)
        smoothed = (f32(1) - smooth) * scaled / f32(factor) + smooth * scaled
        medium = ~(wavelen < f32(high_wavelen)) & ~(wavelen > f32(low_wavelen))
        return np.where(medium, smoothed, scaled).astype(f32)


class RopeTable:
    """cos/sin of position * inv_freq, grown on demand in blocks.

    Stored full width for HF's rotate_half form, ``x*cos + rotate_half(x)*sin``
    with ``rotate_half(x) = [-x2, x1]``: ``cos2 = [cos, cos]`` and the sign folded
    into ``sin2 = [-sin, sin]``, so applying it is one concatenate and three
    elementwise calls. A full 128k-position table would cost 32 MB for a model that
    usually sees a few thousand positions, so it grows geometrically.
    """

    def __init__(self, inv_freq: np.ndarray, max_positions: int, block: int = 4096) -> None:
        self.inv_freq = np.asarray(inv_freq, np.float32)  # [hd/2]
        head_dim = 2 * self.inv_freq.shape[0]
        self.max_positions = max_positions
        self.block = block
        self.cos2 = np.zeros((0, head_dim), np.float32)  # [P, hd]
        self.sin2 = np.zeros((0, head_dim), np.float32)  # [P, hd]

    def get(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """cos2, sin2 for positions start..end-1: each [T, 1, hd]."""
        if end > self.cos2.shape[0]:
            n = max(end, 2 * self.cos2.shape[0])
            n = min(-(-n // self.block) * self.block, max(self.max_positions, end))
            cos, sin = rope_cos_sin(self.inv_freq, np.arange(n))  # [P, hd/2]
            self.cos2 = np.concatenate((cos, cos), -1)
            self.sin2 = np.concatenate((-sin, sin), -1)
        return self.cos2[start:end, None, :], self.sin2[start:end, None, :]


def rope_cos_sin(inv_freq: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [P, hd/2] float32 of float32 angles ``position * inv_freq``.

    The angle is rounded to float32 like HF's; cos/sin are then taken in float64 and
    rounded, which is within an ulp of torch's float32 cos/sin.
    """
    angles = positions.astype(np.float32)[:, None] * np.asarray(inv_freq, np.float32)  # [P, hd/2]
    angles = angles.astype(np.float64)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
