"""The wafer timing model: config parsing per family, counting, capacity, calibration, and the
wafer-sim target's simulated timing and pacing."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from importlib import resources

import pytest

from engine.models import untrained_model_dir
from engine.request import GenerateParams
from engine.targets.model_config import (
    ConfigError,
    load_preset,
    parse_config,
    preset_config,
    preset_names,
)
from engine.targets.wafer_calibration import load_calibration
from engine.targets.wafer_model import TimingConstants, Wafer, WaferModel, WaferProfile
from engine.targets.wafer_sim import WaferSimTarget

LLAMA_8B = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
            "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 128256, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
TIME_INFO = {"queue_time", "prompt_time", "completion_time", "total_time"}


# ---------------------------------------------------------------------------- parsing


def test_dense_llama_counts_like_the_published_model() -> None:
    shape = parse_config(LLAMA_8B)
    assert shape.head_dim == 128 and shape.experts is None and shape.windows == (None,) * 32
    assert shape.total_params == pytest.approx(8.03e9, rel=0.005)
    assert shape.weight_bytes == 2 * shape.total_params  # bfloat16
    # 32 layers x 8 kv heads x 128 x (keys and values) x 2 bytes
    assert shape.kv_bytes_per_token(8192) == 32 * 8 * 128 * 2 * 2 == 131072


def test_qwen_sliding_window_is_off_unless_enabled_and_head_dim_is_read() -> None:
    qwen2 = {**LLAMA_8B, "model_type": "qwen2", "sliding_window": 131072,
             "use_sliding_window": False, "max_window_layers": 28}
    assert parse_config(qwen2).windows == (None,) * 32
    on = parse_config({**qwen2, "use_sliding_window": True, "sliding_window": 4096})
    assert on.windows == (None,) * 28 + (4096,) * 4
    qwen3 = {**LLAMA_8B, "model_type": "qwen3", "num_attention_heads": 64, "head_dim": 128}
    assert parse_config(qwen3).head_dim == 128  # not hidden / heads = 64


def test_qwen_moe_experts_shared_experts_and_dense_layers() -> None:
    moe = {**LLAMA_8B, "model_type": "qwen3_moe", "num_experts": 64, "num_experts_per_tok": 8,
           "moe_intermediate_size": 768, "mlp_only_layers": [0], "decoder_sparse_step": 1}
    shape = parse_config(moe)
    assert shape.moe_layers == (False,) + (True,) * 31
    assert shape.experts is not None and shape.experts.count == 64
    h = 4096
    expert = 3 * h * 768
    assert shape.layer_params(1, active=False) - shape.layer_params(1, active=True) == 56 * expert
    assert shape.layer_params(0, active=True) == shape.attention_params + 3 * h * 14336
    shared = parse_config({**moe, "model_type": "qwen2_moe",
                           "shared_expert_intermediate_size": 5632})
    assert shared.layer_params(1, active=True) - shape.layer_params(1, active=True) == 3 * h * 5632


def test_gpt_oss_windows_and_mxfp4_experts() -> None:
    shape = load_preset("gpt-oss-120b")
    assert shape.windows.count(128) == 18 and shape.windows.count(None) == 18
    assert shape.total_params == pytest.approx(117e9, rel=0.01)
    assert shape.active_params == pytest.approx(5.1e9, rel=0.02)
    assert shape.expert_bits == 4.25 and shape.weight_bits == 16
    assert 60e9 < shape.weight_bytes < 70e9  # MXFP4 experts: ~4.25 bits, not 16
    # Sliding layers keep 128 tokens whatever the context: per token, only full layers count.
    full = 18 * 8 * 64 * 2 * 2
    assert shape.kv_bytes_per_sequence(100_000) == full * 100_000 + full * 128
    assert shape.kv_bytes_per_token(64) == 36 * 8 * 64 * 2 * 2


def test_llama4_nesting_interleaved_moe_and_chunked_attention() -> None:
    config = {"model_type": "llama4", "torch_dtype": "bfloat16", "text_config": {
        "model_type": "llama4_text", "num_hidden_layers": 8, "hidden_size": 512,
        "intermediate_size": 256, "intermediate_size_mlp": 1024, "num_attention_heads": 8,
        "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 1000, "num_local_experts": 16,
        "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "attention_chunk_size": 8192,
        "no_rope_layers": []}}
    shape = parse_config(config)
    assert shape.family == "llama4_text" and shape.weight_bits == 16
    assert shape.moe_layers == (False, True) * 4
    assert shape.dense_intermediate == 1024
    assert shape.experts is not None and shape.experts.intermediate == 256
    assert shape.experts.shared_intermediate == 256  # one shared expert
    assert shape.windows == (8192, 8192, 8192, None) * 2  # every 4th layer is global


def test_glm_names() -> None:
    chatglm = {"model_type": "chatglm", "num_layers": 40, "hidden_size": 4096,
               "ffn_hidden_size": 13696, "num_attention_heads": 32,
               "multi_query_attention": True, "multi_query_group_num": 2, "kv_channels": 128,
               "padded_vocab_size": 151552, "torch_dtype": "bfloat16"}
    shape = parse_config(chatglm)
    assert (shape.num_layers, shape.num_kv_heads, shape.head_dim) == (40, 2, 128)
    assert shape.vocab_size == 151552 and shape.dense_intermediate == 13696
    assert shape.total_params == pytest.approx(9.4e9, rel=0.02)  # GLM-4-9B
    moe = {**LLAMA_8B, "model_type": "glm4_moe", "n_routed_experts": 32, "n_shared_experts": 1,
           "num_experts_per_tok": 4, "moe_intermediate_size": 512, "first_k_dense_replace": 3}
    shape = parse_config(moe)
    assert shape.moe_layers == (False,) * 3 + (True,) * 29
    assert shape.experts is not None and shape.experts.shared_intermediate == 512


@pytest.mark.parametrize(("drop", "named"), [
    ("hidden_size", "'hidden_size'"),
    ("num_hidden_layers", "'num_hidden_layers'"),
    ("vocab_size", "'vocab_size'"),
    ("intermediate_size", "'intermediate_size'"),
    ("model_type", "'model_type'"),
])
def test_a_missing_field_is_named(drop: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_config({k: v for k, v in LLAMA_8B.items() if k != drop})


def test_unknown_models_and_moe_without_routing_are_named() -> None:
    with pytest.raises(ConfigError, match="'mamba'"):
        parse_config({**LLAMA_8B, "model_type": "mamba"})
    with pytest.raises(ConfigError, match="'num_experts_per_tok'"):
        parse_config({**LLAMA_8B, "model_type": "mixtral", "num_local_experts": 8})


@pytest.mark.parametrize(("change", "says"), [
    ({"num_key_value_heads": 7}, "multiple of num_key_value_heads"),
    ({"num_key_value_heads": 0}, "multiple of num_key_value_heads"),
    ({"vocab_size": 0}, "'vocab_size' must be positive"),
    ({"intermediate_size": 0}, "'intermediate_size' must be positive"),
    ({"hidden_size": -4096}, "'hidden_size' must be a non-negative integer"),
    ({"model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 9},
     "between 1 and the number of experts"),
])
def test_contradictory_or_impossible_fields_are_named(change: dict, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_config({**LLAMA_8B, **change})


def test_latent_attention_counts_like_kimi_k2() -> None:
    shape = load_preset("kimi-k2")
    assert shape.latent is not None and shape.head_dim == 192
    assert shape.total_params == pytest.approx(1.04e12, rel=0.02)
    assert shape.active_params == pytest.approx(32e9, rel=0.05)
    assert shape.kv_bytes_per_layer_token == (512 + 64) * 2  # one latent vector, no heads
    assert shape.kv_bytes_per_token(4096) == 61 * 1152


def test_presets_match_the_published_sizes() -> None:
    assert {"qwen2.5-coder-7b", "qwen2.5-coder-32b", "qwen3-coder-480b-a35b", "gpt-oss-120b",
            "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"} <= set(preset_names())
    published = {  # (total, active) as each model's release states them
        "llama-3.1-8b": (8.03e9, None), "llama-3.1-70b": (70.6e9, None),
        "qwen3-32b": (32.8e9, None), "mistral-large-2": (123e9, None),
        "qwen3-235b-a22b": (235e9, 22e9), "gpt-oss-120b": (117e9, 5.1e9),
        "llama-4-scout": (109e9, 17e9), "llama-4-maverick": (400e9, 17e9),
        "glm-4.6": (355e9, 32e9), "kimi-k2": (1.04e12, 32e9)}
    for name, (total, active) in published.items():
        shape = load_preset(name)
        assert shape.total_params == pytest.approx(total, rel=0.02), name
        if active:
            assert shape.active_params == pytest.approx(active, rel=0.07), name
    for row in load_calibration()["rows"]:
        assert row.get("preset") is None or row["preset"] in preset_names()
    sizes = {"qwen2.5-coder-7b": 7.6e9, "qwen2.5-coder-32b": 32.8e9, "llama-3.1-405b": 405.8e9,
             "qwen3-coder-480b-a35b": 480e9}
    for name, params in sizes.items():
        assert load_preset(name).total_params == pytest.approx(params, rel=0.01)
        assert preset_config(name)["_note"]


# ---------------------------------------------------------------------------- capacity


def test_wafers_fit_and_concurrency() -> None:
    model = WaferModel()
    usable = Wafer().usable_bytes
    seventy = load_preset("llama-3.1-70b")
    assert 140e9 < seventy.weight_bytes < 142e9
    assert model.wafers(seventy) == math.ceil(seventy.weight_bytes / usable) == 4
    short = model.predict(seventy, context_tokens=8192)
    room = 4 * usable - seventy.weight_bytes
    assert short.fits and short.max_concurrent_sequences == int(room // (327680 * 8192))
    huge = model.predict(seventy, context_tokens=1_000_000)
    assert not huge.fits and huge.max_concurrent_sequences == 0 and huge.wafers_with_kv > 4


def test_speed_follows_context_speculation_and_prefill() -> None:
    model, shape = WaferModel(), load_preset("qwen2.5-coder-32b")
    assert model.decode_tokens_per_s(shape, 1024) > model.decode_tokens_per_s(shape, 131072)
    plain = model.decode_tokens_per_s(shape, 4096)
    assert plain < model.decode_tokens_per_s(shape, 4096, 3.0) < 3 * plain
    assert model.prefill_s(shape, 4096) > model.prefill_s(shape, 64, cached_tokens=4032)
    p = model.predict(shape, context_tokens=4096, output_tokens=65)
    assert p.ttft_s == pytest.approx(p.prefill_s + p.token_s)
    assert p.total_s == pytest.approx(p.ttft_s + 64 / p.decode_tokens_per_s)


# ---------------------------------------------------------------------------- calibration


def test_the_wafer_facts_are_the_calibration_files() -> None:
    wse3, wafer = load_calibration()["wse3"], Wafer()
    assert wafer.sram_bytes == wse3["sram_bytes"]
    assert wafer.sram_bandwidth_bytes_per_s == wse3["sram_bandwidth_bytes_per_s"]
    assert wafer.peak_fp16_flops == wse3["peak_fp16_flops"]
    assert wafer.system_io_bytes_per_s == wse3["system_io_bytes_per_s"]


def test_the_project_never_reads_the_shared_notes() -> None:
    data = resources.files("engine.targets") / "data" / "wafer_calibration.json"
    assert all(row["source"] for row in json.loads(data.read_text())["rows"])
    for module in ("model_config.py", "wafer_model.py", "wafer_calibration.py",
                   "wafer_report.py"):
        assert "/work/shared" not in (resources.files("engine.targets") / module).read_text()


# ---------------------------------------------------------------------------- wafer-sim


def test_time_info_follows_passes_and_cached_prompt() -> None:
    profile = WaferProfile(name="qwen2.5-coder-32b", shape=load_preset("qwen2.5-coder-32b"))
    cold = profile.time_info(prompt_tokens=2048, cached_tokens=0, output_tokens=40,
                             forward_passes=10)
    warm = profile.time_info(prompt_tokens=2048, cached_tokens=1984, output_tokens=40,
                             forward_passes=10)
    plain = profile.time_info(prompt_tokens=2048, cached_tokens=0, output_tokens=40,
                              forward_passes=40)
    assert cold.keys() >= TIME_INFO and cold["accepted_per_pass"] == 4.0
    assert warm["prompt_time"] < cold["prompt_time"]
    assert cold["completion_time"] < plain["completion_time"]
    assert cold["total_time"] == pytest.approx(cold["prompt_time"] + cold["completion_time"])
    assert cold["decode_tokens_per_s"] == pytest.approx(
        WaferModel().decode_tokens_per_s(profile.shape, 2048, 4.0))


@pytest.fixture(scope="module")
def target() -> WaferSimTarget:
    return WaferSimTarget(untrained_model_dir())


def test_every_answer_carries_the_simulated_time_info(target: WaferSimTarget) -> None:
    params = GenerateParams(prompt="def add(a, b):\n    return a + b\n" * 40, max_tokens=12)
    first = target.generate(params)
    simulated = first.timing["simulated"]
    assert simulated.keys() >= TIME_INFO and simulated["profile"] == "qwen2.5-coder-32b"
    stats = first.stats
    assert simulated["accepted_per_pass"] == stats["output_tokens"] / stats["forward_passes"]
    again = target.generate(params)  # the prompt is in the prefix cache now
    assert again.stats["cached_prompt_tokens"] > 0
    assert again.timing["simulated"]["prompt_time"] < simulated["prompt_time"]
    assert target.info()["simulated"]["profile"] == "qwen2.5-coder-32b"


def test_pace_releases_tokens_on_the_simulated_clock() -> None:
    slow = WaferModel(constants=replace(TimingConstants(), fixed_s=0.02))  # ~45 tokens/s
    paced = WaferSimTarget(untrained_model_dir(), pace=True, wafer_model=slow)
    started, arrivals = time.perf_counter(), []
    result = paced.generate(GenerateParams(prompt="def add(a, b):\n", max_tokens=8),
                            on_text=lambda text, ids: arrivals.append(
                                (time.perf_counter() - started, len(ids))))
    simulated = result.timing["simulated"]
    elapsed = time.perf_counter() - started
    assert simulated["completion_time"] >= 8 * 0.02
    assert elapsed >= simulated["total_time"]
    token_s = paced.profile.token_s(result.stats["prompt_tokens"])
    clock = simulated["prompt_time"]
    for at, n in arrivals:
        if n:
            clock += slow.pass_s(token_s, n)
            assert at >= clock - 1e-3
    unknown_profile = pytest.raises(KeyError, match="unknown preset")
    with unknown_profile:
        WaferSimTarget(untrained_model_dir(), profile="no-such-model")


# ---------------------------------------------------------------------------- the engine


async def test_the_engine_paces_a_streamed_answer_for_its_profile(tmp_path) -> None:
    from test_rpc import run_cli, start_engine

    from engine.rpc import EngineClient

    eng = start_engine(tmp_path, "--socket", str(tmp_path / "w.sock"), "--model",
                       str(untrained_model_dir()), "--profile", "llama-3.1-405b", "--pace")
    try:
        async with await EngineClient.connect(eng.address) as client:
            assert (await client.info())["simulated"]["pace"] is True
            params = {"prompt": "def add(a, b):\n", "max_tokens": 24, "temperature": 0,
                      "stream": True}
            started = time.perf_counter()
            answer = await client.generate(params, on_token=lambda text, ids: None)
            elapsed = time.perf_counter() - started
    finally:
        assert eng.stop() == 0
    simulated = answer["timing"]["simulated"]
    assert simulated["profile"] == "llama-3.1-405b" and simulated.keys() >= TIME_INFO
    assert elapsed >= simulated["completion_time"]
    bad = run_cli("--socket", str(tmp_path / "x.sock"), "--profile", "no-such-model")
    _, err = bad.communicate(timeout=30)
    assert bad.returncode == 2 and err.decode().count("\n") == 1 and b"no-such-model" in err
