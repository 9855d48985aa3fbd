"""The engine's msgpack-RPC server side and its asyncio client, `EngineClient`.

Framing lives in engine/rpc_framing.py and is re-exported here, so users of the protocol
import everything from `engine.rpc`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from engine.rpc_framing import (
    ERROR_CODES,
    MAX_FRAME_BYTES,
    NOTIFICATION,
    READ_CHUNK,
    REQUEST,
    RESPONSE,
    EngineConnectionError,
    EngineError,
    FrameReader,
    MalformedFrame,
    Message,
    Notification,
    Request,
    Response,
    notification_frame,
    pack,
    parse_message,
    request_frame,
    response_frame,
)
from engine.targets.base import TargetError

__all__ = [
    "ERROR_CODES", "MAX_FRAME_BYTES", "NOTIFICATION", "READ_CHUNK", "REQUEST", "RESPONSE",
    "Connection", "EngineClient", "EngineConnectionError", "EngineError", "FrameReader",
    "Handler", "MalformedFrame", "Message", "Notification", "Request", "Response",
    "RpcServer", "TokenCallback", "notification_frame", "pack", "parse_address",
    "parse_message", "request_frame", "response_frame",
]

log = logging.getLogger("sparkedit.engine.rpc")

# ---------------------------------------------------------------------------- server

Handler = Callable[["Connection", Request], Awaitable[Any]]


class Connection:
    """One client connection on the server side.

    Every frame is written whole from the event-loop thread, so frames never interleave;
    the lock only serialises waiting for the socket to drain (backpressure).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 conn_id: int) -> None:
        self.reader = reader
        self.writer = writer
        self.id = conn_id
        self.authenticated = False
        self._write_lock = asyncio.Lock()

    @property
    def closed(self) -> bool:
        return self.writer.is_closing()

    def write_nowait(self, frame: bytes) -> None:
        """Queue a frame; for callbacks that cannot await (token notifications)."""
        if not self.writer.is_closing():
            self.writer.write(frame)

    async def send(self, frame: bytes) -> None:
        async with self._write_lock:
            if self.writer.is_closing():
                return
            self.writer.write(frame)
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()

    def notify_nowait(self, method: str, params: Mapping[str, Any]) -> None:
        self.write_nowait(notification_frame(method, params))


class RpcServer:
    """Dispatches requests to handlers; each request runs as its own task, so a long
    `generate` does not hold up `cancel` or `health` on the same connection."""

    def __init__(self, handlers: Mapping[str, Handler], *,
                 on_disconnect: Callable[[Connection], None] | None = None,
                 authorize: Callable[[Connection, Request], bool] | None = None) -> None:
        self.handlers = dict(handlers)
        self.on_disconnect = on_disconnect
        # authorize(conn, request) -> False answers `unauthorized` (TCP before `hello`).
        self.authorize = authorize
        self.connections: set[Connection] = set()
        self._ids = itertools.count(1)

    async def handle_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        conn = Connection(reader, writer, next(self._ids))
        self.connections.add(conn)
        tasks: set[asyncio.Task[None]] = set()
        frames = FrameReader()
        try:
            while True:
                try:
                    data = await reader.read(READ_CHUNK)
                except ConnectionError:
                    break
                if not data:
                    break
                for msg in frames.feed(data):
                    if isinstance(msg, MalformedFrame):
                        log.warning("connection %d: malformed frame: %s", conn.id, msg)
                        await conn.send(response_frame(
                            msg.msgid, {"code": "malformed_frame", "message": str(msg)}, None))
                    elif isinstance(msg, Request | Notification):
                        task = asyncio.create_task(self._dispatch(conn, msg))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    else:  # a client has no business answering us
                        await conn.send(response_frame(None, {
                            "code": "malformed_frame",
                            "message": "unexpected response frame from a client"}, None))
        finally:
            self.connections.discard(conn)
            if self.on_disconnect is not None:
                self.on_disconnect(conn)
            for task in tasks:
                task.cancel()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _dispatch(self, conn: Connection, msg: Request | Notification) -> None:
        msgid = msg.id if isinstance(msg, Request) else None
        try:
            if self.authorize is not None and not self.authorize(conn, msg):
                raise EngineError("unauthorized", "send `hello` with the engine token first")
            handler = self.handlers.get(msg.method)
            if handler is None:
                raise EngineError("unknown_method", f"no method named {msg.method!r}")
            request = msg if isinstance(msg, Request) else Request(-1, msg.method, msg.params)
            result = await handler(conn, request)
        except EngineError as exc:
            await conn.send(response_frame(msgid, exc.to_wire(), None))
            return
        except asyncio.CancelledError:
            raise
        except TargetError as exc:  # an expected failure of the target: one line
            log.info("%s: %s: %s", msg.method, type(exc).__name__, exc)  # the client says it
            await conn.send(response_frame(msgid, {
                "code": "target", "message": f"{type(exc).__name__}: {exc}"}, None))
            return
        except Exception as exc:  # a bug in a handler must not take the connection down
            log.exception("internal error in %s", msg.method)
            await conn.send(response_frame(msgid, {
                "code": "internal", "message": f"{type(exc).__name__}: {exc}"}, None))
            return
        if isinstance(msg, Request):
            await conn.send(response_frame(msgid, None, result))


