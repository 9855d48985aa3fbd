"""How fast a production model would decode on Cerebras WSE-3 wafers: a small timing model.

What the hardware says. A wafer holds its share of the weights in SRAM next to the cores, and
a model is laid out as a pipeline: each layer owns a region of cores (more cores for a wider
layer), as many wafers as the weights need are chained, and one token crosses every layer in
turn. Reading the weights is not what costs: 70B 16-bit weights over four wafers are read in
under 2 µs at 21 PB/s, yet a token takes 0.4-2 ms. A wider layer is spread over more cores, so
its time hardly grows with its width; what a token pays is a stage's latency per layer it
crosses (its partial sums reduced across the region, the activation handed on), the host's
round trip per token (sampling, the output head, the stream to the user), the links between
wafers, and, at long contexts, reading each layer's KV cache:

    t_pass = fixed_s + sum over layers of (layer_s + the layer's KV bytes / its share of
             SRAM bandwidth) + (wafers - 1) x (hop_s + one hidden vector over a system link)

Speculative decoding is an input, never a fitted constant: a pass that verifies and yields A
tokens costs ``t_pass x (1 + verify_overhead x (A - 1))``. ``layer_s``, ``fixed_s`` and
``hop_s`` are fitted to published speeds by engine/targets/wafer_calibration.py, which keeps a
constant only when it predicts rows left out of the fit better than the one-constant baseline
(``layer_s`` alone); the other constants are documented assumptions. Prefill is compute:
2 x active params per token plus attention, over the wafers' FLOP rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.targets.model_config import ModelShape


@dataclass(frozen=True, kw_only=True)
class Wafer:
    """WSE-3 facts (the vendor's) and the share of SRAM that can hold weights and KV."""

    sram_bytes: float = 44e9
    sram_bandwidth_bytes_per_s: float = 21e15
    peak_fp16_flops: float = 125e15
    system_io_bytes_per_s: float = 150e9
    # Activations, routing code and I/O buffers take the rest. Any share in 0.80-1.0 puts
    # Llama 3.1 70B (141 GB at 16 bits) on the 4 wafers Cerebras announced for it.
    usable_fraction: float = 0.85
    # The largest published CS-3 cluster (Condor Galaxy 3) has 64 systems.
    max_wafers: int = 64

    @property
    def usable_bytes(self) -> float:
        return self.sram_bytes * self.usable_fraction


@dataclass(frozen=True, kw_only=True)
class TimingConstants:
    """The first three are fitted (wafer_calibration.fit reproduces them; README has the
    leave-one-out figures); the rest are assumptions no published figure pins down."""

    layer_s: float = 6.1420e-06  # one pipeline stage (one layer) per token
    fixed_s: float = 1.8236e-04  # per token: host round trip, sampling, output head
    hop_s: float = 0.0  # per wafer boundary beyond the transfer (fitted to 0: see README)
    verify_overhead: float = 0.1  # extra pass time per extra accepted token
    prefill_utilization: float = 0.3  # share of peak FLOP/s a long prefill reaches
    kv_read_share: float = 0.25  # share of a layer's SRAM bandwidth attention gets


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One model at one context; times in seconds, sizes in bytes."""

    model: str
    context_tokens: int
    output_tokens: int
    accepted_per_pass: float
    total_params: int
    active_params: int
    weight_bytes: float
    wafers: int
    wafers_with_kv: int  # wafers that would hold the weights and one sequence's cache
    usable_bytes_per_wafer: float
    kv_bytes_per_token: int
    kv_bytes_per_sequence: int
    fits: bool
    max_concurrent_sequences: int
    token_s: float  # one token through the pipeline, without speculation
    pass_s: float  # one verification pass of accepted_per_pass tokens
    decode_tokens_per_s: float
    prefill_s: float
    ttft_s: float
    total_s: float  # time to first token plus the rest of output_tokens
    constants: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class WaferModel:
    wafer: Wafer = Wafer()
    constants: TimingConstants = TimingConstants()

    # -- capacity

    def wafers(self, shape: ModelShape) -> int:
        return max(1, math.ceil(shape.weight_bytes / self.wafer.usable_bytes))

    def kv_room(self, shape: ModelShape) -> float:
        """SRAM left for KV caches once the weights are placed."""
        return self.wafers(shape) * self.wafer.usable_bytes - shape.weight_bytes

    # -- decode

    def layer_s(self, shape: ModelShape, i: int, context_tokens: int) -> float:
        c = self.constants
        # Each layer owns about 1/layers of the wafers' cores, and so of their bandwidth.
        bandwidth = (self.wafers(shape) * self.wafer.sram_bandwidth_bytes_per_s
                     / shape.num_layers * c.kv_read_share)
        kv = shape.attended(i, context_tokens) * shape.kv_bytes_per_layer_token
        return c.layer_s + kv / bandwidth

    def hop_s(self, shape: ModelShape) -> float:
        return self.constants.hop_s + 2 * shape.hidden_size / self.wafer.system_io_bytes_per_s

    def token_s(self, shape: ModelShape, context_tokens: int) -> float:
        layers = sum(self.layer_s(shape, i, context_tokens) for i in range(shape.num_layers))
        return layers + (self.wafers(shape) - 1) * self.hop_s(shape) + self.constants.fixed_s

    def pass_s(self, token_s: float, accepted: float) -> float:
        """A verification pass that yields ``accepted`` tokens."""
        return token_s * (1 + self.constants.verify_overhead * (accepted - 1))

    def decode_tokens_per_s(self, shape: ModelShape, context_tokens: int,
                            accepted_per_pass: float = 1.0) -> float:
        token = self.token_s(shape, context_tokens)
        return accepted_per_pass / self.pass_s(token, accepted_per_pass)

    # -- prefill

    def prefill_s(self, shape: ModelShape, new_tokens: int, cached_tokens: int = 0) -> float:
        """Compute for ``new_tokens`` prompt tokens after ``cached_tokens`` already cached."""
        q_width = shape.num_heads * shape.head_dim
        attention = 0.0
        for i in range(shape.num_layers):
            # Token j attends to min(cached + j + 1, window) keys: QK^T and PV, 2 FLOPs a MAC.
            total = _attended_sum(shape.windows[i], cached_tokens, new_tokens)
            attention += 4 * q_width * total
        flops = 2 * shape.active_params * new_tokens + attention
        rate = (self.wafers(shape) * self.wafer.peak_fp16_flops
                * self.constants.prefill_utilization)
        return flops / rate

    # -- all together

    def predict(self, shape: ModelShape, *, context_tokens: int, output_tokens: int = 1,
                accepted_per_pass: float = 1.0) -> Prediction:
        """``context_tokens`` is the prompt (prefilled cold); decoding runs at that context."""
        if context_tokens < 1 or output_tokens < 0 or accepted_per_pass < 1:
            raise ValueError("context_tokens >= 1, output_tokens >= 0, accepted_per_pass >= 1")
        token = self.token_s(shape, context_tokens)
        pass_ = self.pass_s(token, accepted_per_pass)
        rate = accepted_per_pass / pass_
        prefill = self.prefill_s(shape, context_tokens)
        ttft = prefill + token  # the last prompt token's pass yields the first output token
        kv_seq = shape.kv_bytes_per_sequence(context_tokens)
        room = self.kv_room(shape)
        usable = self.wafer.usable_bytes
        return Prediction(
            model=shape.name, context_tokens=context_tokens, output_tokens=output_tokens,
            accepted_per_pass=accepted_per_pass, total_params=shape.total_params,
            active_params=shape.active_params, weight_bytes=shape.weight_bytes,
            wafers=self.wafers(shape),
            wafers_with_kv=max(1, math.ceil((shape.weight_bytes + kv_seq) / usable)),
            usable_bytes_per_wafer=usable,
            kv_bytes_per_token=shape.kv_bytes_per_token(context_tokens),
            kv_bytes_per_sequence=kv_seq, fits=kv_seq <= room,
            max_concurrent_sequences=int(room // kv_seq) if kv_seq else 0,
            token_s=token, pass_s=pass_, decode_tokens_per_s=rate, prefill_s=prefill,
            ttft_s=ttft, total_s=ttft + max(0, output_tokens - 1) / rate,
            constants=asdict(self.constants))


def _attended_sum(window: int | None, cached: int, new: int) -> int:
    """sum over j in 0..new-1 of min(cached + j + 1, window): keys each new token reads."""
    first, last = cached + 1, cached + new
    if window is None or last <= window:
        return (first + last) * new // 2
    if first >= window:
        return window * new
    below = window - first  # tokens j with cached + j + 1 < window
    return (first + window - 1) * below // 2 + window * (new - below)


@dataclass(frozen=True, kw_only=True)
class WaferProfile:
    """A production model on the wafer model: the simulated clock of the wafer-sim target.

    Prefill pays only for the prompt tokens not already cached (a prefix-cache hit is cheap
    on the wafer too); every forward pass costs one pipeline crossing at the prompt's context
    plus ``verify_overhead`` per extra token it accepts.
    """

    name: str
    shape: ModelShape
    model: WaferModel = WaferModel()

    def prompt_s(self, prompt_tokens: int, cached_tokens: int) -> float:
        new = max(0, prompt_tokens - cached_tokens)
        return self.model.prefill_s(self.shape, new, prompt_tokens - new)

    def token_s(self, context_tokens: int) -> float:
        return self.model.token_s(self.shape, max(1, context_tokens))

    def time_info(self, *, prompt_tokens: int, cached_tokens: int, output_tokens: int,
                  forward_passes: int) -> dict[str, Any]:
        """Cerebras ``time_info`` (seconds) for an answer decoded as the local one was."""
        token = self.token_s(prompt_tokens)
        extra = max(0, output_tokens - forward_passes)  # tokens accepted beyond one a pass
        completion = token * (forward_passes + self.model.constants.verify_overhead * extra)
        prompt = self.prompt_s(prompt_tokens, cached_tokens)
        accepted = output_tokens / forward_passes if forward_passes else 1.0
        return {
            "queue_time": 0.0,  # the simulated wafer serves this client alone
            "prompt_time": prompt,
            "completion_time": completion,
            "total_time": prompt + completion,
            "profile": self.name,
            "decode_tokens_per_s": output_tokens / completion if completion else 0.0,
            "accepted_per_pass": accepted,
        }
