"""Pure pieces of the remote targets: events, fences, prompts, retries, rate limits, scrub."""

from __future__ import annotations

import pytest

from engine.request import ContextOverflowError
from engine.targets.remote_config import RetryPolicy
from engine.targets.remote_http import (
    RemoteAuthError,
    RemoteStreamError,
    SseReader,
    error_details,
    rate_limits,
    scrub,
    status_error,
)
from engine.targets.remote_prompt import FenceFilter, parse_prompt, split_at_markers


def feed_all(reader: SseReader, lines: list[str]) -> list:
    return [c for c in map(reader.feed, lines) if c is not None]


def test_sse_events_one_line_several_lines_comments_and_done():
    reader = SseReader("t", chat=True, secret=None)
    chunks = feed_all(reader, [
        ": keep-alive", "", 'data: {"choices": [{"delta": {"content": "a"}}]}', "",
        'data: {"choices": [{"delta":', 'data: {"content": "b"}, "finish_reason": "stop"}]}',
        "", 'data: {"choices": [], "usage": {"prompt_tokens": 3}, "time_info": {"total_time": 1}}',
        "", "data: [DONE]", ""])
    assert [c.text for c in chunks[:2]] == ["a", "b"] and chunks[1].finish_reason == "stop"
    assert chunks[2].usage == {"prompt_tokens": 3} and chunks[2].time_info == {"total_time": 1}
    assert chunks[3] is SseReader.DONE


@pytest.mark.parametrize("lines", [
    ['data: {"error": {"message": "boom", "code": "x"}}'],
    ["event: error", 'data: {"message": "boom"}', ""],
    ["event: error", "data: boom", ""],
])
def test_error_events_raise(lines):
    with pytest.raises(RemoteStreamError, match="mid-stream: boom"):
        feed_all(SseReader("t", chat=False, secret=None), lines)


def test_malformed_data_raises_without_the_key():
    with pytest.raises(RemoteStreamError, match="malformed") as caught:
        feed_all(SseReader("t", chat=False, secret="secret-key-123456"),
                 ["data: not json secret-key-123456", ""])
    assert "secret-key" not in str(caught.value)


@pytest.mark.parametrize(("pieces", "expected"), [
    (["def f():\n", "    return 1\n"], "def f():\n    return 1\n"),
    (["```python\n", "x = 1\n", "```\nThat is all."], "x = 1"),
    (["```", "\nx = 1\n``", "`"], "x = 1"),
    (["``", "` is a fence"], "``` is a fence"),  # no line end: not a fence after all
    (["`x` + 1"], "`x` + 1"),
    (["```py\n```"], ""),
    (["```py\na\n\n", "b\n"], "a\n\nb\n"),  # no closing fence: everything after the opening
])
def test_fences_are_stripped_as_they_stream(pieces, expected):
    fence = FenceFilter()
    out = "".join(fence.feed(p) for p in pieces) + fence.flush()
    assert out == expected


def test_prompt_parts_split_at_token_ids_not_at_marker_strings(tokenizer):
    sp = tokenizer.special_ids
    # A file that holds a marker string as text: it stays text.
    ids = [sp["<|file_sep|>"], *tokenizer.encode("a.py\ns = '<|fim_suffix|>'\n"),
           sp["<|edit_history|>"], *tokenizer.encode("-x\n+y\n"),
           sp["<|fim_prefix|>"], *tokenizer.encode("def f(x):\n    return x."),
           sp["<|fim_suffix|>"], *tokenizer.encode("\n"), sp["<|fim_middle|>"]]
    parts = parse_prompt(split_at_markers(tokenizer, ids, sp), heal="up")
    assert parts.kind == "fim"
    assert parts.files == (("a.py", "s = '<|fim_suffix|>'\n"),)
    assert parts.history == "-x\n+y\n"
    assert parts.prefix == "def f(x):\n    return x.up" and parts.suffix == "\n"
    assert parts.raw.endswith("<|fim_prefix|>def f(x):\n    return x.up<|fim_suffix|>\n"
                              "<|fim_middle|>")
    assert parts.head == "<|file_sep|>a.py\ns = '<|fim_suffix|>'\n<|edit_history|>-x\n+y\n"
    plain = parse_prompt(split_at_markers(tokenizer, tokenizer.encode("hello"), sp))
    assert plain.kind == "text" and plain.raw == "hello"


def test_retry_delays_follow_the_sdk_schedule_and_retry_after():
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert policy.delay(0, "3") == 3.0 and policy.delay(1, "0.25") == 0.25
    assert policy.delay(0, "Wed, 21 Oct 2026 07:28:00 GMT") == 0.5
    assert policy.delay(0, "3600") == 0.5  # longer than anyone waits for a keystroke


def test_status_errors_and_details():
    assert error_details(b'{"error": {"message": "m", "code": "c"}}') == ("m", "c")
    assert error_details(b'{"message": "m", "type": "t", "code": null}') == ("m", "t")
    assert error_details(b"<html> bad   gateway </html>") == ("<html> bad gateway </html>", None)
    assert isinstance(status_error("t", 400, "prompt is too long", None, key_env="K"),
                      ContextOverflowError)
    auth = status_error("t", 403, "no", None, key_env="CEREBRAS_API_KEY")
    assert isinstance(auth, RemoteAuthError) and "$CEREBRAS_API_KEY" in str(auth)


def test_rate_limits_from_headers():
    headers = {"x-ratelimit-limit-requests-day": "100", "x-ratelimit-reset-tokens-minute": "6m0s"}
    assert rate_limits(headers) == {"requests_day": {"limit": 100},
                                    "tokens_minute": {"reset": "6m0s"}}


def test_scrub_removes_the_key_and_pieces_of_it():
    key = "csk-abcdefghijklmnopqrstuvwxyz"
    text = f"bad key {key}; you sent csk-abcdefgh...wxyz"
    assert "abcdefgh" not in scrub(text, key) and "csk-" not in scrub(text, key)
    assert scrub("nothing here", key) == "nothing here" and scrub("x", None) == "x"
