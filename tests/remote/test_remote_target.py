"""The remote targets against a real local HTTP server (tests/remote/fake_server.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from fake_server import Failure, FakeServer, Script

from engine.request import ContextOverflowError, GenerateParams
from engine.targets.base import Target
from engine.targets.cerebras import CerebrasTarget
from engine.targets.openai import OpenAITarget
from engine.targets.remote import RemoteTarget
from engine.targets.remote_config import RemoteConfigError, RetryPolicy
from engine.targets.remote_http import (
    RemoteAuthError,
    RemoteModelError,
    RemoteRequestError,
    RemoteStreamError,
    RemoteTimeoutError,
    RemoteUnavailableError,
    scrub,
)
from engine.tokenizer import Tokenizer

KEY = "csk-TEST-7f3a9b2c4d5e6f708192a3b4c5d6e7f8"
FAST = RetryPolicy(max_retries=2, base_delay_s=0.02, max_delay_s=0.1)
TEXT = "def add(a, b):\n    return a + b\n"


@pytest.fixture
def make(fake: FakeServer, tokenizer: Tokenizer) -> Iterator:
    made: list[RemoteTarget] = []

    def build(cls: type[RemoteTarget] = CerebrasTarget, **settings: object) -> RemoteTarget:
        settings = {"base_url": fake.base_url, "model": "fake-coder", "api_key": KEY,
                    "env": {}, "retry": FAST, "read_timeout_s": 5.0, **settings}
        target = cls.from_settings(tokenizer=tokenizer, **settings)  # type: ignore[arg-type]
        made.append(target)
        return target

    yield build
    for target in made:
        target.close()


def fim_tokens(tok: Tokenizer, prefix: str, suffix: str, files: dict[str, str] | None = None
               ) -> tuple[int, ...]:
    sp = tok.special_ids
    ids: list[int] = []
    for path, text in (files or {}).items():
        ids += [sp["<|file_sep|>"], *tok.encode(f"{path}\n"), *tok.encode(text)]
    ids += [sp["<|fim_prefix|>"], *tok.encode(prefix), sp["<|fim_suffix|>"], *tok.encode(suffix),
            sp["<|fim_middle|>"]]
    return tuple(ids)


def edit_tokens(tok: Tokenizer, before: str, region: str, cursor: int, after: str,
                instruction: str | None = None) -> tuple[int, ...]:
    sp = tok.special_ids
    ids: list[int] = []
    if instruction:
        ids += [sp["<|instruction|>"], *tok.encode(instruction + "\n")]
    ids += [sp["<|edit_history|>"], *tok.encode("--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x\n+y\n"),
            sp["<|file_sep|>"], *tok.encode("m.py\n"), *tok.encode(before),
            sp["<|region_start|>"], *tok.encode(region[:cursor]), sp["<|cursor|>"],
            *tok.encode(region[cursor:]), sp["<|region_end|>"], *tok.encode(after),
            sp["<|rewrite|>"]]
    return tuple(ids)


def complete(tok: Tokenizer, **extra: object) -> GenerateParams:
    fields: dict = {"tokens": fim_tokens(tok, "import math\n\n", "\nprint(add(1, 2))\n"),
                    "max_tokens": 32, "stop": ("\n\n\n",), **extra}
    return GenerateParams(**fields)


# -- streaming, stats and the request -------------------------------------------------------

def test_a_stream_becomes_text_stats_and_timing(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script()
    target = make()
    assert isinstance(target, Target)
    deltas: list[str] = []
    result = target.generate(complete(tokenizer), on_text=lambda text, ids: deltas.append(text))
    assert result.text == TEXT and "".join(deltas) == TEXT
    assert result.finish_reason == "eos"
    assert result.tokens == []  # the remote ids are unknown; output_tokens counts them
    assert {k: result.stats[k] for k in ("prompt_tokens", "cached_prompt_tokens",
                                         "output_tokens", "forward_passes",
                                         "accepted_draft_tokens")} == {
        "prompt_tokens": 120, "cached_prompt_tokens": 64, "output_tokens": 9,
        "forward_passes": None, "accepted_draft_tokens": 0}
    timing = result.timing
    assert timing["simulated"] is None and timing["remote"]["total_time"] == 0.0151
    assert 0 < timing["ttft_ms"] <= timing["total_ms"] < 5000

    (post,) = fake.posts()
    assert post.path == "/v1/chat/completions"
    assert post.headers["authorization"] == f"Bearer {KEY}"
    body = post.body
    assert body["model"] == "fake-coder" and body["stream"] is True
    assert body["max_completion_tokens"] == 32 and body["stop"] == ["\n\n\n"]
    assert "prediction" not in body  # a completion has no draft
    system, user = body["messages"]
    assert system["role"] == "system" and "only the code" in system["content"]
    assert "import math\n\n<CURSOR>\nprint(add(1, 2))" in user["content"]
    assert "<|fim_prefix|>" not in user["content"]


def test_info_reports_the_remote_and_the_rate_limits(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script()
    target = make()
    info = target.info()
    assert info["target"] == "cerebras" and info["model"] == "fake-coder"
    assert info["remote"] is True and info["untrained"] is False and info["fim_order"] == "psm"
    assert info["context_limit"] == 128_000
    assert info["special_tokens"] == tokenizer.special_ids
    assert info["rate_limits"] == {}
    target.generate(complete(tokenizer))
    limits = target.info()["rate_limits"]
    assert limits["requests_day"] == {"limit": 14400, "remaining": 14399, "reset": 33011.38}
    assert limits["tokens_minute"]["remaining"] == 59871
    assert KEY not in repr(target.info()) and KEY not in repr(target.config)


def test_an_edit_sends_its_region_as_the_predicted_output(fake, make, tokenizer):
    region = "    return a - b\n"
    fake.scripts["fake-coder"] = Script(
        chunks=("    return", " a + b"),  # no final newline: the region's is kept
        usage={"prompt_tokens": 50, "completion_tokens": 6,
               "completion_tokens_details": {"accepted_prediction_tokens": 5,
                                             "rejected_prediction_tokens": 1}})
    target = make()
    params = GenerateParams(tokens=edit_tokens(tokenizer, "def add(a, b):\n", region, 11,
                                               "\nprint(1)\n", instruction="fix it"),
                            max_tokens=20, draft=region, temperature=0.0)
    result = target.generate(params)
    assert result.text == "    return a + b\n"
    assert result.stats["accepted_draft_tokens"] == 5
    assert result.stats["rejected_draft_tokens"] == 1
    body = fake.posts()[0].body
    assert body["prediction"] == {"type": "content", "content": region}
    system, user = body["messages"]
    assert "<REGION>" in system["content"]
    assert ("def add(a, b):\n<REGION>    return <CURSOR>a - b\n</REGION>\nprint(1)"
            in user["content"])
    assert "Instruction: fix it" in user["content"] and "+y" in user["content"]

    target.generate(GenerateParams(tokens=params.tokens, draft=region, temperature=0.7))
    assert "prediction" not in fake.posts()[1].body  # sampled: a prediction would not hold


def test_a_model_that_refuses_predictions_is_asked_again_without(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script(
        fail_first=(Failure(400, "prediction is not supported for this model"),))
    target = make()
    params = GenerateParams(tokens=edit_tokens(tokenizer, "", "x = 1\n", 0, ""),
                            draft="x = 1\n")
    assert target.generate(params).text == TEXT
    first, second = fake.posts()
    assert "prediction" in first.body and "prediction" not in second.body
    target.generate(params)
    assert "prediction" not in fake.posts()[2].body  # remembered


def test_completions_endpoint_sends_the_prompt_as_text_with_markers(fake, make, tokenizer):
    fake.scripts["qwen"] = Script(chunks=("a + ", "b"))
    target = make(OpenAITarget, model="qwen", api_key=None)
    params = GenerateParams(tokens=fim_tokens(tokenizer, "x = ad", "\n", {"u.py": "y = 1\n"}),
                            heal="d", max_tokens=8, stop=("\n\n",))
    assert target.generate(params).text == "a + b"
    post = fake.posts()[0]
    assert post.path == "/v1/completions" and "authorization" not in post.headers
    # The healed text goes back before <|fim_suffix|>: a server cannot constrain a token.
    assert post.body["prompt"] == ("<|file_sep|>u.py\ny = 1\n<|fim_prefix|>x = add"
                                   "<|fim_suffix|>\n<|fim_middle|>")
    assert post.body["max_tokens"] == 8 and post.body["stream_options"] == {
        "include_usage": True}
    # A server that takes `suffix` applies its own FIM template to prompt + suffix.
    make(OpenAITarget, model="qwen", send_suffix=True).generate(params)
    body = fake.posts()[1].body
    assert body["prompt"] == "<|file_sep|>u.py\ny = 1\nx = add" and body["suffix"] == "\n"


def test_stop_strings_and_fences_are_applied_locally(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script(chunks=("```py", "thon\nx = 1\n", "\ny = 2\n```\nDone."))
    target = make()
    result = target.generate(complete(tokenizer, stop=("\n\n",)))
    assert result.text == "x = 1" and result.finish_reason == "stop"
    fenced = target.generate(complete(tokenizer, stop=()))
    assert fenced.text == "x = 1\n\ny = 2"


def test_a_server_that_ignores_stream_is_read_whole(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script(json_answer=True)
    result = make().generate(complete(tokenizer))
    assert result.text == TEXT and result.stats["prompt_tokens"] == 120


def test_without_a_model_id_a_listed_coder_model_is_chosen(fake, make, tokenizer):
    fake.scripts.update({"llama-3.3-70b": Script(), "qwen-3-coder-480b": Script()})
    target = make(model=None)
    target.generate(complete(tokenizer))
    assert target.info()["model"] == "qwen-3-coder-480b"


# -- failures ------------------------------------------------------------------------------

def test_429_with_retry_after_then_success(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script(
        fail_first=(Failure(429, "slow down", {"Retry-After": "0.3"}),))
    started = time.perf_counter()
    result = make().generate(complete(tokenizer))
    assert result.text == TEXT and result.stats["attempts"] == 2
    assert time.perf_counter() - started >= 0.3  # Retry-After, not the 20 ms back-off
    assert len(fake.posts()) == 2


def test_500_then_success_and_retries_run_out(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script(fail_first=(Failure(500), Failure(503)))
    assert make().generate(complete(tokenizer)).text == TEXT
    assert len(fake.posts()) == 3
    fake.scripts["down"] = Script(always=Failure(503, "overloaded"))
    with pytest.raises(RemoteUnavailableError, match="HTTP 503 after retries: overloaded"):
        make(model="down").generate(complete(tokenizer))
    assert len([p for p in fake.posts() if p.body["model"] == "down"]) == 3


@pytest.mark.parametrize("status", [400, 402, 422])
def test_other_4xx_are_never_retried(fake, make, tokenizer, status):
    fake.scripts["fake-coder"] = Script(always=Failure(status, "temperature is invalid"))
    with pytest.raises(RemoteRequestError, match=f"HTTP {status}.*temperature is invalid"):
        make().generate(complete(tokenizer))
    assert len(fake.posts()) == 1


def test_a_400_context_error_is_a_context_overflow(fake, make, tokenizer):
    message = "Please reduce the length of the messages or completion. Current length is 140000"
    fake.scripts["fake-coder"] = Script(always=Failure(400, message,
                                                       code="context_length_exceeded"))
    with pytest.raises(ContextOverflowError, match="Current length is 140000"):
        make().generate(complete(tokenizer))
    with pytest.raises(ContextOverflowError, match="context limit of 10 tokens"):
        make(context_limit=10).generate(complete(tokenizer))  # refused before any request
    assert len(fake.posts()) == 1


def test_auth_errors_never_echo_the_key(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script(always=Failure(401, f"Wrong API key: {KEY[:20]}..."))
    with pytest.raises(RemoteAuthError) as caught:
        make().generate(complete(tokenizer))
    message = str(caught.value)
    assert "CEREBRAS_API_KEY" in message and "HTTP 401" in message
    assert KEY[:8] not in message and KEY[8:16] not in message
    assert len(fake.posts()) == 1


def test_a_retired_model_names_the_available_ones(fake, make, tokenizer):
    fake.scripts.update({"qwen-3-coder-480b": Script(), "gpt-oss-120b": Script()})
    with pytest.raises(RemoteModelError,
                       match="model llama-4-scout is retired or unknown; available: "
                             "qwen-3-coder-480b, gpt-oss-120b"):
        make(model="llama-4-scout").generate(complete(tokenizer))
    assert fake.posts() == []  # found out from GET /v1/models, before any completion
    # Listed, but gone by the time of the request: the 404 says the same.
    fake.scripts["fake-coder"] = Script(always=Failure(404, "model not found"))
    with pytest.raises(RemoteModelError, match="model fake-coder is retired or unknown"):
        make().generate(complete(tokenizer))


@pytest.mark.parametrize("how", ["data", "event"])
def test_an_error_mid_stream_is_reported(fake, make, tokenizer, how):
    fake.scripts["fake-coder"] = Script(mid_stream_error=how)
    deltas: list[str] = []
    with pytest.raises(RemoteStreamError, match="mid-stream: (the model crashed|stream int)"):
        make().generate(complete(tokenizer), on_text=lambda t, ids: deltas.append(t))
    assert "".join(deltas) == "def add(a, b):"  # what came before the error was streamed


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_hung_server_times_out_after_the_read_timeout(fake, make, tokenizer, where):
    fake.scripts["fake-coder"] = Script(hang=where)
    started = time.perf_counter()
    with pytest.raises(RemoteTimeoutError, match=r"for 0\.3 s|within 0\.3 s"):
        make(read_timeout_s=0.3).generate(complete(tokenizer))
    assert 0.3 <= time.perf_counter() - started < 2.0
    assert len(fake.posts()) == 1  # a read timeout is not retried


def test_an_unreachable_server_is_retried_then_reported(make, tokenizer):
    target = make(base_url="http://127.0.0.1:9/v1")  # discard port: refused
    with pytest.raises(RemoteUnavailableError, match="cannot reach http://127.0.0.1:9/v1"):
        target.generate(complete(tokenizer))


# -- cancellation -------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_cancel_during_a_hung_stream_returns_at_once(fake, make, tokenizer, where):
    fake.scripts["fake-coder"] = Script(hang=where)
    target = make(read_timeout_s=30.0)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.perf_counter()
    result = target.generate(complete(tokenizer), should_stop=stop.is_set)
    elapsed = time.perf_counter() - started
    assert result.finish_reason == "cancelled" and elapsed < 0.2 + 0.5
    assert result.text == ("def add(a, b):" if where == "body" else "")
    # The connection was closed from our side; the next request works.
    fake.scripts["fake-coder"] = Script()
    assert target.generate(complete(tokenizer)).text == TEXT


def test_a_cancel_between_chunks_stops_the_stream(fake, make, tokenizer):
    fake.scripts["fake-coder"] = Script(chunks=tuple(f"{i} " for i in range(200)),
                                        chunk_delay_s=0.01)
    seen: list[str] = []
    result = make().generate(complete(tokenizer), on_text=lambda t, ids: seen.append(t),
                             should_stop=lambda: len(seen) >= 3)
    assert result.finish_reason == "cancelled" and result.text == "0 1 2 "


# -- the key ------------------------------------------------------------------------------

def test_the_key_never_reaches_logs_errors_or_info(fake, make, tokenizer, caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    fake.scripts.update({"fake-coder": Script(fail_first=(Failure(500),)),
                         "denied": Script(always=Failure(403, f"key {KEY} may not use this")),
                         "hung": Script(hang="headers")})
    target = make()
    texts = [target.generate(complete(tokenizer)).text, repr(target.info()),
             repr(target.config), str(target.config)]
    for model, error in (("denied", RemoteAuthError), ("hung", RemoteTimeoutError),
                         ("gone", RemoteModelError)):
        with pytest.raises(error) as caught:
            make(model=model, read_timeout_s=0.2).generate(complete(tokenizer))
        texts.append(str(caught.value))
    assert all(p.headers["authorization"] == f"Bearer {KEY}" for p in fake.posts())
    assert "HTTP Request" in caplog.text or "send_request" in caplog.text  # logs were seen
    for text in [caplog.text, *texts]:
        assert KEY not in text and scrub(text, KEY) == text


def test_a_missing_key_is_a_configuration_error(tokenizer):
    with pytest.raises(RemoteConfigError, match=r"\$CEREBRAS_API_KEY"):
        CerebrasTarget.from_settings(env={}, tokenizer=tokenizer)
    with pytest.raises(RemoteConfigError, match="http"):
        OpenAITarget.from_settings(base_url="ftp://x", env={}, tokenizer=tokenizer)
    target = CerebrasTarget.from_settings(
        env={"CEREBRAS_API_KEY": KEY, "SPARKEDIT_REMOTE_READ_TIMEOUT": "0.5",
             "SPARKEDIT_REMOTE_MAX_RETRIES": "0"}, tokenizer=tokenizer)
    assert target.config.read_timeout_s == 0.5 and target.config.retry.max_retries == 0
    assert target.config.api_key == KEY and KEY not in repr(target.config)
    target.close()