# ---------------------------------------------------------------------------- client

TokenCallback = Callable[[str, list[int]], None]

_HOST_PORT = re.compile(r"^\[?(?P<host>[^\[\]/]*?)\]?:(?P<port>\d+)$")


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """'tcp:HOST:PORT' or 'HOST:PORT' -> ('tcp', (host, port)); anything else is a
    Unix socket path ('unix:PATH' also accepted)."""
    if address.startswith("unix:"):
        return "unix", address[5:]
    explicit = address.startswith("tcp:")
    rest = address[4:] if explicit else address
    match = _HOST_PORT.match(rest)
    if match and (explicit or os.sep not in rest):
        return "tcp", (match["host"] or "127.0.0.1", int(match["port"]))
    if explicit:
        raise ValueError(f"expected tcp:HOST:PORT, got {address!r}")
    return "unix", address


class EngineClient:
    """asyncio client: requests are multiplexed on one connection by id.

    Create with ``await EngineClient.connect(address)``; every call raises EngineError for
    an error answer and EngineConnectionError once the connection is gone.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, TokenCallback] = {}
        self._closed: EngineConnectionError | None = None
        self._read_task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, address: str, *, token: str | None = None) -> EngineClient:
        """Connect to a Unix socket path or 'tcp:HOST:PORT'. Over TCP the token (argument,
        else $SPARKEDIT_ENGINE_TOKEN) is sent in a `hello` before anything else."""
        kind, where = parse_address(address)
        try:
            if kind == "unix":
                assert isinstance(where, str)
                reader, writer = await asyncio.open_unix_connection(
                    where, limit=MAX_FRAME_BYTES)
            else:
                assert isinstance(where, tuple)
                reader, writer = await asyncio.open_connection(
                    where[0], where[1], limit=MAX_FRAME_BYTES)
        except OSError as exc:
            raise EngineConnectionError(f"cannot connect to engine at {address}: {exc}") from exc
        client = cls(reader, writer)
        if token is None and kind == "tcp":
            token = os.environ.get("SPARKEDIT_ENGINE_TOKEN")
        if token is not None:
            try:
                await client.call("hello", {"token": token})
            except BaseException:
                await client.close()
                raise
        return client

    @property
    def closed(self) -> bool:
        return self._closed is not None

    # -- public calls

    async def generate(self, params: Mapping[str, Any], on_token: TokenCallback | None = None,
                       *, on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Run one generate job. `on_token(text, tokens)` gets each streamed delta before the
        answer arrives; `on_start(job_id)` gets the id that `cancel` takes. Cancelling the
        awaiting task cancels the job in the engine, then re-raises CancelledError."""
        wire = dict(params)
        wire.setdefault("stream", on_token is not None)
        msgid = next(self._ids)
        if on_token is not None:
            self._streams[msgid] = on_token
        try:
            fut = self._send_request(msgid, "generate", wire)
            if on_start is not None:
                on_start(msgid)
            return await fut
        except asyncio.CancelledError:
            self._send_cancel(msgid)
            raise
        finally:
            self._streams.pop(msgid, None)

    async def prefill(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Warm the prefix cache with a prompt (`{prompt | tokens, document}`): answers
        `{prompt_tokens, cached_tokens, prefilled_tokens, complete, total_ms, preempted}`
        once it is cached, or early when it was cancelled or replaced (`complete` false or
        absent). Cancelling the awaiting task cancels the job in the engine."""
        msgid = next(self._ids)
        try:
            return await self._send_request(msgid, "prefill", dict(params))
        except asyncio.CancelledError:
            self._send_cancel(msgid)
            raise

    async def cancel(self, job_id: int) -> dict[str, Any]:
        return await self.call("cancel", {"id": job_id})

    async def score(self, tokens: list[int]) -> list[float | None]:
        """log p(token i | tokens before it) for each token; the first is None."""
        return (await self.call("score", {"tokens": list(tokens)}))["logprobs"]

    async def tokenize(self, text: str, offsets: bool = False) -> dict[str, Any]:
        return await self.call("tokenize", {"text": text, "offsets": offsets})

    async def info(self) -> dict[str, Any]:
        return await self.call("info", {})

    async def health(self) -> dict[str, Any]:
        return await self.call("health", {})

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """Any method by name (for methods without a wrapper, and for tests)."""
        return await self._send_request(next(self._ids), method, dict(params))

    async def close(self) -> None:
        self._fail_all(EngineConnectionError("client closed"))
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- plumbing

    def _send_request(self, msgid: int, method: str,
                      params: dict[str, Any]) -> asyncio.Future[Any]:
        if self._closed is not None:
            raise EngineConnectionError(str(self._closed))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msgid] = fut
        fut.add_done_callback(lambda _f: self._pending.pop(msgid, None))
        # write() is synchronous and buffers; waiting on drain per call would serialise
        # callers for no gain on small frames.
        self._writer.write(request_frame(msgid, method, params))
        return fut

    def _send_cancel(self, job_id: int) -> None:
        """Fire-and-forget: the caller is already being cancelled and cannot wait."""
        if self._closed is None and not self._writer.is_closing():
            self._writer.write(request_frame(next(self._ids), "cancel", {"id": job_id}))

    async def _read_loop(self) -> None:
        frames = FrameReader()
        reason = "engine closed the connection"
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    break
                for msg in frames.feed(data):
                    self._handle(msg)
        except ConnectionError as exc:
            reason = f"connection to engine lost: {exc}"
        finally:
            self._fail_all(EngineConnectionError(reason))

    def _handle(self, msg: Message | MalformedFrame) -> None:
        if isinstance(msg, Response):
            fut = self._pending.pop(msg.id, None) if msg.id is not None else None
            if fut is None:
                if msg.error is not None:
                    log.warning("engine error without a caller: %s", msg.error)
                return
            if fut.done():
                return
            if msg.error is not None:
                fut.set_exception(EngineError(str(msg.error.get("code", "internal")),
                                              str(msg.error.get("message", ""))))
            else:
                fut.set_result(msg.result)
        elif isinstance(msg, Notification):
            if msg.method != "token":
                return
            callback = self._streams.get(msg.params.get("id"))  # type: ignore[arg-type]
            if callback is None:
                return
            try:
                callback(msg.params.get("text", ""), list(msg.params.get("tokens", [])))
            except Exception:  # a caller's callback bug must not kill the reader
                log.exception("on_token callback failed")
        else:
            log.warning("unexpected frame from engine: %s", msg)

    def _fail_all(self, exc: EngineConnectionError) -> None:
        if self._closed is None:
            self._closed = exc
        pending = list(self._pending.values())
        self._pending.clear()
        for fut in pending:
            if not fut.done():
                fut.set_exception(EngineConnectionError(str(exc)))
