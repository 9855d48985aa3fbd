"""A seeded fuzz of the engine's socket: hostile connections (garbage bytes, cut frames,
valid requests with mutated params, out-of-range token ids) one after another, then 100
clients at once. Every request with a readable id is answered, each connection keeps
serving after garbage, and the engine stays alive and exact.

SPARKEDIT_FUZZ_ENGINE_CONNECTIONS (default 120) and SPARKEDIT_FUZZ_SEED (default 1) scale it."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
from test_rpc import Engine, frame_reader, untrained_engine

from engine.rpc import EngineClient, pack, request_frame

CONNECTIONS = int(os.environ.get("SPARKEDIT_FUZZ_ENGINE_CONNECTIONS", "120"))
JUNK: list[Any] = [None, -1, 2 ** 40, -(2 ** 63), "x", "", b"\xff", [], {}, [1, "a"],
                   {"k": None}, True, 3.5, float("nan"), "\ud800".encode("utf-8", "surrogatepass")]
VALID: dict[str, dict] = {
    "generate": {"prompt": "def add(a, b):\n", "max_tokens": 3, "temperature": 0},
    "tokenize": {"text": "x = 1\n", "offsets": True},
    "detokenize": {"tokens": [10, 20, 30]},
    "health": {},
    "info": {},
    "cancel": {"id": 7},
    "score": {"tokens": [1, 2, 3], "candidates": [[4, 5]]},
}
# (A header declaring a huge string swallows what follows up to the frame cap: its own test.)
GARBAGE = (b"\xc1\xc1\xc1", b"\x94\x00", b"not msgpack", b"\x00" * 64, b"\x92\xc1")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from untrained_engine(tmp_path_factory, "fuzz")


def mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.8:
        out = dict(value)
        key = rng.choice(list(out))
        if rng.random() < 0.2:
            del out[key]
        else:
            out[key] = mutate(out[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        return value[:i] + [mutate(value[i], rng)] + value[i + 1:]
    if isinstance(value, int) and not isinstance(value, bool) and rng.random() < 0.5:
        return rng.choice((-1, 10 ** 6, 2 ** 31, value * 1000))  # out-of-range ids, sizes
    return rng.choice(JUNK)


async def hostile_connection(engine: Engine, rng: random.Random, n: int) -> None:
    """One connection: a few messages good and bad, then a health check on it. Each request
    sent before any garbage is answered with its id (garbage may swallow what follows it
    into a malformed frame, which is answered with a null id)."""
    reader, writer = await asyncio.open_unix_connection(engine.address)
    next_frame = frame_reader(reader, timeout_s=60)
    expected: list[int] = []
    clean = True
    try:
        for k in range(rng.randint(1, 6)):
            roll = rng.random()
            msgid = n * 100 + k
            if roll < 0.2:
                writer.write(rng.choice(GARBAGE))
                clean = False
            elif roll < 0.3:  # a frame cut short, then the rest never comes: the next
                # request completes it as garbage, which the engine must answer and skip
                writer.write(request_frame(msgid, "tokenize", {"text": "abc"})[:-2])
                clean = False
            else:
                method = rng.choice(list(VALID))
                params: Any = VALID[method]
                if rng.random() < 0.7:
                    params = mutate(params, rng)
                writer.write(pack([0, msgid, method, params]) if rng.random() < 0.9
                             else pack([0, msgid, mutate(method, rng), params]))
                if clean:
                    expected.append(msgid)
        # The connection keeps serving: a health check is answered. Garbage may eat the
        # frames after it (a frame cut inside a string takes the next bytes as its text, a
        # stray array header takes the next frames as its items; with no length prefix
        # nothing can tell), so the check is sent again, up to five times, until answered.
        answered: dict[int, list] = {}
        checks = [n * 100 + 90]
        writer.write(request_frame(checks[-1], "health", {}))
        while not any(c in answered for c in checks) or any(m not in answered
                                                            for m in expected):
            try:
                frame = await asyncio.wait_for(next_frame(), 2)
            except TimeoutError:
                if len(checks) < 5 and not any(c in answered for c in checks):
                    checks.append(n * 100 + 90 + len(checks))
                    writer.write(request_frame(checks[-1], "health", {}))
                continue
            if frame[0] == 1 and frame[1] is not None:
                answered[frame[1]] = frame
                if frame[1] in checks:  # a long job (a huge max_tokens) is cancelled:
                    for k, msgid in enumerate(m for m in expected if m not in answered):
                        writer.write(request_frame(n * 100 + 50 + k, "cancel", {"id": msgid}))
        assert any(answered.get(c, [0, 0, 0, {}])[3].get("ok") for c in checks), answered
    finally:
        writer.close()


async def test_hostile_connections_are_answered_and_the_engine_stays_exact(
        engine: Engine) -> None:
    rng = random.Random(int(os.environ.get("SPARKEDIT_FUZZ_SEED", "1")))
    async with await EngineClient.connect(engine.address) as client:
        before = await client.generate(dict(VALID["generate"]))
    for n in range(CONNECTIONS):
        await hostile_connection(engine, rng, n)
        assert engine.proc.poll() is None, engine.stderr.read_text()[-3000:]
    async with await EngineClient.connect(engine.address) as client:
        after = await client.generate(dict(VALID["generate"]))
        health = await client.health()
    assert after["text"] == before["text"] and after["tokens"] == before["tokens"]
    assert health["ok"] and health["queue_length"] == 0
    assert "Traceback" not in engine.stderr.read_text()


async def test_a_hundred_clients_at_once_are_all_served(engine: Engine) -> None:
    async def one(n: int) -> tuple[str, Any]:
        async with await EngineClient.connect(engine.address) as client:
            if n % 4 == 0:
                answer = await client.generate({"prompt": f"x{n} = ", "max_tokens": 2,
                                                "temperature": 0})
                return "generate", answer["finish_reason"]
            answer = await client.tokenize(f"value_{n} = {n}\n")
            return "tokenize", len(answer["tokens"])

    results = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(100))), 240)
    assert len(results) == 100
    assert all(r[1] in ("length", "eos", "stop") for r in results if r[0] == "generate")
    assert all(r[1] > 0 for r in results if r[0] == "tokenize")
    async with await EngineClient.connect(engine.address) as client:
        assert (await client.health())["queue_length"] == 0
