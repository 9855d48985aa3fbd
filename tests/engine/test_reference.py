"""The engine against logits recorded from Hugging Face transformers.

Fixtures come from scripts/make_reference_fixtures.py (tests/data/reference/); these
tests only read them, so they run without torch or transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import engine.model as model_mod
from engine.model import ModelConfig, Transformer, load_model
from engine.rope import RopeConfig, rope_cos_sin
from engine.targets.wafer_sim import WaferSimTarget
from engine.tokenizer import Tokenizer

DATA = Path(__file__).resolve().parent.parent / "data" / "reference"
FIXTURES = ["llama-untied-llama3", "llama-tied-linear-bias", "qwen2-tied"]
PUBLISHED = sorted(p.stem for p in (DATA / "configs").glob("*.json"))
REL_TOL = 1e-4


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest deviation relative to the largest reference logit (logits near zero
    make an elementwise relative error meaningless)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / np.abs(want).max())


def ulps(a: np.ndarray, b: np.ndarray) -> int:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return int(np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32)).max())


@pytest.fixture(scope="module", params=FIXTURES)
def fixture(request: pytest.FixtureRequest) -> tuple[Transformer, dict[str, np.ndarray]]:
    folder = DATA / request.param
    with np.load(folder / "reference.npz") as ref:
        return load_model(folder), dict(ref)


def prompts(ref: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    n = sum(k.startswith("prompt_") for k in ref)
    assert n >= 3
    return [(ref[f"prompt_{i}"], ref[f"logits_{i}"]) for i in range(n)]


def test_the_fixtures_cover_each_storage_layout() -> None:
    names = {p.name for p in (DATA / "llama-untied-llama3").iterdir()}
    assert "model.safetensors.index.json" in names and "model.safetensors" not in names
    assert len([n for n in names if n.endswith(".safetensors")]) > 1
    dtypes = set()
    for name in FIXTURES:
        for shard in (DATA / name).glob("*.safetensors"):
            header_len = int.from_bytes(shard.read_bytes()[:8], "little")
            header = json.loads(shard.read_bytes()[8 : 8 + header_len])
            dtypes |= {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert dtypes == {"F32", "F16", "BF16"}


def test_prefill_logits_match_transformers(fixture) -> None:
    model, ref = fixture
    for tokens, want in prompts(ref):
        got = model.forward(tokens, model.new_cache())
        assert rel_error(got, want) < REL_TOL


def test_incremental_decoding_matches_transformers(fixture, monkeypatch) -> None:
    model, ref = fixture
    tokens, want = prompts(ref)[-1]
    for split in (1, 5, len(tokens) - 1):
        cache = model.new_cache()
        rows = [model.forward(tokens[:split], cache)]
        rows += [model.forward(tokens[i : i + 1], cache) for i in range(split, len(tokens))]
        assert cache.length == len(tokens)
        assert rel_error(np.concatenate(rows), want) < REL_TOL
    monkeypatch.setattr(model_mod, "PREFILL_CHUNK", 7)  # chunked prefill, same numbers
    assert rel_error(model.forward(tokens, model.new_cache()), want) < REL_TOL
    last = model.forward(tokens, model.new_cache(), last_n=1)
    assert rel_error(last, want[-1:]) < REL_TOL


def test_rotary_tables_match_transformers_at_far_positions(fixture) -> None:
    model, ref = fixture
    assert ulps(model.rope.inv_freq, ref["inv_freq"]) == 0
    half = ref["inv_freq"].shape[0]
    cos2, sin2 = model.rope.get(0, int(ref["rope_positions"].max()) + 1)
    pos = ref["rope_positions"]
    np.testing.assert_allclose(cos2[pos, 0], ref["rope_cos"], atol=2e-6)
    np.testing.assert_allclose(sin2[pos, 0, half:], ref["rope_sin"][:, half:], atol=2e-6)
    np.testing.assert_allclose(-sin2[pos, 0, :half], ref["rope_sin"][:, :half], atol=2e-6)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_configs_load_and_their_rope_matches(name: str) -> None:
    cfg = json.loads((DATA / "configs" / f"{name}.json").read_text())
    config = ModelConfig.from_hf(cfg)
    assert config.model_type == cfg["model_type"]
    assert config.head_dim == cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    assert config.qkv_bias == (cfg["model_type"] == "qwen2")
    eos = cfg["eos_token_id"]
    assert config.eos_token_ids == tuple(eos if isinstance(eos, list) else [eos])
    with np.load(DATA / "published_rope.npz") as ref:
        want_inv = ref[f"{name}/inv_freq"]
        pos, want_cos = ref[f"{name}/rope_positions"], ref[f"{name}/rope_cos"]
    inv = config.rope.inv_freq(config.head_dim)
    assert ulps(inv, want_inv) <= 1, name
    cos, _ = rope_cos_sin(inv, pos)
    # At position 131071 a 1-ulp inv_freq difference moves the angle by ~1e-2 * ulp.
    np.testing.assert_allclose(np.concatenate([cos, cos], -1), want_cos, atol=1e-4)


@pytest.mark.parametrize(("change", "message"), [
    ({"rope_scaling": {"type": "dynamic", "factor": 2.0}}, "'dynamic' is not supported"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "supported: default, linear"),
    ({"rope_scaling": {"rope_type": "linear"}}, "needs a 'factor'"),
    ({"use_sliding_window": True}, "use_sliding_window"),
    ({"model_type": "qwen3"}, "model_type 'qwen3' is not supported"),
    ({"hidden_act": "gelu"}, "hidden_act"),
    ({"partial_rotary_factor": 0.5}, "partial_rotary_factor"),
])
def test_unsupported_configs_are_refused_by_name(change: dict, message: str) -> None:
    cfg = json.loads((DATA / "configs" / "qwen2.5-coder-1.5b.json").read_text())
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_hf(cfg | change)


def test_both_rope_layouts_read_the_same() -> None:
    old = {"rope_theta": 5e5, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
           "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 8192}}
    new = {"rope_parameters": {**old["rope_scaling"], "rope_theta": 5e5}}
    assert RopeConfig.from_hf(old) == RopeConfig.from_hf(new)
    assert RopeConfig.from_hf({"rope_scaling": None}) == RopeConfig()


def test_a_missing_tensor_or_untied_head_is_named(tmp_path: Path) -> None:
    folder = DATA / "qwen2-tied"
    model = load_model(folder)
    weights = {"model.embed_tokens.weight": model.embed, "model.norm.weight": model.final_norm}
    with pytest.raises(ValueError, match=r"model.layers.0.input_layernorm.weight"):
        Transformer(model.config, weights)
    with pytest.raises(ValueError, match="no lm_head.weight"):
        Transformer(model.config.replace(tie_word_embeddings=False), weights)


# ---------------------------------------------------------------------------- Qwen tokenizer


@pytest.fixture(scope="module")
def qwen_tok() -> Tokenizer:
    return Tokenizer.from_dir(DATA / "qwen2-tied")


def test_qwen_added_tokens_are_control_tokens_even_when_not_flagged_special(
        qwen_tok: Tokenizer) -> None:
    added = json.loads((DATA / "qwen2-tied" / "tokenizer.json").read_text())["added_tokens"]
    assert not all(t["special"] for t in added)  # FIM markers are not flagged in Qwen2.5
    assert qwen_tok.special_ids == {t["content"]: t["id"] for t in added}
    assert qwen_tok.eos_id == qwen_tok.special_ids["<|endoftext|>"]


def test_qwen_markers_in_text_are_data_but_markers_in_prompts(qwen_tok: Tokenizer) -> None:
    s = qwen_tok.special_ids
    text = "x = '<|fim_prefix|>' + '<|endoftext|>'"
    assert not set(qwen_tok.encode(text)) & set(s.values())
    assert qwen_tok.decode(qwen_tok.encode(text)) == text
    ids = qwen_tok.encode_prompt("<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>")
    assert ids[0] == s["<|fim_prefix|>"] and ids[-1] == s["<|fim_middle|>"]
    assert s["<|fim_suffix|>"] in ids


def test_a_qwen_checkpoint_serves_as_downloaded() -> None:
    from engine.request import GenerateParams

    target = WaferSimTarget(DATA / "qwen2-tied")
    info = target.info()
    assert {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>",
            "<|repo_name|>", "<|endoftext|>"} <= info["special_tokens"].keys()
    result = target.generate(GenerateParams(
        prompt="<|fim_prefix|>def add(a, b):<|fim_suffix|>\n<|fim_middle|>", max_tokens=4))
    assert result.stats["forward_passes"] >= 1
    scores = target.score([5, 9, 200])
    assert scores[0] is None and all(s < 0 for s in scores[1:])
