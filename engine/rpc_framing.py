"""msgpack-RPC framing for the engine protocol: messages, errors, and a stream splitter.

Wire (see docs/architecture.md, "Engine RPC"): request ``[0, id, method, params]``,
response ``[1, id, error, result]``, notification ``[2, method, params]``; params are a
map; an error is ``{"code": str, "message": str}``. Streams carry no length prefix: a
per-connection ``msgpack.Unpacker`` finds frame boundaries, so one bad frame must reset it
rather than close the connection that other requests share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2
# A 128k-token prompt is well under a megabyte of text or ids; the cap stops a peer from
# making us buffer without bound while a frame is incomplete: a frame that declares a
# gigabyte is refused once 16 MiB of it have arrived (msgpack checks no declared length
# before the bytes are there), so a connection never holds more than that.
MAX_FRAME_BYTES = 16 * 1024 * 1024
READ_CHUNK = 65536

ERROR_CODES = ("malformed_frame", "unknown_method", "invalid_params", "context_overflow",
               "unauthorized", "target", "internal")


class EngineError(Exception):
    """An error answered by the engine (or raised by a handler to be answered)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class EngineConnectionError(ConnectionError):
    """The connection to the engine is gone; every pending call fails with this."""


# ---------------------------------------------------------------------------- framing


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Response:
    id: int | None
    error: dict[str, Any] | None
    result: Any


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: dict[str, Any]


Message = Request | Response | Notification


class MalformedFrame(Exception):
    """Valid msgpack that is not a well-formed message; `id` is set when it was readable."""

    def __init__(self, message: str, msgid: int | None = None) -> None:
        super().__init__(message)
        self.msgid = msgid


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def new_unpacker() -> msgpack.Unpacker:
    # Invalid UTF-8 inside a msgpack string decodes to lone surrogates instead of failing
    # the frame: the stream stays in sync, the request's id stays readable, and
    # parse_message answers that id with where the bad string was.
    return msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                            max_buffer_size=MAX_FRAME_BYTES)


def _bad_text(obj: Any, where: str) -> str | None:
    """Where the first string that was not valid UTF-8 sits in ``obj``, or None."""
    if isinstance(obj, str):
        if obj.isascii():
            return None
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(obj, dict):
        for key, value in obj.items():
            found = _bad_text(key, f"a key of {where}") or _bad_text(value, f"{where}[{key!r}]")
            if found:
                return found
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            # Token lists are long runs of ints: skip them without a call each.
            if isinstance(value, str | dict | list | tuple):
                found = _bad_text(value, f"{where}[{i}]")
                if found:
                    return found
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _params(value: Any, msgid: int | None) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    # Stock msgpack-RPC clients send params as an array; accept one map wrapped in it.
    if isinstance(value, list | tuple) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    raise MalformedFrame("params must be a map", msgid)


def parse_message(obj: Any) -> Message:
    """Turn one unpacked object into a message, or raise MalformedFrame saying why."""
    if not isinstance(obj, list | tuple) or not obj:
        raise MalformedFrame(f"a frame must be an array, got {type(obj).__name__}")
    kind = obj[0]
    if kind == REQUEST and not isinstance(kind, bool):
        msgid = obj[1] if len(obj) > 1 and _is_id(obj[1]) else None
        if len(obj) != 4:
            raise MalformedFrame("a request is [0, id, method, params]", msgid)
        if msgid is None:
            raise MalformedFrame("a request id must be an integer")
        if not isinstance(obj[2], str):
            raise MalformedFrame("a method name must be a string", msgid)
        bad = _bad_text(obj[2], "the method name") or _bad_text(obj[3], "params")
        if bad:
            raise MalformedFrame(f"{bad} is not valid UTF-8", msgid)
        return Request(msgid, obj[2], _params(obj[3], msgid))
    if kind == RESPONSE and not isinstance(kind, bool):
        if len(obj) != 4 or not (obj[1] is None or _is_id(obj[1])):
            raise MalformedFrame("a response is [1, id, error, result]")
        error = obj[2]
        if error is not None and not isinstance(error, dict):
            error = {"code": "internal", "message": str(error)}
        return Response(obj[1], error, obj[3])
    if kind == NOTIFICATION and not isinstance(kind, bool):
        if len(obj) != 3 or not isinstance(obj[1], str):
            raise MalformedFrame("a notification is [2, method, params]")
        bad = _bad_text(obj[1], "the method name") or _bad_text(obj[2], "params")
        if bad:
            raise MalformedFrame(f"{bad} is not valid UTF-8")
        return Notification(obj[1], _params(obj[2], None))
    raise MalformedFrame(f"unknown message type {kind!r}")


def request_frame(msgid: int, method: str, params: Mapping[str, Any]) -> bytes:
    return pack([REQUEST, msgid, method, dict(params)])


def response_frame(msgid: int | None, error: Mapping[str, Any] | None, result: Any) -> bytes:
    return pack([RESPONSE, msgid, None if error is None else dict(error), result])


def notification_frame(method: str, params: Mapping[str, Any]) -> bytes:
    return pack([NOTIFICATION, method, dict(params)])


# Where a message can begin: a request, a response, a notification (fixarray headers).
FRAME_STARTS = (b"\x94\x00", b"\x94\x01", b"\x93\x02")


def next_frame_start(data: bytes | bytearray, after: int) -> int:
    """The first offset past `after` where a message could begin, or -1."""
    found = [i for i in (data.find(m, after + 1) for m in FRAME_STARTS) if i != -1]
    return min(found) if found else -1


class FrameReader:
    """Splits a byte stream into messages; bad bytes or bad frames come out as MalformedFrame.

    After bytes that are not msgpack the reader resynchronises at the next place a message
    could begin (FRAME_STARTS), so a request sent right after garbage in the same write is
    still read and answered; a run of garbage is one MalformedFrame.
    """

    def __init__(self) -> None:
        self._unpacker = new_unpacker()
        self._unread = bytearray()  # bytes fed since the end of the last whole object
        self._base = 0  # the unpacker's offset where `_unread` begins

    def _reset(self) -> None:
        self._unpacker, self._unread, self._base = new_unpacker(), bytearray(), 0

    def feed(self, data: bytes) -> list[Message | MalformedFrame]:
        out: list[Message | MalformedFrame] = []
        pending: bytes | None = data
        while pending:
            self._unread += pending
            try:
                self._unpacker.feed(pending)
            except msgpack.BufferFull:
                self._reset()
                return out + [MalformedFrame(f"frame larger than {MAX_FRAME_BYTES} bytes")]
            pending = None
            while True:
                try:
                    obj = next(self._unpacker)
                except StopIteration:
                    return out
                except ValueError as exc:  # FormatError, StackError, bad UTF-8, bad map keys
                    out.append(MalformedFrame(f"not msgpack: {str(exc) or type(exc).__name__}"))
                    restart = next_frame_start(self._unread, 0)
                    pending = bytes(self._unread[restart:]) if restart != -1 else None
                    self._reset()
                    break
                consumed = self._unpacker.tell()
                del self._unread[:consumed - self._base]
                self._base = consumed
                try:
                    out.append(parse_message(obj))
                except MalformedFrame as bad:
                    out.append(bad)
        return out
