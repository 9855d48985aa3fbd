"""options.py: camelCase settings to ServerOptions; bad fields kept with one problem each."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp_server.options import (
    DEFAULTS,
    ServerOptions,
    enabled_for,
    nulls_to_startup,
    parse_options,
    restart_needed,
    stats_path,
)

FULL = {
    "target": "cerebras",
    "model": "qwen-2.5-coder-32b",
    "baseUrl": "https://api.example.com/v1",
    "budget": 4096,
    "maxTokens": 128,
    "languages": ["Python", " typescriptreact "],
    "exclude": ["build/", "*.min.js"],
    "maxFileBytes": 500_000,
    "debounce": {"minMs": 10, "maxMs": 300.5},
    "statsFile": "/tmp/stats.json",
    "nextEdit": False,
    "backend": "ggml",
    "quant": "q4_k_m",
    "warmUp": False,
    "warmBudget": 512,
}
EXPECTED = ServerOptions(
    target="cerebras", model="qwen-2.5-coder-32b", base_url="https://api.example.com/v1",
    budget=4096, max_tokens=128, languages=("python", "typescriptreact"),
    exclude=("build/", "*.min.js"), max_file_bytes=500_000, debounce_min_ms=10.0,
    debounce_max_ms=300.5, stats_file="/tmp/stats.json", next_edit=False, backend="ggml",
    quant="q4_k_m", warm_up=False, warm_budget=512)


def test_defaults() -> None:
    assert ServerOptions() == DEFAULTS
    assert DEFAULTS.target == "wafer-sim" and DEFAULTS.budget == 2048
    assert DEFAULTS.debounce_max_ms == 150.0 and DEFAULTS.next_edit is True
    assert (DEFAULTS.backend, DEFAULTS.quant) == ("auto", None)
    assert DEFAULTS.warm_up is True and DEFAULTS.warm_budget == 1024


@pytest.mark.parametrize("raw", [FULL, {"sparkedit": FULL},
                                 {"sparkedit": FULL, "python": {"analysis": 1}}])
def test_every_field_read_from_either_form(raw: dict[str, Any]) -> None:
    options, problems = parse_options(raw)
    assert problems == []
    assert options == EXPECTED


def test_the_wire_form_covers_every_field() -> None:
    # a new ServerOptions field must be readable from the wire (debounce is two fields)
    changed = {f.name for f in fields(ServerOptions)
               if getattr(EXPECTED, f.name) != getattr(DEFAULTS, f.name)}
    assert changed == {f.name for f in fields(ServerOptions)}


@pytest.mark.parametrize("raw", [None, {}, {"sparkedit": None}, {"sparkedit": {}}])
def test_nothing_given_keeps_base(raw: Any) -> None:
    base = ServerOptions(budget=999)
    assert parse_options(raw, base) == (base, [])


@pytest.mark.parametrize("raw", [[1, 2], "x", 3, {"sparkedit": [1]}])
def test_settings_not_an_object(raw: Any) -> None:
    options, problems = parse_options(raw, EXPECTED)
    assert options == EXPECTED
    assert len(problems) == 1 and "must be an object" in problems[0]


@pytest.mark.parametrize(("key", "value", "words"), [
    ("target", "gpu", "wafer-sim, cerebras, openai"),
    ("target", 3, "must be one of"),
    ("model", "", "non-empty string"),
    ("model", 5, "non-empty string"),
    ("baseUrl", "ftp://x", "http"),
    ("baseUrl", "https://", "http"),
    ("budget", 15, "at least 16"),
    ("budget", 10 ** 9, "at most 1048576"),
    ("budget", "2048", "integer"),
    ("budget", True, "integer"),
    ("budget", 100.5, "integer"),
    ("maxTokens", 0, "between 1 and 4096"),
    ("maxTokens", 4097, "between 1 and 4096"),
    ("languages", "python", "list of strings"),
    ("languages", ["python", 3], "list of strings"),
    ("exclude", {"a": 1}, "list of strings"),
    ("maxFileBytes", 0, "positive"),
    ("statsFile", 7, "non-empty string"),
    ("nextEdit", "yes", "true or false"),
    ("nextEdit", 1, "true or false"),
    ("backend", "cuda", "auto, numpy, ggml"),
    ("backend", "", "must be one of"),
    ("quant", "q5_k", "f32, bf16, q8_0, q4_k_m or null"),
    ("quant", 8, "or null"),
    ("warmUp", "on", "true or false"),
    ("warmBudget", 8, "at least 16"),
    ("warmBudget", "1024", "integer"),
])
def test_a_bad_field_is_kept_and_named(key: str, value: Any, words: str) -> None:
    raw = {**FULL, key: value}
    options, problems = parse_options(raw)
    assert len(problems) == 1, problems
    assert repr(key) in problems[0] and words in problems[0]
    # the bad field keeps the base's value; every other field is still read
    assert options == ServerOptions(**{
        f.name: getattr(DEFAULTS if _wire(f.name) == key else EXPECTED, f.name)
        for f in fields(ServerOptions)})


def _wire(field: str) -> str:
    parts = field.split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def test_integral_floats_and_nulls() -> None:
    options, problems = parse_options({"budget": 1024.0, "maxTokens": None, "target": None},
                                      EXPECTED)
    assert problems == []
    assert options.budget == 1024 and isinstance(options.budget, int)
    assert options.max_tokens == EXPECTED.max_tokens and options.target == "cerebras"


def test_null_resets_optional_fields() -> None:
    options, problems = parse_options({"model": None, "baseUrl": None, "statsFile": None,
                                       "quant": None, "backend": None, "warmBudget": None},
                                      EXPECTED)
    assert problems == []
    assert (options.model, options.base_url, options.stats_file, options.quant) == \
        (None, None, None, None)
    # null is "not set" for the settings without a null default
    assert (options.backend, options.warm_budget) == ("ggml", 512)


def test_nulls_return_to_the_startup_values() -> None:
    startup = ServerOptions(model="/cli/model", quant="q8_0", backend="numpy")
    raw = {"sparkedit": {"model": None, "quant": None, "backend": None, "budget": 512}}
    new, problems = parse_options(raw, EXPECTED)
    assert problems == []
    back = nulls_to_startup(raw, new, startup)
    assert (back.model, back.quant, back.budget) == ("/cli/model", "q8_0", 512)
    assert back.backend == EXPECTED.backend  # null is "not set" for it: unchanged
    assert nulls_to_startup("x", new, startup) is new


def test_unknown_settings_are_reported() -> None:
    options, problems = parse_options({"foo": 1, "budget": 512, "debounce": {"midMs": 3}})
    assert options == ServerOptions(budget=512)
    assert sorted(problems) == ["unknown setting 'debounce.midMs'", "unknown setting 'foo'"]


@pytest.mark.parametrize(("debounce", "expected", "count"), [
    ({"minMs": 20}, (20.0, 150.0), 0),
    ({"maxMs": 0}, (0.0, 0.0), 0),
    ({"minMs": 200}, (0.0, 150.0), 1),  # over the base max
    ({"minMs": 80, "maxMs": 40}, (0.0, 150.0), 1),
    ({"minMs": -1, "maxMs": 90}, (0.0, 90.0), 1),
    ({"minMs": 10, "maxMs": 5001}, (10.0, 150.0), 1),
    ({"minMs": "5"}, (0.0, 150.0), 1),
    ({"minMs": float("nan")}, (0.0, 150.0), 1),
    (50, (0.0, 150.0), 1),
])
def test_debounce_bounds(debounce: Any, expected: tuple[float, float], count: int) -> None:
    options, problems = parse_options({"debounce": debounce})
    assert (options.debounce_min_ms, options.debounce_max_ms) == expected
    assert len(problems) == count, problems
    assert all("debounce" in p for p in problems)


def test_merges_onto_base() -> None:
    base, _ = parse_options(FULL)
    options, problems = parse_options({"sparkedit": {"maxTokens": 16}}, base)
    assert problems == []
    assert options == ServerOptions(**{**EXPECTED.__dict__, "max_tokens": 16})


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from([*FULL, "sparkedit", "minMs", "maxMs", "x"]), inner,
                      max_size=4),
    max_leaves=12))
def test_never_raises_and_always_valid(raw: Any) -> None:
    options, problems = parse_options(raw)
    assert isinstance(options, ServerOptions) and all(isinstance(p, str) for p in problems)
    assert options.target in ("wafer-sim", "cerebras", "openai")
    assert options.budget >= 16 and 1 <= options.max_tokens <= 4096
    assert 0 <= options.debounce_min_ms <= options.debounce_max_ms <= 5000
    assert options.backend in ("auto", "numpy", "ggml")
    assert options.quant in (None, "f32", "bf16", "q8_0", "q4_k_m")
    assert options.warm_budget >= 16 and isinstance(options.warm_up, bool)


def test_enabled_for() -> None:
    every = ServerOptions()
    assert enabled_for(every, "anything", None)
    some = ServerOptions(languages=("python", "tsx"))
    assert enabled_for(some, "python", "python")
    assert enabled_for(some, "Python", None)
    assert enabled_for(some, "typescriptreact", "tsx")  # by sparkedit's name
    assert not enabled_for(some, "typescript", "typescript")
    assert not enabled_for(some, "plaintext", None)


def test_restart_needed() -> None:
    base = ServerOptions()
    assert not restart_needed(base, ServerOptions(budget=100, max_tokens=3, next_edit=False))
    assert restart_needed(base, ServerOptions(target="openai"))
    assert restart_needed(base, ServerOptions(model="m"))
    assert restart_needed(base, ServerOptions(base_url="http://h"))
    # what computes the model's passes is what the engine serves, as the model is
    assert restart_needed(base, ServerOptions(backend="numpy"))
    assert restart_needed(base, ServerOptions(quant="q8_0"))
    assert not restart_needed(base, ServerOptions(warm_budget=256, warm_up=False))


def test_stats_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert stats_path(ServerOptions(stats_file="off"), {}, home) is None
    assert stats_path(ServerOptions(), {}, home) == home / ".local/state/sparkedit/stats.json"
    assert stats_path(ServerOptions(), {"XDG_STATE_HOME": "/xdg"}, home) == \
        Path("/xdg/sparkedit/stats.json")
    # relative XDG paths are invalid per the spec and ignored
    assert stats_path(ServerOptions(), {"XDG_STATE_HOME": "rel"}, home) == \
        home / ".local/state/sparkedit/stats.json"
    assert stats_path(ServerOptions(stats_file="~/s.json"), {}, home) == home / "s.json"
    assert stats_path(ServerOptions(stats_file="/a/b.json"), {}, home) == Path("/a/b.json")
