"""`score` and the request errors of the real engine process: each bad request gets a
clear answer and the engine keeps serving. One engine (the untrained model) per module."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest
from test_rpc import (  # same folder: the engine-process helpers
    Engine,
    frame_reader,
    untrained_engine,
)

from engine.model import load_model
from engine.models import untrained_model_dir
from engine.rpc import EngineClient, EngineError, pack, request_frame
from engine.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from untrained_engine(tmp_path_factory, "score")


def log_softmax_scores(tokens: list[int]) -> np.ndarray:
    model = load_model(untrained_model_dir())
    logits = model.forward(np.array(tokens), model.new_cache()).astype(np.float64)  # [T, V]
    peak = logits.max(-1, keepdims=True)
    logp = logits - peak - np.log(np.exp(logits - peak).sum(-1, keepdims=True))  # [T, V]
    return logp[np.arange(len(tokens) - 1), tokens[1:]]  # [T-1]


async def test_score_is_the_log_softmax_of_the_models_logits(engine: Engine) -> None:
    tok = Tokenizer.from_dir(untrained_model_dir())
    tokens = tok.encode("def mean(xs):\n    return sum(xs) / len(xs)\n" * 14)
    assert len(tokens) > 256  # crosses a scoring slice
    async with await EngineClient.connect(engine.address) as client:
        got = await client.score(tokens)
        assert got[0] is None and len(got) == len(tokens)
        np.testing.assert_allclose(got[1:], log_softmax_scores(tokens), rtol=0, atol=1e-5)
        assert await client.score(tokens[:1]) == [None]
        # Scoring between generates changes neither: they share the worker, not state.
        params = {"tokens": tokens[:20], "max_tokens": 8, "temperature": 0}
        first = await client.generate(params)
        again = await client.score(tokens)
        assert again == got and (await client.generate(params))["tokens"] == first["tokens"]


async def test_score_and_generate_interleaved_from_two_clients(engine: Engine) -> None:
    tokens = list(range(1, 120))
    async with await EngineClient.connect(engine.address) as a, \
            await EngineClient.connect(engine.address) as b:
        solo = await a.score(tokens)
        jobs = [a.generate({"prompt": "import os\n", "max_tokens": 30}), b.score(tokens),
                a.score(tokens), b.generate({"prompt": "x = 1\n", "max_tokens": 5})]
        results = await asyncio.gather(*jobs)
        assert results[1] == solo and results[2] == solo


@pytest.mark.parametrize(("params", "code", "words"), [
    ({}, "invalid_params", ["tokens", "non-empty"]),
    ({"tokens": []}, "invalid_params", ["non-empty"]),
    ({"tokens": "abc"}, "invalid_params", ["list"]),
    ({"tokens": [1, 10**6]}, "invalid_params", ["tokens[1]", "1000000", "0..8191"]),
    ({"tokens": [-1]}, "invalid_params", ["tokens[0]", "-1"]),
    ({"tokens": [1, True]}, "invalid_params", ["tokens[1]", "True"]),
    ({"tokens": [1.5]}, "invalid_params", ["1.5"]),
])
async def test_bad_score_requests_are_named(engine: Engine, params: dict, code: str,
                                            words: list[str]) -> None:
    async with await EngineClient.connect(engine.address) as client:
        with pytest.raises(EngineError) as err:
            await client.call("score", params)
        assert err.value.code == code
        for word in words:
            assert word in err.value.message, (word, err.value.message)
        assert (await client.health())["ok"]


async def test_over_the_context_is_refused_with_both_numbers(engine: Engine) -> None:
    async with await EngineClient.connect(engine.address) as client:
        limit = (await client.info())["context_limit"]
        over = [1] * (limit + 1)
        for method, params in [("score", {"tokens": over}),
                               ("generate", {"tokens": over, "max_tokens": 1})]:
            with pytest.raises(EngineError) as err:
                await client.call(method, params)
            assert err.value.code == "context_overflow", method
            assert str(limit + 1) in err.value.message and str(limit) in err.value.message
        # A text prompt is only measured after tokenizing, on the worker: same answer.
        # "\x00" is one token here (a byte-level tokenizer never merges it).
        n = len((await client.tokenize("\x00" * 64))["tokens"])
        assert n == 64
        with pytest.raises(EngineError) as err:
            await client.generate({"prompt": "\x00" * (limit + 5), "max_tokens": 1})
        assert err.value.code == "context_overflow"
        assert str(limit + 5) in err.value.message and str(limit) in err.value.message
        answer = await client.generate({"prompt": "def f():\n", "max_tokens": 3})
        assert answer["finish_reason"] in ("length", "eos", "stop")


@pytest.mark.parametrize(("params", "field"), [
    ({"prompt": "", "max_tokens": 2}, "prompt"),
    ({"tokens": [], "max_tokens": 2}, "tokens"),
    ({"prompt": b"def f():", "max_tokens": 2}, "prompt"),  # msgpack bin, not str
    ({"tokens": [3, 8192], "max_tokens": 2}, "tokens"),
    ({"tokens": [3, -2], "max_tokens": 2}, "tokens"),
])
async def test_empty_and_out_of_range_prompts_are_named(engine: Engine, params: dict,
                                                        field: str) -> None:
    async with await EngineClient.connect(engine.address) as client:
        with pytest.raises(EngineError) as err:
            await client.generate(params)
        assert err.value.code == "invalid_params" and field in err.value.message
    async with await EngineClient.connect(engine.address) as client:
        with pytest.raises(EngineError) as err:
            await client.call("tokenize", {"text": b"x = 1"})
        assert err.value.code == "invalid_params"


def _str8(b: bytes) -> bytes:
    return b"\xd9" + bytes([len(b)]) + b


async def test_invalid_utf8_is_answered_with_the_request_id(engine: Engine) -> None:
    reader, writer = await asyncio.open_unix_connection(engine.address)
    answer = frame_reader(reader, timeout_s=30)

    try:
        for msgid, method, key, value in [(5, b"generate", b"prompt", b"def f(\xff):"),
                                          (6, b"tokenize", b"text", b"\xed\xa0\x80"),
                                          (7, b"tokenize", b"te\xc3", b"x")]:
            writer.write(b"\x94\x00" + bytes([msgid]) + _str8(method) + b"\x81"
                         + _str8(key) + _str8(value))
            frame = await answer()
            assert frame[:2] == [1, msgid] and frame[2]["code"] == "malformed_frame"
            assert "not valid UTF-8" in frame[2]["message"]
        writer.write(request_frame(8, "tokenize", {"text": "ok é"}))
        frame = await answer()
        assert frame[1] == 8 and frame[2] is None and frame[3]["tokens"]
        writer.write(pack([0, 9, "score", {"tokens": [1, 2, 3]}]))
        frame = await answer()
        assert frame[1] == 9 and frame[3]["logprobs"][0] is None
    finally:
        writer.close()
