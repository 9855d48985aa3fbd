"""The wire of a remote target: errors, server-sent events, status codes, rate limits.

Pure functions and small records; the I/O lives in engine/targets/remote.py. Every
message that may carry text from the server passes through `scrub`, so an API key a
server echoes back ("Incorrect API key: csk-abc...") never reaches a log or a client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.request import ContextOverflowError
from engine.targets.base import TargetError

RETRY_STATUSES = frozenset({408, 409, 429})
RATE_LIMIT_SCOPES = ("requests-day", "tokens-minute")
MAX_MESSAGE_CHARS = 400
# 400 answers that mean "the prompt does not fit" (vLLM, OpenAI, Cerebras wordings).
_CONTEXT_TOO_LONG = re.compile(
    r"context.{0,24}(length|window|limit|too long|exceed)|too long|too many (prompt |input )?"
    r"tokens|maximum (context|prompt)|exceeds? the (model'?s? )?(maximum|max)", re.I)
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})


class RemoteError(TargetError):
    """A remote target failed. The message names the target and the problem, never the key;
    the engine answers it as an RPC error and keeps serving."""


class RemoteAuthError(RemoteError):
    """HTTP 401/403: the key is missing, wrong or not allowed this model."""


class RemoteModelError(RemoteError):
    """The model id is retired or unknown (absent from GET /models, or HTTP 404)."""


class RemoteTimeoutError(RemoteError):
    """No connection, or no byte for longer than the read timeout."""


class RemoteRequestError(RemoteError):
    """The server refused the request itself (a 4xx other than the above): never retried."""


class RemoteUnavailableError(RemoteError):
    """Still failing after the retries: unreachable, rate-limited or a server error."""


class RemoteStreamError(RemoteError):
    """The stream broke: an error event in it, malformed data, or a dropped connection."""


def scrub(text: str, secret: str | None) -> str:
    """`text` without the secret, nor any 8-character piece of it (servers echo parts)."""
    if not secret:
        return text
    text = text.replace(secret, "[key]")
    for i in range(max(0, len(secret) - 7)):
        piece = secret[i:i + 8]
        if piece in text:
            text = text.replace(piece, "[key]")
    return text


def error_details(body: bytes | str) -> tuple[str, str | None]:
    """(message, code) of an error body: OpenAI's {"error": {...}}, Cerebras's flat
    {"message", "type", "code"}, or plain text (shortened)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, str):
            return inner[:MAX_MESSAGE_CHARS], None
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail") or json.dumps(inner)
            code = inner.get("code") or inner.get("type")
            return str(message)[:MAX_MESSAGE_CHARS], str(code) if code is not None else None
    text = " ".join(text.split())
    return (text[:MAX_MESSAGE_CHARS] or "(no message)"), None


def is_retryable(status: int) -> bool:
    return status in RETRY_STATUSES or status >= 500


def status_error(target: str, status: int, message: str, code: str | None, *,
                 key_env: str) -> Exception:
    """The exception for a final (not retried, or retried out) HTTP error other than 404."""
    if status in (400, 413, 422) and (code in _CONTEXT_CODES
                                      or _CONTEXT_TOO_LONG.search(message)):
        return ContextOverflowError(f"{target}: {message}")
    if status in (401, 403):
        hint = f"; check ${key_env}" if key_env else ""
        what = "refused" if status == 401 else "not allowed this request"
        return RemoteAuthError(f"{target}: the API key was {what} (HTTP {status}: "
                               f"{message}){hint}")
    if is_retryable(status):
        return RemoteUnavailableError(f"{target}: HTTP {status} after retries: {message}")
    if status == 402:
        return RemoteRequestError(f"{target}: payment required (HTTP 402): {message}")
    return RemoteRequestError(f"{target}: the request was refused (HTTP {status}): {message}")


def refuses_prediction(status: int, message: str) -> bool:
    """A 400/422 that names Predicted Outputs: the model does not take `prediction`."""
    return status in (400, 422) and "predict" in message.lower()


def retired_model(target: str, model: str, available: list[str] | None) -> RemoteModelError:
    listed = ", ".join(available) if available else "(the server lists none)"
    return RemoteModelError(f"{target}: model {model} is retired or unknown; "
                            f"available: {listed}")


def _number(value: str) -> float | str:
    try:
        number = float(value)
    except ValueError:
        return value  # "6m0s" and other durations: kept as the server wrote them
    return int(number) if number.is_integer() else number


