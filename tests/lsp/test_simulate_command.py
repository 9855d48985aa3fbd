"""`sparkedit simulate`: the contract's JSON as a subprocess, the table, the presets, the
calibration report, the plot, and one-line errors with exit 2 for bad input."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.cli import main

CONTRACT = {"wafers", "fits", "decode_tokens_per_s", "ttft_s", "kv_bytes_per_token",
            "max_concurrent_sequences"}
GLM = {"model_type": "chatglm", "num_layers": 40, "hidden_size": 4096, "ffn_hidden_size": 13696,
       "num_attention_heads": 32, "multi_query_attention": True, "multi_query_group_num": 2,
       "kv_channels": 128, "padded_vocab_size": 151552, "torch_dtype": "bfloat16"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsp_server.cli", "simulate", *args],
                          capture_output=True, text=True, timeout=60)


def test_json_as_a_subprocess_has_the_contract_keys() -> None:
    done = run("--preset", "llama-3.1-8b", "--context-tokens", "4096", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out.keys() >= CONTRACT
    assert out["wafers"] == 1 and out["fits"] is True
    assert out["kv_bytes_per_token"] == 131072
    assert 1000 < out["decode_tokens_per_s"] < 5000 and 0 < out["ttft_s"] < 1
    assert out["constants"]["layer_s"] > 0


def test_a_config_file_a_table_and_several_models(tmp_path: Path, capsys) -> None:
    config = tmp_path / "glm-4-9b" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps(GLM))
    assert main(["simulate", "--config", str(config), "--preset", "gpt-oss-120b"]) == 0
    table = capsys.readouterr().out
    assert "glm-4-9b" in table and "gpt-oss-120b" in table and "tokens/s" in table
    assert main(["simulate", "--config", str(config), "--preset", "gpt-oss-120b",
                 "--context-tokens", "2000000", "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert [p["model"] for p in both] == ["glm-4-9b", "gpt-oss-120b"]
    assert not any(p["fits"] for p in both)


def test_list_presets_and_the_calibration_report(capsys) -> None:
    assert main(["simulate", "--list-presets"]) == 0
    listing = capsys.readouterr().out
    for name in ("qwen2.5-coder-7b", "qwen2.5-coder-32b", "qwen3-coder-480b-a35b",
                 "gpt-oss-120b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"):
        assert name in listing
    assert main(["simulate", "--calibration-report"]) == 0
    text = capsys.readouterr().out
    assert "Llama 3.1 70B" in text and "fitted:" in text and "left out" in text
    assert main(["simulate", "--calibration-report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    fitted = [r for r in report["rows"] if r["left_out"] is not None]
    assert len(fitted) >= 10 and all(r["error"] >= 1 for r in fitted)
    assert report["summary"]["loo_mean"] == pytest.approx(
        math.exp(sum(math.log(r["error"]) for r in fitted) / len(fitted)))


def test_plot_draws_or_explains_the_missing_extra(tmp_path: Path, capsys) -> None:
    png = tmp_path / "speed.png"
    code = main(["simulate", "--preset", "llama-3.1-8b", "--preset", "qwen2.5-coder-32b",
                 "--plot", str(png)])
    if importlib.util.find_spec("matplotlib") is None:
        assert code == 2 and "sparkedit[plot]" in capsys.readouterr().err
    else:
        assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_the_calibration_plot(tmp_path: Path, capsys) -> None:
    png = tmp_path / "calibration.png"
    code = main(["simulate", "--calibration-report", "--plot", str(png)])
    if importlib.util.find_spec("matplotlib") is None:
        assert code == 2 and "sparkedit[plot]" in capsys.readouterr().err
    else:
        assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"
        assert "left out" in capsys.readouterr().out


HUGE = {**GLM, "num_layers": 3000, "hidden_size": 16384, "ffn_hidden_size": 65536,
        "num_attention_heads": 128, "kv_channels": 128}


@pytest.mark.parametrize(("args", "says"), [
    (["--config", "HUGE"], "fits on no number of wafers"),
    (["--config", "KVHEADS"], "multiple of num_key_value_heads"),
    (["--config", "ZERO"], "'num_layers'"),
    (["--config", "missing/config.json"], "no such file"),
    (["--config", "NOTJSON"], "not JSON"),
    (["--preset", "no-such-model"], "unknown preset"),
    (["--config", "NOFIELD"], "'hidden_size'"),
    ([], "--preset"),
    (["--preset", "llama-3.1-8b", "--context-tokens", "0"], "--context-tokens"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str, tmp_path: Path,
                                          capsys) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "nofield.json").write_text(json.dumps(
        {k: v for k, v in GLM.items() if k != "hidden_size"}))
    (tmp_path / "huge.json").write_text(json.dumps(HUGE))
    (tmp_path / "kvheads.json").write_text(json.dumps({**GLM, "multi_query_group_num": 5}))
    (tmp_path / "zero.json").write_text(json.dumps({**GLM, "num_layers": 0}))
    paths = {"NOTJSON": str(tmp_path / "bad.json"), "NOFIELD": str(tmp_path / "nofield.json"),
             "HUGE": str(tmp_path / "huge.json"), "KVHEADS": str(tmp_path / "kvheads.json"),
             "ZERO": str(tmp_path / "zero.json")}
    assert main(["simulate", *[paths.get(a, a) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sparkedit simulate: ") and says in err


def test_bad_input_as_a_subprocess() -> None:
    done = run("--preset", "no-such-model", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no-such-model" in done.stderr
