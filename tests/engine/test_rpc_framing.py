"""msgpack-RPC framing and the RPC server/client pair, without a model.

The server here is `RpcServer` with small in-test handlers on a real Unix socket, so these
run in milliseconds; tests/engine/test_rpc.py drives the real engine process.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.rpc import (
    MAX_FRAME_BYTES,
    Connection,
    EngineClient,
    EngineConnectionError,
    EngineError,
    FrameReader,
    MalformedFrame,
    Notification,
    Request,
    Response,
    RpcServer,
    pack,
    parse_address,
    parse_message,
    request_frame,
)

# ---------------------------------------------------------------------------- framing


def test_parse_the_three_message_kinds() -> None:
    assert parse_message([0, 7, "info", {}]) == Request(7, "info", {})
    assert parse_message([1, 7, None, {"ok": True}]) == Response(7, None, {"ok": True})
    assert parse_message([2, "token", {"id": 7}]) == Notification("token", {"id": 7})


def test_params_nil_or_wrapped_in_an_array_are_accepted() -> None:
    assert parse_message([0, 1, "health", None]).params == {}
    assert parse_message([0, 1, "tokenize", [{"text": "x"}]]).params == {"text": "x"}


@pytest.mark.parametrize(("obj", "msgid"), [
    ({"not": "a list"}, None),
    ([], None),
    ([9, 1, "x", {}], None),
    ([0, "one", "info", {}], None),
    ([0, True, "info", {}], None),
    ([0, 5, "info"], 5),
    ([0, 5, 42, {}], 5),
    ([0, 5, "info", "params"], 5),
    ([2, "token"], None),
    (17, None),
])
def test_malformed_messages_say_why_and_keep_a_readable_id(obj: object, msgid: int | None) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_message(obj)
    assert info.value.msgid == msgid
    assert str(info.value)


def test_frames_split_at_every_byte_boundary() -> None:
    frames = request_frame(1, "info", {}) + request_frame(2, "tokenize", {"text": "é" * 50})
    reader = FrameReader()
    out = []
    for i in range(len(frames)):
        out += reader.feed(frames[i : i + 1])
    assert out == [Request(1, "info", {}), Request(2, "tokenize", {"text": "é" * 50})]


@pytest.mark.parametrize("garbage", [b"\xc1", b"\x91\xc1", b"\x81\x01\x02"])
def test_bytes_that_are_not_msgpack_reset_the_reader(garbage: bytes) -> None:
    reader = FrameReader()
    out = reader.feed(garbage)
    assert len(out) == 1
    assert isinstance(out[0], MalformedFrame)
    assert out[0].msgid is None
    assert str(out[0]).startswith("not msgpack: ") and len(str(out[0])) > len("not msgpack: ")
    assert reader.feed(request_frame(3, "health", {})) == [Request(3, "health", {})]


@pytest.mark.parametrize("garbage", [b"\xc1", b"\xc1" * 5000, b"\x91\xc1", b"\x94\x00\xc1"])
def test_a_request_written_right_after_garbage_is_still_read(garbage: bytes) -> None:
    reader = FrameReader()
    before, after = request_frame(1, "info", {}), request_frame(2, "health", {})
    out = reader.feed(before + garbage + after + after[:5])
    assert out[0] == Request(1, "info", {}) and out[-1] == Request(2, "health", {})
    bad = out[1:-1]
    assert len(bad) == 1 and isinstance(bad[0], MalformedFrame)  # one for the whole run
    assert reader.feed(after[5:]) == [Request(2, "health", {})]  # a split frame still joins


def _raw_request(msgid: int, method: bytes, key: bytes, value: bytes) -> bytes:
    """A request whose strings are given as raw bytes (msgpack str8), valid UTF-8 or not."""
    def s(b: bytes) -> bytes:
        return b"\xd9" + bytes([len(b)]) + b
    return b"\x94\x00" + bytes([msgid]) + s(method) + b"\x81" + s(key) + s(value)


@pytest.mark.parametrize("value", [b"x\xff", b"\xed\xa0\x80", b"\xc3"])  # surrogate: CESU
def test_invalid_utf8_in_a_request_is_answered_with_its_id(value: bytes) -> None:
    reader = FrameReader()
    out = reader.feed(_raw_request(7, b"tokenize", b"text", value)
                      + request_frame(8, "health", {}))
    assert isinstance(out[0], MalformedFrame) and out[0].msgid == 7
    assert str(out[0]) == "params['text'] is not valid UTF-8"
    assert out[1] == Request(8, "health", {})  # the stream stayed in sync
    bad_key = reader.feed(_raw_request(9, b"tokenize", b"t\xff", b"ok"))[0]
    assert isinstance(bad_key, MalformedFrame) and "a key of params" in str(bad_key)
    bad_method = reader.feed(_raw_request(10, b"h\xffealth", b"a", b"b"))[0]
    assert isinstance(bad_method, MalformedFrame) and bad_method.msgid == 10
    assert reader.feed(_raw_request(11, b"tokenize", b"text", "é".encode())) == [
        Request(11, "tokenize", {"text": "é"})]


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_never_raise_out_of_the_reader(chunks: list[bytes]) -> None:
    reader = FrameReader()
    for chunk in chunks:
        for item in reader.feed(chunk):
            assert isinstance(item, Request | Response | Notification | MalformedFrame)


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.text(min_size=1, max_size=12),
                          st.dictionaries(st.text(max_size=8), _values, max_size=4)),
                max_size=6),
       st.lists(st.integers(1, 64), min_size=1, max_size=8))
def test_any_request_stream_survives_any_chunking(reqs: list, cuts: list[int]) -> None:
    data = b"".join(request_frame(i, m, p) for i, m, p in reqs)
    reader = FrameReader()
    out, pos, k = [], 0, 0
    while pos < len(data):
        step = cuts[k % len(cuts)]
        out += reader.feed(data[pos : pos + step])
        pos, k = pos + step, k + 1
    assert out == [Request(i, m, p) for i, m, p in reqs]


@pytest.mark.parametrize(("address", "parsed"), [
    ("/run/user/1000/sparkedit/engine.sock", ("unix", "/run/user/1000/sparkedit/engine.sock")),
    ("engine.sock", ("unix", "engine.sock")),
    ("unix:rel/x.sock", ("unix", "rel/x.sock")),
    ("tcp:127.0.0.1:7000", ("tcp", ("127.0.0.1", 7000))),
    ("localhost:7000", ("tcp", ("localhost", 7000))),
    ("tcp:[::1]:7000", ("tcp", ("::1", 7000))),
])
def test_parse_address(address: str, parsed: tuple) -> None:
    assert parse_address(address) == parsed


def test_tcp_address_without_a_port_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_address("tcp:localhost")


# ---------------------------------------------------------------------------- server + client


async def _echo(conn: Connection, req: Request) -> object:
    return {"echo": req.params}


async def _stream(conn: Connection, req: Request) -> object:
    for word in ("a", "b", "c"):
        conn.notify_nowait("token", {"id": req.id, "text": word, "tokens": [ord(word)]})
    return {"text": "abc"}


async def _fail(conn: Connection, req: Request) -> object:
    raise EngineError("invalid_params", "max_tokens must be positive")


async def _crash(conn: Connection, req: Request) -> object:
    raise RuntimeError("boom")


async def _sleep(conn: Connection, req: Request) -> object:
    await asyncio.sleep(30)
    return {}


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[str, RpcServer, list]]:
    cancels: list = []

    async def _cancel(conn: Connection, req: Request) -> object:
        cancels.append(req.params)
        return {"cancelled": True}

    handlers = {"echo": _echo, "stream": _stream, "fail": _fail, "crash": _crash,
                "sleep": _sleep, "generate": _sleep, "cancel": _cancel}
    rpc = RpcServer(handlers)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rpc.sock")
        server = await asyncio.start_unix_server(rpc.handle_connection, path=path)
        try:
            yield path, rpc, cancels
        finally:
            server.close()
            for conn in list(rpc.connections):
                conn.writer.close()


async def test_calls_and_errors_round_trip(local_server: tuple) -> None:
    path, _, _ = local_server
    client = await EngineClient.connect(path)
    try:
        assert await client.call("echo", {"x": [1, "é"]}) == {"echo": {"x": [1, "é"]}}
        with pytest.raises(EngineError) as err:
            await client.call("fail", {})
        assert err.value.code == "invalid_params"
        with pytest.raises(EngineError) as err:
            await client.call("nope", {})
        assert err.value.code == "unknown_method"
        with pytest.raises(EngineError) as err:
            await client.call("crash", {})
        assert err.value.code == "internal" and "boom" in err.value.message
        # The connection outlived all of that, and concurrent calls are matched by id.
        answers = await asyncio.gather(*(client.call("echo", {"n": n}) for n in range(20)))
        assert answers == [{"echo": {"n": n}} for n in range(20)]
    finally:
        await client.close()


async def test_notifications_reach_the_callback_before_the_answer(local_server: tuple) -> None:
    path, _, _ = local_server
    async with await EngineClient.connect(path) as client:
        seen: list[tuple[str, list[int]]] = []
        fut = client._send_request(99, "stream", {})
        client._streams[99] = lambda text, tokens: seen.append((text, tokens))
        assert await fut == {"text": "abc"}
        assert "".join(t for t, _ in seen) == "abc"


async def test_malformed_frames_are_answered_and_the_connection_keeps_serving(
        local_server: tuple) -> None:
    path, _, _ = local_server
    reader, writer = await asyncio.open_unix_connection(path)
    unpacker = msgpack.Unpacker(raw=False)

    async def next_frame() -> list:
        while True:
            for obj in unpacker:
                return obj
            unpacker.feed(await asyncio.wait_for(reader.read(65536), 5))

    for bad in (b"\xc1\xc1\xc1", pack({"method": "echo"}), pack([0, 5, "echo", "params"])):
        writer.write(bad)
        kind, msgid, error, result = await next_frame()
        assert kind == 1 and error["code"] == "malformed_frame" and result is None
        assert msgid == (5 if bad.endswith(pack("params")) else None)
    writer.write(request_frame(6, "echo", {"ok": 1}))
    assert await next_frame() == [1, 6, None, {"echo": {"ok": 1}}]
    writer.close()


async def test_a_cancelled_caller_cancels_its_job(local_server: tuple) -> None:
    path, _, cancels = local_server
    async with await EngineClient.connect(path) as client:
        ids: list[int] = []
        task = asyncio.create_task(client.generate({"prompt": "x"}, on_start=ids.append))
        await asyncio.sleep(0.05)
        assert ids and not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if cancels:
                break
            await asyncio.sleep(0.01)
        assert cancels == [{"id": ids[0]}]
        assert await client.call("echo", {}) == {"echo": {}}


async def test_a_dropped_connection_fails_every_pending_call(local_server: tuple) -> None:
    path, rpc, _ = local_server
    client = await EngineClient.connect(path)
    pending = [asyncio.create_task(client.call("sleep", {})) for _ in range(3)]
    await asyncio.sleep(0.05)
    for conn in list(rpc.connections):
        conn.writer.close()
    for task in pending:
        with pytest.raises(EngineConnectionError):
            await asyncio.wait_for(task, 5)
    with pytest.raises(EngineConnectionError):
        await client.health()
    await client.close()


async def test_connecting_to_nothing_is_a_connection_error(tmp_path: Path) -> None:
    with pytest.raises(EngineConnectionError):
        await EngineClient.connect(str(tmp_path / "absent.sock"))


@pytest.mark.parametrize("header", [
    b"\xc6\x40\x00\x00\x00",  # bin32 of 1 GiB
    b"\xdb\x40\x00\x00\x00",  # str32 of 1 GiB
    b"\x94\x00\x01\xa8generate\xdd\x40\x00\x00\x00",  # params: an array32 of 2^30
])
def test_a_frame_declaring_a_gigabyte_is_refused_within_the_cap(header: bytes) -> None:
    reader, fed, out = FrameReader(), 0, []
    chunk = b"\x00" * (1 << 20)
    out = reader.feed(header)
    while not out:
        assert fed <= MAX_FRAME_BYTES + len(chunk), "buffered past the cap"
        out = reader.feed(chunk)
        fed += len(chunk)
    assert len(out) == 1 and isinstance(out[0], MalformedFrame)
    # the reader keeps working for the next, well-formed frame
    ok = reader.feed(msgpack.packb([0, 7, "health", {}]))
    assert [getattr(m, "id", None) for m in ok] == [7]
