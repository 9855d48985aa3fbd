"""Configuration of a remote target (Cerebras or an OpenAI-compatible server).

Light on purpose (no httpx): `sparkedit engine` imports it to report a bad setting before
it loads anything. A preset per target gives the defaults; `build_config` applies the
command line, then `$SPARKEDIT_REMOTE_*` overrides, and reads the API key from the
preset's environment variable unless one is passed in. The key is kept out of `repr`
and never appears in a message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENV_PREFIX = "SPARKEDIT_REMOTE_"
ENDPOINTS = ("chat", "completions")


class RemoteConfigError(ValueError):
    """A remote target is configured wrongly (no key, a bad URL or setting)."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries of a request that failed before any output: connection errors and HTTP 408,
    409, 429 and 5xx. The n-th retry waits min(base * 2^n, max) seconds (the Cerebras SDK's
    schedule) unless the server sent `Retry-After` (seconds) of at most `max_retry_after_s`."""

    max_retries: int = 2
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay(self, retry: int, retry_after: str | None = None) -> float:
        if retry_after is not None:
            try:
                seconds = float(retry_after.strip())
            except ValueError:  # an HTTP date: rare enough to fall back to the schedule
                seconds = -1.0
            if math.isfinite(seconds) and 0 <= seconds <= self.max_retry_after_s:
                return seconds
        return min(self.base_delay_s * 2 ** retry, self.max_delay_s)


@dataclass(frozen=True, kw_only=True)
class RemoteConfig:
    target: str  # "cerebras" | "openai": names the target in every message
    base_url: str  # ends in /v1 (or wherever /chat/completions lives)
    model: str | None = None  # the remote model id; None: chosen from GET /models
    api_key: str | None = field(default=None, repr=False)
    key_env: str = ""  # where the key comes from, named in authentication errors
    endpoint: str = "chat"  # "chat" (/chat/completions) or "completions" (/completions)
    context_limit: int = 128_000
    max_output_tokens: int | None = None  # a cap on what one request may ask for
    # Models that take Predicted Outputs (`prediction`); None means every model. A model
    # that answers 400 to a prediction is dropped from the set for the process's life.
    prediction_models: frozenset[str] | None = frozenset()
    max_tokens_field: str = "max_tokens"  # Cerebras chat: "max_completion_tokens"
    max_stop_sent: int = 4  # the API's limit; every stop string is matched locally too
    stream_usage: bool = False  # send stream_options.include_usage (vLLM needs it)
    send_suffix: bool = False  # /completions with a FIM prompt: prefix as prompt + suffix
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0  # also the longest silence tolerated between chunks
    retry: RetryPolicy = RetryPolicy()
    cancel_poll_s: float = 0.01  # how often a running request checks for a cancel
    models_ttl_s: float = 600.0
    tokenizer_dir: Path | None = None  # the local tokenizer; None: the embedded model's

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise RemoteConfigError(f"endpoint must be one of {', '.join(ENDPOINTS)}, "
                                    f"not {self.endpoint!r}")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RemoteConfigError(f"--base-url must be an http(s) URL, got {self.base_url!r}")
        if self.context_limit < 1 or self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise RemoteConfigError("context limit and timeouts must be positive")

    @property
    def public_url(self) -> str:
        """The base URL without user, password, query or fragment (for messages and info)."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    def predicts(self, model: str) -> bool:
        return self.prediction_models is None or model in self.prediction_models


@dataclass(frozen=True, kw_only=True)
class RemotePreset:
    """What differs between remote targets: address, key, endpoint and request fields."""

    target: str
    base_url: str
    key_env: str
    key_required: bool
    defaults: Mapping[str, object]


def _number(env: Mapping[str, str], name: str, kind: type = float) -> float | int | None:
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise RemoteConfigError(f"${ENV_PREFIX}{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise RemoteConfigError(f"${ENV_PREFIX}{name} must not be negative")
    return value


def env_overrides(env: Mapping[str, str]) -> dict[str, object]:
    """RemoteConfig fields from `$SPARKEDIT_REMOTE_*` (tests make timeouts small here):
    CONNECT_TIMEOUT, READ_TIMEOUT, MAX_RETRIES, BACKOFF (seconds before the first retry),
    ENDPOINT (chat|completions), CONTEXT_LIMIT, PREDICTION (all, none or a comma list)."""
    out: dict[str, object] = {}
    for name, key, kind in (("CONNECT_TIMEOUT", "connect_timeout_s", float),
                            ("READ_TIMEOUT", "read_timeout_s", float),
                            ("CONTEXT_LIMIT", "context_limit", int)):
        value = _number(env, name, kind)
        if value is not None:
            out[key] = value
    retries, backoff = _number(env, "MAX_RETRIES", int), _number(env, "BACKOFF")
    if retries is not None or backoff is not None:
        policy = RetryPolicy()
        out["retry"] = replace(policy, max_retries=int(retries if retries is not None
                                                         else policy.max_retries),
                               base_delay_s=float(backoff if backoff is not None
                                                  else policy.base_delay_s))
    endpoint = env.get(ENV_PREFIX + "ENDPOINT")
    if endpoint:
        out["endpoint"] = endpoint
    prediction = env.get(ENV_PREFIX + "PREDICTION")
    if prediction:
        out["prediction_models"] = (None if prediction == "all" else frozenset()
                                    if prediction == "none"
                                    else frozenset(p.strip() for p in prediction.split(",")
                                                   if p.strip()))
    return out


def build_config(preset: RemotePreset, *, base_url: str | None = None, model: str | None = None,
                 api_key: str | None = None, tokenizer_dir: str | Path | None = None,
                 env: Mapping[str, str], **overrides: object) -> RemoteConfig:
    """The preset's defaults, then the environment's overrides, then explicit `overrides`.

    The key: `api_key` if given, else `$<preset.key_env>`; RemoteConfigError when the
    target needs one and there is none (the message names the variable, never a value)."""
    key = api_key if api_key is not None else (env.get(preset.key_env) or None)
    if preset.key_required and not key:
        raise RemoteConfigError(f"the {preset.target} target needs an API key: set "
                                f"${preset.key_env}")
    fields: dict[str, object] = {**preset.defaults, **env_overrides(env), **overrides}
    try:
        return RemoteConfig(target=preset.target, base_url=base_url or preset.base_url,
                            model=model, api_key=key, key_env=preset.key_env,
                            tokenizer_dir=Path(tokenizer_dir) if tokenizer_dir else None,
                            **fields)  # type: ignore[arg-type]
    except TypeError as exc:  # an unknown override: a programming error, said plainly
        raise RemoteConfigError(f"bad remote setting: {exc}") from None
