"""Remote model ids: resolved through GET /models, because ids change and retire often.

A configured id missing from the list, or a request answered 404, becomes "model X is
retired or unknown; available: ..."; with no id configured, a listed model is chosen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from engine.targets.remote_config import RemoteConfig
from engine.targets.remote_http import (
    RemoteAuthError,
    RemoteError,
    RemoteModelError,
    RemoteRequestError,
    RemoteStreamError,
    RemoteUnavailableError,
    error_details,
    retired_model,
    scrub,
    status_error,
)

log = logging.getLogger("sparkedit.engine.remote")


class ModelCatalog:
    """The model ids GET /models listed. Key: the target's base URL (one catalog per
    target); size: one list; an entry expires after `ttl_s`, and is dropped at once when a
    request answers 404 (a model retired under us). A failed listing is remembered for
    the same time, so an unreachable /models costs one request, not one per keystroke."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._ids: list[str] | None = None
        self._at = -float("inf")

    def fresh(self, now: float) -> bool:
        return now - self._at < self.ttl_s

    def get(self, now: float) -> list[str] | None:
        return self._ids if self.fresh(now) else None

    def put(self, ids: list[str] | None, now: float) -> None:
        self._ids, self._at = ids, now

    def invalidate(self) -> None:
        self._ids, self._at = None, -float("inf")


class ModelResolver:
    """The model id of one target. Used from the target's worker thread only; `model` is
    a plain attribute that `info` may read from any thread (it is replaced whole)."""

    def __init__(self, client: httpx.AsyncClient, config: RemoteConfig,
                 on_headers: Callable[[httpx.Headers], None]) -> None:
        self._client = client
        self._config = config
        self._on_headers = on_headers
        self._catalog = ModelCatalog(config.models_ttl_s)
        self.model = config.model

    async def list(self) -> list[str]:
        """GET /models; RemoteAuthError for 401/403, RemoteError for any other failure."""
        cfg = self._config
        try:
            response = await self._client.get("models")
        except httpx.TransportError as exc:
            raise RemoteUnavailableError(f"{cfg.target}: cannot list models at "
                                         f"{cfg.public_url} ({type(exc).__name__})") from None
        self._on_headers(response.headers)
        if not response.is_success:
            message, code = error_details(response.content)
            message = scrub(message, cfg.api_key)
            if response.status_code in (401, 403):
                raise status_error(cfg.target, response.status_code, message, code,
                                   key_env=cfg.key_env)
            raise RemoteRequestError(f"{cfg.target}: GET /models answered HTTP "
                                     f"{response.status_code}: {message}")
        try:
            data = response.json().get("data") or []
            return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
        except (ValueError, AttributeError, TypeError):
            raise RemoteStreamError(f"{cfg.target}: GET /models answered malformed JSON") \
                from None

    async def resolve(self) -> str:
        """The configured id, checked against GET /models (cached); with none configured,
        the first listed model whose id says "coder", else the first listed. A model list
        that cannot be had (other than for a refused key) leaves the id unchecked."""
        now = time.monotonic()
        ids = self._catalog.get(now)
        if ids is None and not self._catalog.fresh(now):
            try:
                ids = await self.list()
            except RemoteAuthError:
                raise
            except RemoteError as exc:
                # Unreachable: the request that follows fails too and says so; one line
                # is enough for the user (a refusal of /models alone is worth a warning).
                level = logging.INFO if isinstance(exc, RemoteUnavailableError) \
                    else logging.WARNING
                log.log(level, "%s; the model id is used unchecked", exc)
            self._catalog.put(ids, now)
        target = self._config.target
        if self.model is None:
            if not ids:
                raise RemoteModelError(f"{target}: no model configured (--model) and no "
                                       "model list from the server")
            self.model = next((m for m in ids if "coder" in m.lower()), ids[0])
            log.info("%s: using model %s", target, self.model)
        elif ids is not None and self.model not in ids:
            raise retired_model(target, self.model, ids)
        return self.model

    async def missing(self, model: str, message: str) -> RemoteError:
        """The error for a request answered 404: the model, with what is available now."""
        self._catalog.invalidate()
        try:
            ids: list[str] | None = await self.list()
        except RemoteError:
            ids = None
        self._catalog.put(ids, time.monotonic())
        if ids is None:
            return RemoteModelError(f"{self._config.target}: HTTP 404 for model {model} at "
                                    f"{self._config.public_url}: {message}")
        return retired_model(self._config.target, model, ids)
