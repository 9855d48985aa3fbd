"""A remote target: /chat/completions or /completions over HTTP, streamed, with httpx.

Shared by the Cerebras target and OpenAI-compatible servers (engine/targets/cerebras.py,
engine/targets/openai.py); the wire details are in remote_http.py, the prompt layouts in
remote_prompt.py. Tokenizing and `info` use the LOCAL tokenizer (the embedded model's), so
the language server counts its budget and lays out its prompts as for the local model.

Cancellation at once. The scheduler runs `generate` on its one worker thread and cancels by
setting the job's stop event (from the event-loop thread), which the target sees only
through `should_stop()`. So each `generate` runs the request as a task on this target's
own event loop, driven by that worker thread (`run_until_complete`), with a timer on the
same loop that polls `should_stop` every `cancel_poll_s` (10 ms). When it turns True the
timer cancels the task wherever it waits: connecting, waiting for the headers of a hung
server, between chunks, in a retry's back-off. The task's cleanup closes the response,
and httpx closes a connection whose response was not read to its end, so the server is
never waited for: a cancel returns within one poll interval (tests assert < 0.5 s,
measured ~10 ms). Between chunks `should_stop` is also checked directly. Nothing touches
the loop from another thread, so no locking is involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx

from engine.generate import StopMatcher
from engine.request import MAX_STOP_STRINGS, GenerateParams, GenerateResult, check_context
from engine.targets.base import OnText, ShouldStop
from engine.targets.remote_config import RemoteConfig, RemotePreset, build_config
from engine.targets.remote_http import (
    Chunk,
    RemoteError,
    RemoteStreamError,
    RemoteTimeoutError,
    RemoteUnavailableError,
    SseReader,
    error_details,
    is_retryable,
    rate_limits,
    read_chunk,
    refuses_prediction,
    scrub,
    status_error,
    usage_stats,
)
from engine.targets.remote_models import ModelResolver
from engine.targets.remote_prompt import (
    FenceFilter,
    PromptParts,
    chat_messages,
    parse_prompt,
    split_at_markers,
)
from engine.tokenizer import Tokenizer

log = logging.getLogger("sparkedit.engine.remote")

USER_AGENT = "sparkedit/0.1"
STREAM_HEADERS = {"Accept": "text/event-stream"}
DRAIN_S = 0.5  # how long the end of a finished stream may take before the connection is cut


@dataclass
class _Run:
    """One request's progress, readable when its task is cancelled midway."""

    started: float = field(default_factory=time.perf_counter)
    text: str = ""
    first_at: float | None = None
    attempts: int = 0
    predicted: bool = False
    usage: dict[str, Any] | None = None
    time_info: dict[str, Any] | None = None

    def result(self, finish: str) -> GenerateResult:
        now = time.perf_counter()
        ttft = (self.first_at - self.started) * 1e3 if self.first_at is not None else None
        stats = usage_stats(self.usage, self.predicted)
        stats["attempts"] = self.attempts
        # `tokens` stays empty: the remote model's token ids are not known here, and the
        # local tokenizer's would be a different vocabulary (output_tokens has the count).
        return GenerateResult(
            text=self.text, tokens=[], finish_reason=finish, stats=stats,
            timing={"context_ms": None, "queue_ms": None, "prefill_ms": None,
                    "ttft_ms": ttft,
                    "decode_ms": (now - self.first_at) * 1e3 if self.first_at else 0.0,
                    "total_ms": (now - self.started) * 1e3, "simulated": None,
                    "remote": self.time_info})


