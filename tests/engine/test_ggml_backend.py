"""The ggml backend against the numpy reference, and its prefix cache and conversion.

Needs the `ggml` extra (llama-cpp-python and gguf); skipped with the reason without it.
Numbers to hold it to: with float32 weights, float32 keys/values and flash attention off
the logits match the numpy reference (itself held to transformers) within GGML_REL_TOL;
llama.cpp's defaults (float16 keys/values, flash attention on) round attention through
float16 and stay within DEFAULT_REL_TOL.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llama_cpp", reason="the ggml extra is not installed")
pytest.importorskip("gguf", reason="the ggml extra is not installed")

from engine.backend_choice import ModelLoadError, ModelSpec, load  # noqa: E402
from engine.generate import DecodeState, generate  # noqa: E402
from engine.ggml.gguf_cache import converted_gguf  # noqa: E402
from engine.ggml.gguf_file import GgufError  # noqa: E402
from engine.ggml.model import GgmlModel  # noqa: E402
from engine.model import load_model  # noqa: E402
from engine.models import default_model_dir, untrained_model_dir  # noqa: E402
from engine.request import GenerateParams  # noqa: E402
from engine.speculative import PLAIN, SuggestionMemory  # noqa: E402
from engine.tokenizer import Tokenizer, load_tokenizer  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "reference"
FIXTURES = ["llama-untied-llama3", "llama-tied-linear-bias", "qwen2-tied"]
GGML_REL_TOL = 1e-5
DEFAULT_REL_TOL = 3e-3
FIRST_TEXT_ID = 13  # the untrained model's special tokens come first


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture(scope="module")
def exact_untrained() -> GgmlModel:
    """The untrained placeholder as an f32 GGUF with exact settings."""
    return GgmlModel.load(converted_gguf(untrained_model_dir(), "f32"), kv_dtype="f32",
                          flash_attn=False)


@pytest.fixture(scope="module")
def default_untrained() -> GgmlModel:
    """The untrained placeholder as the engine runs it by default: q8_0, float16 KV."""
    return GgmlModel.load(converted_gguf(untrained_model_dir(), "q8_0"))


@pytest.fixture(scope="module")
def untrained_tok() -> Tokenizer:
    return Tokenizer.from_dir(untrained_model_dir())


@pytest.mark.parametrize("name", FIXTURES)
def test_f32_gguf_logits_match_the_reference_fixtures(name: str) -> None:
    folder = DATA / name
    with np.load(folder / "reference.npz") as ref:
        cases = [(ref[f"prompt_{i}"], ref[f"logits_{i}"])
                 for i in range(sum(k.startswith("prompt_") for k in ref))]
    exact = GgmlModel.load(converted_gguf(folder, "f32"), kv_dtype="f32", flash_attn=False)
    default = GgmlModel.load(converted_gguf(folder, "f32"))
    for tokens, want in cases:
        assert rel_error(exact.forward(tokens, exact.new_cache()), want) < GGML_REL_TOL
        assert rel_error(default.forward(tokens, default.new_cache()), want) < DEFAULT_REL_TOL
    # token by token through the cache gives the same rows
    tokens, want = cases[-1]
    cache = exact.new_cache()
    rows = [exact.forward(tokens[:3], cache)]
    rows += [exact.forward(tokens[i : i + 1], cache) for i in range(3, len(tokens))]
    assert rel_error(np.concatenate(rows), want) < GGML_REL_TOL


def test_greedy_tokens_equal_the_numpy_reference(exact_untrained: GgmlModel,
                                                 untrained_tok: Tokenizer) -> None:
    reference = load_model(untrained_model_dir())
    prompt = tuple(untrained_tok.encode("def mean(xs):\n    return sum(xs) / len(xs)\n" * 3))
    params = GenerateParams(tokens=prompt, max_tokens=40)
    want = generate(reference, untrained_tok, params, state=DecodeState(speculation=PLAIN))
    got = generate(exact_untrained, untrained_tok, params, state=DecodeState(speculation=PLAIN))
    assert got.tokens == want.tokens and got.text == want.text


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.lists(st.integers(FIRST_TEXT_ID, 8191), min_size=1, max_size=40),
       data=st.data())
def test_speculative_greedy_equals_plain_greedy_on_ggml(default_untrained: GgmlModel,
                                                        untrained_tok: Tokenizer,
                                                        prompt: list[int], data) -> None:
    # Quantized weights requantize activations, so the smallest rounding difference between
    # a verification pass and a one-token pass would flip tokens here: equality holds only
    # because every row is computed as a one-token pass computes it (see engine/ggml/model.py).
    model, tok = default_untrained, untrained_tok
    prompt = prompt + prompt[: data.draw(st.integers(0, len(prompt)))]
    n = data.draw(st.integers(1, 24))
    plain = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=n),
                     state=DecodeState(speculation=PLAIN))
    kind = data.draw(st.sampled_from(["exact", "half", "random", "none"]))
    ids = {"exact": plain.tokens, "half": plain.tokens[: len(plain.tokens) // 2], "none": [],
           "random": data.draw(st.lists(st.integers(FIRST_TEXT_ID, 8191), max_size=30))}
    draft = tok.decode(ids[kind]) or None
    state = DecodeState(prefix_cache=model.new_prefix_store(1 << 24),
                        suggestions=SuggestionMemory())
    for _ in range(2):  # the second run also drafts from its previous suggestion
        spec = generate(model, tok, GenerateParams(tokens=tuple(prompt), max_tokens=n,
                                                   draft=draft), state=state)
        assert spec.tokens == plain.tokens and spec.finish_reason == plain.finish_reason
        assert spec.stats["forward_passes"] <= plain.stats["forward_passes"]


def test_logits_after_rollback_equal_a_fresh_run(exact_untrained: GgmlModel) -> None:
    model = exact_untrained
    rng = np.random.default_rng(1)
    prefix, rejected, good = (rng.integers(FIRST_TEXT_ID, 8192, n).tolist() for n in (30, 7, 5))
    rolled = model.new_cache()
    model.forward(prefix, rolled, last_n=0)
    model.forward(rejected, rolled)  # a verification pass whose drafts were all rejected
    rolled.truncate(len(prefix))
    after = model.forward(good, rolled)
    clean = model.new_cache()
    model.forward(prefix, clean, last_n=0)
    fresh = model.forward(good, clean)
    np.testing.assert_array_equal(after, fresh)


def test_prefix_reuse_keeps_the_live_sequence_and_restores_saved_states(
        exact_untrained: GgmlModel) -> None:
    model = exact_untrained
    store = model.new_prefix_store(1 << 26)
    rng = np.random.default_rng(2)
    doc_a = rng.integers(FIRST_TEXT_ID, 8192, 400).tolist()
    doc_b = rng.integers(FIRST_TEXT_ID, 8192, 300).tolist()

    def run(tokens: list[int]) -> tuple[int, np.ndarray]:
        cache = model.new_cache()
        cached = store.lookup(tokens, cache, max_tokens=len(tokens) - 1)
        logits = model.forward(tokens[cached:], cache, last_n=1)
        store.insert(tokens, cache)
        return cached, logits

    assert run(doc_a)[0] == 0
    cached, typed = run(doc_a + [77])  # a keystroke: the live sequence serves it
    assert cached == len(doc_a) and store.stats()["restores"] == 0
    assert run(doc_b)[0] == 0  # another file: A is saved before it is dropped
    assert store.stats()["saves"] == 1
    cached, again = run(doc_a + [77])  # back to A: restored, not recomputed
    assert cached == len(doc_a) and store.stats()["restores"] == 1
    np.testing.assert_array_equal(again, typed)


def test_a_gguf_file_loads_directly_with_its_own_vocabulary(tmp_path: Path) -> None:
    gguf = tmp_path / "coder.gguf"
    shutil.copy(converted_gguf(default_model_dir(), "q8_0"), gguf)  # no tokenizer.json beside
    loaded = load(ModelSpec(path=gguf))
    assert loaded.backend.name == "ggml" and loaded.backend.weights == "q8_0"
    assert type(loaded.tokenizer).__name__ == "GgufTokenizer"
    hf = Tokenizer.from_dir(default_model_dir())
    text = "def total(self) -> Decimal:\n    return sum(i.price for i in self.items)  # é😀\n"
    assert loaded.tokenizer.encode(text) == hf.encode(text)
    assert loaded.tokenizer.special_ids == hf.special_ids
    prompt = "<|fim_suffix|>\n<|fim_prefix|>def f(x):\n    return<|fim_middle|>"
    assert loaded.tokenizer.encode_prompt(prompt) == hf.encode_prompt(prompt)
    ids, spans = loaded.tokenizer.encode_with_offsets(text)
    assert "".join(text[s:e] for s, e in spans[:3]) == text[: spans[2][1]]
    assert loaded.tokenizer.decode(ids) == text
    # the same tokenizer for the language server's counting, from the file alone
    assert load_tokenizer(gguf).encode(text) == hf.encode(text)


def test_a_converted_folder_is_cached_and_reused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(untrained_model_dir(), folder)
    first = converted_gguf(folder, "q8_0")
    stamp = first.stat().st_mtime_ns
    assert converted_gguf(folder, "q8_0") == first  # reused, not rewritten
    assert first.stat().st_size > 0 and not list(first.parent.glob("*.partial"))
    config = json.loads((folder / "config.json").read_text())
    config["rms_norm_eps"] = 1e-6  # a different checkpoint: a new conversion
    (folder / "config.json").write_text(json.dumps(config))
    assert converted_gguf(folder, "q8_0") != first
    assert stamp <= first.stat().st_mtime_ns


def test_an_interrupted_conversion_is_never_used(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(untrained_model_dir(), folder)
    done = converted_gguf(folder, "bf16")
    done.unlink()
    half = done.with_name("bf16.12345.partial")
    half.write_bytes(b"GGUF" + b"\0" * 100)  # what a killed conversion leaves
    again = converted_gguf(folder, "bf16")
    assert again == done and not half.exists()
    GgmlModel.load(again).close()


# --- bad input: one line naming the file ------------------------------------------------


def _gguf_copy(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    shutil.copy(converted_gguf(untrained_model_dir(), "q8_0"), path)
    return path


def test_a_truncated_gguf_is_refused_by_name(tmp_path: Path) -> None:
    path = _gguf_copy(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GgufError, match=str(path)) as err:
        GgmlModel.load(path)
    assert "\n" not in str(err.value)


def test_a_corrupt_or_foreign_file_is_refused_by_name(tmp_path: Path) -> None:
    path = _gguf_copy(tmp_path)
    data = bytearray(path.read_bytes())
    data[8:24] = b"\xff" * 16  # tensor and metadata counts
    path.write_bytes(bytes(data))
    with pytest.raises(GgufError, match=str(path)):
        GgmlModel.load(path)
    text = tmp_path / "notes.gguf"
    text.write_text("not a model\n")
    with pytest.raises(GgufError, match="not a GGUF file"):
        GgmlModel.load(text)


def test_an_unknown_architecture_or_weight_type_is_refused(tmp_path: Path) -> None:
    import gguf

    source = converted_gguf(untrained_model_dir(), "f32")
    path = tmp_path / "alien.gguf"
    # general.architecture is the first key; its value is the first "llama" in the file
    path.write_bytes(source.read_bytes().replace(b"llama", b"alien", 1))
    with pytest.raises(GgufError, match="alien"):
        GgmlModel.load(path)
    typed = tmp_path / "typed.gguf"
    raw = bytearray(source.read_bytes())
    tensor = gguf.GGUFReader(source).tensors[0]
    type_at = int(tensor.field.offset) + len(tensor.field.parts[0].tobytes()) + \
        len(tensor.field.parts[1].tobytes()) + 4 + 8 * len(tensor.shape)
    raw[type_at : type_at + 4] = (250).to_bytes(4, "little")  # no such ggml type
    typed.write_bytes(bytes(raw))
    with pytest.raises(GgufError, match=str(typed)):
        GgmlModel.load(typed)


def test_a_model_larger_than_memory_is_refused_before_loading(tmp_path: Path,
                                                              monkeypatch) -> None:
    import engine.ggml.gguf_file as gguf_file

    monkeypatch.setattr(gguf_file, "available_memory", lambda: 64 << 20)
    with pytest.raises(GgufError, match="needs about .* GiB.*available"):
        GgmlModel.load(converted_gguf(untrained_model_dir(), "q8_0"))


def test_numpy_cannot_run_a_gguf_and_a_missing_model_is_named(tmp_path: Path) -> None:
    path = _gguf_copy(tmp_path)
    with pytest.raises(ModelLoadError, match="numpy backend reads Hugging Face folders"):
        load(ModelSpec(path=path, backend="numpy"))
    with pytest.raises(ModelLoadError, match="no such model"):
        load(ModelSpec(path=tmp_path / "missing.gguf"))


@pytest.mark.parametrize("quant", ["f32", "bf16", "q8_0", "q4_k_m"])
def test_a_verification_pass_computes_each_row_as_a_one_token_pass(quant: str) -> None:
    """What makes speculative output equal plain output on ggml: rows of a pass of up to
    33 tokens (K <= 32 drafts) equal, bit for bit, the same tokens run one at a time."""
    model = GgmlModel.load(converted_gguf(default_model_dir(), quant))
    assert model.exact_verification, ("llama.cpp was built with llamafile's sgemm: "
                                      "reinstall with CMAKE_ARGS=-DGGML_LLAMAFILE=OFF and "
                                      "pip's --no-cache-dir")
    rng = np.random.default_rng(3)
    prompt = rng.integers(FIRST_TEXT_ID, 8192, 300).tolist()
    cache = model.new_cache()
    model.forward(prompt, cache, last_n=0)
    for n in (2, 9, 33):
        pass_tokens = rng.integers(FIRST_TEXT_ID, 8192, n).tolist()
        batch = model.forward(pass_tokens, cache)
        cache.truncate(len(prompt))
        one_by_one = np.concatenate([model.forward([t], cache) for t in pass_tokens])
        cache.truncate(len(prompt))
        np.testing.assert_array_equal(batch, one_by_one)