def rate_limits(headers: Mapping[str, str]) -> dict[str, dict[str, float | str]]:
    """`x-ratelimit-{limit,remaining,reset}-{requests-day,tokens-minute}` as
    {"requests_day": {"limit", "remaining", "reset"}, ...}; scopes absent are left out."""
    out: dict[str, dict[str, float | str]] = {}
    for scope in RATE_LIMIT_SCOPES:
        values = {kind: _number(value) for kind in ("limit", "remaining", "reset")
                  if (value := headers.get(f"x-ratelimit-{kind}-{scope}")) is not None}
        if values:
            out[scope.replace("-", "_")] = values
    return out


# -- server-sent events ------------------------------------------------------------------

@dataclass(slots=True)
class Chunk:
    """What one streamed (or whole) completion object contributes."""

    text: str = ""
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    time_info: dict[str, Any] | None = None


class SseReader:
    """Server-sent event lines in, completion chunks out (`feed`), `DONE` at `data: [DONE]`.

    Per the protocol, `data:` lines accumulate and a blank line dispatches them, named by
    `event:`. Every server here sends one JSON object per `data:` line, so a lone line that
    parses is dispatched at once (the blank line after it then finds nothing): the cheap
    path for the common case, the general one for the rest. An `event: error`, or a payload
    with an `error`, raises RemoteStreamError; so does data that is not JSON."""

    DONE = Chunk(finish_reason="[DONE]")

    def __init__(self, target: str, chat: bool, secret: str | None) -> None:
        self._target, self._chat, self._secret = target, chat, secret
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Chunk | None:
        if line[:5] == "data:":
            value = line[6:] if line[5:6] == " " else line[5:]
            if not self._data and not self._event and value.startswith("{"):
                try:
                    payload = json.loads(value)
                except ValueError:
                    pass  # perhaps the first line of several
                else:
                    return self._chunk(payload, "message", value)
            self._data.append(value)
        elif not line:
            return self.flush()
        elif line.startswith("event:"):
            self._event = line[6:].strip()
        return None  # a comment (":"), an id or retry field

    def flush(self) -> Chunk | None:
        """Dispatch what has accumulated (at a blank line, or at the end of the stream)."""
        if not self._data and not self._event:
            return None
        data, event = "\n".join(self._data), self._event or "message"
        self._data, self._event = [], ""
        if data == "[DONE]":
            return self.DONE
        try:
            payload = json.loads(data)
        except ValueError:
            payload = None
        if payload is None and event != "error":
            raise RemoteStreamError(f"{self._target}: malformed data in the stream: "
                                    f"{scrub(data[:200], self._secret)!r}")
        return self._chunk(payload, event, data)

    def _chunk(self, payload: Any, event: str, raw: str) -> Chunk:
        if event == "error" or (isinstance(payload, dict) and payload.get("error")):
            message, code = error_details(raw)
            suffix = f" ({code})" if code else ""
            raise RemoteStreamError(f"{self._target}: the server reported an error "
                                    f"mid-stream: {scrub(message, self._secret)}{suffix}")
        return read_chunk(payload, self._chat)


def read_chunk(payload: Any, chat: bool) -> Chunk:
    """A chat (`choices[0].delta.content`, or `message.content` when not streamed) or
    completions (`choices[0].text`) object; `usage` and Cerebras `time_info` when present.
    (Runs once per streamed chunk: kept to plain lookups.)"""
    if not isinstance(payload, dict):
        return Chunk()
    text: Any = None
    finish = None
    choices = payload.get("choices")
    if choices and isinstance(first := choices[0], dict):
        finish = first.get("finish_reason")
        if chat:
            body = first.get("delta") or first.get("message")
            text = body.get("content") if isinstance(body, dict) else None
        else:
            text = first.get("text")
    usage, info = payload.get("usage"), payload.get("time_info")
    return Chunk(text if isinstance(text, str) else "", finish,
                 usage if isinstance(usage, dict) else None,
                 info if isinstance(info, dict) else None)


def usage_stats(usage: dict[str, Any] | None, predicted: bool) -> dict[str, Any]:
    """The engine's stats from an OpenAI `usage` object; None where the server said
    nothing. A remote's forward passes are unknown."""
    usage = usage or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    output_details = usage.get("completion_tokens_details") or {}

    def count(source: dict[str, Any], key: str) -> int | None:
        value = source.get(key)
        return int(value) if isinstance(value, int | float) else None

    accepted = count(output_details, "accepted_prediction_tokens")
    rejected = count(output_details, "rejected_prediction_tokens")
    return {
        "prompt_tokens": count(usage, "prompt_tokens"),
        "cached_prompt_tokens": count(prompt_details, "cached_tokens"),
        "output_tokens": count(usage, "completion_tokens"),
        "forward_passes": None,
        "accepted_draft_tokens": accepted if predicted else 0,
        "rejected_draft_tokens": rejected if predicted else 0,
    }