class RemoteTarget:
    """A Target whose forward passes run on a remote server. Not for two threads at once:
    `generate` and `close` belong to the scheduler's worker; `info` and `tokenize` may be
    called from anywhere (they read only values that are replaced whole)."""

    name = "remote"
    preset: ClassVar[RemotePreset | None] = None  # set by each remote target

    @classmethod
    def from_settings(cls, *, base_url: str | None = None, model: str | None = None,
                      api_key: str | None = None, tokenizer_dir: str | Path | None = None,
                      env: Mapping[str, str] | None = None, tokenizer: Tokenizer | None = None,
                      **overrides: object) -> Self:
        """The preset's target with these settings (see remote_config.build_config); raises
        RemoteConfigError (a ValueError) for a missing key or a bad setting."""
        assert cls.preset is not None, f"{cls.__name__} has no preset"
        config = build_config(cls.preset, base_url=base_url, model=model, api_key=api_key,
                              tokenizer_dir=tokenizer_dir,
                              env=os.environ if env is None else env, **overrides)
        return cls(config, tokenizer)

    def __init__(self, config: RemoteConfig, tokenizer: Tokenizer | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        if tokenizer is None:
            from engine.models import default_model_dir

            tokenizer = Tokenizer.from_dir(config.tokenizer_dir or default_model_dir())
        self.tokenizer = tokenizer
        self._special = {k: int(v) for k, v in tokenizer.special_ids.items()}
        self._key = config.api_key
        headers = {"User-Agent": USER_AGENT}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/", headers=headers, transport=transport,
            timeout=httpx.Timeout(connect=config.connect_timeout_s,
                                  read=config.read_timeout_s, write=config.read_timeout_s,
                                  pool=config.connect_timeout_s))
        self._models = ModelResolver(self._client, config, self._note_rate_limits)
        self._no_prediction: set[str] = set()  # models that refused `prediction` (worker)
        self._rate_limits: dict[str, Any] = {}
        self._path = "chat/completions" if config.endpoint == "chat" else "completions"

    # -- any thread

    def info(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "model": self._models.model, "target": self.name, "remote": True,
            "base_url": cfg.public_url, "endpoint": cfg.endpoint,
            "context_limit": cfg.context_limit, "vocab_size": self.tokenizer.vocab_size,
            "untrained": False, "fim_order": "psm", "special_tokens": dict(self._special),
            "prediction": cfg.prediction_models is None or bool(cfg.prediction_models),
            "rate_limits": {k: dict(v) for k, v in self._rate_limits.items()},
            "limits": {"max_tokens": cfg.max_output_tokens or cfg.context_limit,
                       "max_prompt_tokens": cfg.context_limit, "max_stop": MAX_STOP_STRINGS},
        }

    def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]:
        if not offsets:
            return {"tokens": [int(t) for t in self.tokenizer.encode(text)]}
        ids, spans = self.tokenizer.encode_with_offsets(text)
        return {"tokens": [int(t) for t in ids], "offsets": [[int(s), int(e)] for s, e in spans]}

    # -- the worker thread

    def generate(self, params: GenerateParams, on_text: OnText | None = None,
                 should_stop: ShouldStop | None = None) -> GenerateResult:
        stop = should_stop or (lambda: False)
        run = _Run()
        cancelled = self._loop.run_until_complete(
            self._watched(self._generate(params, on_text, stop, run), stop))
        return run.result("cancelled") if cancelled is None else cancelled

    def prefill(self, params: GenerateParams,
                should_stop: ShouldStop | None = None) -> dict[str, Any]:
        """Nothing to warm here: the remote server caches prompts itself (Cerebras in
        128-token blocks, automatically)."""
        return {"prompt_tokens": 0, "cached_tokens": 0, "prefilled_tokens": 0,
                "complete": True, "total_ms": 0.0, "skipped": "remote target"}

    def score(self, tokens: list[int],
              should_stop: ShouldStop | None = None) -> list[float | None]:
        raise RemoteError(f"{self.config.target}: scoring is not available on a remote target")

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()

    async def _watched(self, work: Coroutine[Any, Any, GenerateResult],
                       should_stop: Callable[[], bool]) -> GenerateResult | None:
        """`work`'s result, or None once `should_stop()` turned True: a timer on this loop
        polls it and cancels the task at whatever it awaits; its cleanup closes the
        connection. (A timer, not a second task: nothing to schedule per chunk.)"""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        stopped = False
        handle: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal stopped, handle
            if should_stop():
                stopped = True
                task.cancel()
            else:
                handle = loop.call_later(self.config.cancel_poll_s, check)

        handle = loop.call_later(self.config.cancel_poll_s, check)
        try:
            return await work
        except asyncio.CancelledError:
            if not stopped:
                raise
            return None
        finally:
            handle.cancel()

    async def _generate(self, params: GenerateParams, on_text: OnText | None,
                        should_stop: ShouldStop, run: _Run) -> GenerateResult:
        ids = list(params.tokens) if params.tokens is not None else \
            self.tokenizer.encode_prompt(params.prompt or "")
        check_context(len(ids), self.config.context_limit)
        parts = parse_prompt(split_at_markers(self.tokenizer, ids, self._special), params.heal)
        model = await self._models.resolve()
        body = self._body(params, parts, model)
        run.predicted = "prediction" in body
        response = await self._open(body, model, run)
        try:
            return await self._read(response, params, parts, on_text, should_stop, run)
        except httpx.ReadTimeout:
            raise RemoteTimeoutError(
                f"{self.config.target}: no data from {self.config.public_url} for "
                f"{self.config.read_timeout_s:g} s (read timeout)") from None
        except httpx.TransportError as exc:
            raise RemoteStreamError(f"{self.config.target}: the connection broke mid-stream "
                                    f"({type(exc).__name__})") from None
        finally:
            await response.aclose()

    # -- the request

    def _body(self, params: GenerateParams, parts: PromptParts, model: str) -> dict[str, Any]:
        cfg = self.config
        max_tokens = min(params.max_tokens, cfg.max_output_tokens or params.max_tokens)
        body: dict[str, Any] = {"model": model, "stream": True,
                                cfg.max_tokens_field: max_tokens,
                                "temperature": params.temperature, "top_p": params.top_p}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop[:cfg.max_stop_sent])
        if cfg.stream_usage:
            body["stream_options"] = {"include_usage": True}
        if cfg.endpoint == "chat":
            body["messages"] = chat_messages(parts)
            # Predicted Outputs: the server's own speculative edit; exact only when greedy.
            if (params.draft and params.temperature == 0 and cfg.predicts(model)
                    and model not in self._no_prediction):
                body["prediction"] = {"type": "content", "content": params.draft}
        elif cfg.send_suffix and parts.kind == "fim":
            body["prompt"], body["suffix"] = parts.head + parts.prefix, parts.suffix
        else:
            body["prompt"] = parts.raw
        return body

    async def _open(self, body: dict[str, Any], model: str, run: _Run) -> httpx.Response:
        """A streaming response with status 2xx, after retries; raises a RemoteError (or
        ContextOverflowError) naming the problem otherwise."""
        cfg = self.config
        retry = 0
        while True:
            run.attempts += 1
            try:
                request = self._client.build_request("POST", self._path, json=body,
                                                     headers=STREAM_HEADERS)
                response = await self._client.send(request, stream=True)
            except httpx.ReadTimeout:
                # The server took the request and never answered: retrying would double
                # the wait of an interactive request.
                raise RemoteTimeoutError(
                    f"{cfg.target}: no answer from {cfg.public_url} within "
                    f"{cfg.read_timeout_s:g} s (read timeout)") from None
            except httpx.TransportError as exc:
                if retry >= cfg.retry.max_retries:
                    kind = "timed out connecting to" if isinstance(exc, httpx.TimeoutException) \
                        else "cannot reach"
                    error = RemoteTimeoutError if isinstance(exc, httpx.TimeoutException) \
                        else RemoteUnavailableError
                    raise error(f"{cfg.target}: {kind} {cfg.public_url} "
                                f"({type(exc).__name__}: {scrub(str(exc), self._key)}) after "
                                f"{run.attempts} attempts") from None
                delay = cfg.retry.delay(retry)
                log.info("%s: %s; retrying in %.2f s", cfg.target, type(exc).__name__, delay)
            else:
                self._note_rate_limits(response.headers)
                if response.is_success:
                    return response
                raw = await response.aread()
                await response.aclose()
                message, code = error_details(raw)
                message = scrub(message, self._key)
                status = response.status_code
                if "prediction" in body and refuses_prediction(status, message):
                    log.info("%s: %s does not take predicted outputs; sending without",
                             cfg.target, model)
                    self._no_prediction.add(model)
                    body = {k: v for k, v in body.items() if k != "prediction"}
                    run.predicted = False
                    continue
                if status == 404:
                    raise await self._models.missing(model, message)
                if not is_retryable(status) or retry >= cfg.retry.max_retries:
                    raise status_error(cfg.target, status, message, code,
                                       key_env=cfg.key_env) from None
                delay = cfg.retry.delay(retry, response.headers.get("retry-after"))
                log.info("%s: HTTP %d; retrying in %.2f s", cfg.target, status, delay)
            retry += 1
            await asyncio.sleep(delay)

    async def _read(self, response: httpx.Response, params: GenerateParams, parts: PromptParts,
                    on_text: OnText | None, should_stop: ShouldStop, run: _Run
                    ) -> GenerateResult:
        cfg = self.config
        chat = cfg.endpoint == "chat"
        fence = FenceFilter() if chat else None
        stops = StopMatcher(params.stop)
        # After a local stop, read on (no more output) only when the server got every stop
        # string too: it ends there, and the connection stays open for the next request.
        drain = len(params.stop) <= cfg.max_stop_sent
        finish: str | None = None

        def emit(text: str) -> None:
            delta = stops.feed(text)
            run.text = stops.text
            if delta and on_text is not None:
                on_text(delta, [])

        def take(chunk: Chunk) -> bool:
            """Account for one chunk and emit its text; True when reading should end."""
            nonlocal finish
            if chunk.text and run.first_at is None:
                run.first_at = time.perf_counter()
            if chunk.usage is not None:
                run.usage = chunk.usage
            if chunk.time_info is not None:
                run.time_info = chunk.time_info
            finish = chunk.finish_reason or finish
            if chunk.text and not stops.stopped:
                emit(fence.feed(chunk.text) if fence is not None else chunk.text)
                if fence is not None and fence.done and not stops.stopped:
                    return True  # the closing fence: whatever follows is prose
            return stops.stopped and not drain

        if "json" in response.headers.get("content-type", ""):  # a server that ignored stream
            try:
                take(read_chunk(json.loads(await response.aread()), chat))
            except ValueError:
                raise RemoteStreamError(f"{cfg.target}: the answer is malformed JSON") from None
        else:
            reader = SseReader(cfg.target, chat, self._key)
            lines = response.aiter_lines()
            async for line in lines:
                chunk = reader.feed(line)
                if chunk is None:
                    continue  # a blank line, a comment, the first of several data lines
                if chunk is SseReader.DONE:
                    await self._drain(lines)
                    break
                if take(chunk):
                    break
                if should_stop():
                    return run.result("cancelled")
            else:
                last = reader.flush()  # a stream that ended without a blank line or [DONE]
                if last is not None and last is not SseReader.DONE:
                    take(last)
        if not stops.stopped:
            emit(fence.flush() if fence is not None else "")
            if parts.kind == "edit" and chat and params.draft and params.draft.endswith("\n") \
                    and stops.text and not stops.text.endswith("\n") and not stops.stopped:
                emit("\n")  # chat models drop a region's final newline; the edit keeps it
            tail = stops.flush()
            run.text = stops.text
            if tail and on_text is not None:
                on_text(tail, [])
        if stops.stopped:
            return run.result("stop")
        return run.result("length" if finish == "length" else "eos")

    @staticmethod
    async def _drain(lines: AsyncIterator[str]) -> None:
        """Read a finished stream to its end, so the connection goes back to the pool
        (a response closed before its end closes the connection: a new TLS handshake for
        the next keystroke); a server that lingers after [DONE] is cut off."""
        with contextlib.suppress(TimeoutError, httpx.TransportError):
            async with asyncio.timeout(DRAIN_S):
                async for _ in lines:
                    pass

    def _note_rate_limits(self, headers: httpx.Headers) -> None:
        limits = rate_limits(headers)
        if limits:
            self._rate_limits = limits  # replaced whole: `info` reads it from other threads
