"""A seeded fuzz of `sparkedit lsp` over stdio: valid, mutated and garbage params for every
request and notification the server implements, garbage bodies and header lines that are
no frame. Every request must be answered within a bound, the server must stay alive and
print no traceback, and its copy of the document must equal an independent model of the
valid edits.

SPARKEDIT_FUZZ_MESSAGES (default 300) and SPARKEDIT_FUZZ_SEED (default 1) scale it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from typing import Any

from test_disconnect import frame, read_message

from engine.models import untrained_model_dir

URI = "file:///tmp/fuzz/main.py"
TEXT = "def add(a, b):\n    total = a + b\n    return total\n\n\nprint(add(1, 2))\n"
ANSWER_BOUND_S = float(os.environ.get("SPARKEDIT_FUZZ_BOUND_S", "30"))
JUNK: list[Any] = [None, -1, 2 ** 40, "x", "", [], {}, [1, "a"], {"k": None}, True, 3.5,
                   "\u0000\ud7ff", -(2 ** 31) - 1]

REQUESTS = ("textDocument/inlineCompletion", "sparkedit/nextEdit", "sparkedit/context",
            "sparkedit/documentText", "sparkedit/status", "workspace/executeCommand")
NOTIFICATIONS = ("textDocument/didSave", "sparkedit/didShow",  # didChange: own branches
                 "sparkedit/didAccept", "sparkedit/didReject", "sparkedit/didFocus",
                 "workspace/didChangeConfiguration", "workspace/didChangeWatchedFiles",
                 "$/cancelRequest")


class DocumentModel:
    """What the document must be: the opened text with every valid change applied."""

    def __init__(self, text: str) -> None:
        self.text, self.version = text, 1

    def offset(self, line: int, character: int) -> int:
        lines = self.text.split("\n")
        return sum(len(x) + 1 for x in lines[:line]) + min(character, len(lines[line]))

    def random_range(self, rng: random.Random) -> tuple[dict, int, int]:
        lines = self.text.split("\n")
        a_line = rng.randrange(len(lines))
        b_line = min(len(lines) - 1, a_line + rng.choice((0, 0, 1)))
        a = (a_line, rng.randint(0, len(lines[a_line])))
        b = (b_line, rng.randint(0, len(lines[b_line])))
        if b < a:
            a, b = b, a
        lsp = {"start": {"line": a[0], "character": a[1]},
               "end": {"line": b[0], "character": b[1]}}
        return lsp, self.offset(*a), self.offset(*b)


def position(model: DocumentModel, rng: random.Random) -> dict:
    lines = model.text.split("\n")
    line = rng.randrange(len(lines))
    return {"line": line, "character": rng.randint(0, len(lines[line]))}


def valid_params(method: str, model: DocumentModel, rng: random.Random) -> Any:
    doc = {"uri": URI}
    at = position(model, rng)
    return {
        "textDocument/inlineCompletion": {"textDocument": doc, "position": at,
                                          "context": {"triggerKind": rng.choice((1, 2))}},
        "sparkedit/nextEdit": {"textDocument": {**doc, "version": model.version},
                               "position": at},
        "sparkedit/context": {"textDocument": doc, "position": at,
                              "budget": rng.choice((64, 512, 10 ** 9))},
        "sparkedit/documentText": {"uri": URI},
        "sparkedit/status": None,
        "workspace/executeCommand": {"command": "sparkedit.editSelection", "arguments": [
            URI, {"start": {"line": 0, "character": 0}, "end": at}, "add a docstring"]},
        "textDocument/didSave": {"textDocument": doc},
        "sparkedit/didShow": {"id": "s1"},
        "sparkedit/didAccept": {"id": "s1", "acceptedLength": 3},
        "sparkedit/didReject": {"id": "s1"},
        "sparkedit/didFocus": {"textDocument": doc, "position": at},
        "workspace/didChangeConfiguration": {"settings": {"sparkedit": {"debounceMs": 0}}},
        "workspace/didChangeWatchedFiles": {"changes": [{"uri": URI, "type": 2}]},
        "$/cancelRequest": {"id": rng.randint(1, 50)},
    }[method]


def mutate(value: Any, rng: random.Random) -> Any:
    """The value with one leaf (or the whole) replaced by junk."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        out = dict(value)
        if rng.random() < 0.2:
            del out[key]
        else:
            out[key] = mutate(value[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return value[:i] + [mutate(value[i], rng)] + value[i + 1:]
    return rng.choice(JUNK)


def invalid_change(model: DocumentModel, rng: random.Random) -> dict:
    """A didChange the server must refuse whole: a type or a range that cannot be."""
    lsp, _, _ = model.random_range(rng)
    broken = rng.choice((
        {"range": {**lsp, "start": {"line": -1, "character": 0}}, "text": "X"},
        {"range": {**lsp, "end": None}, "text": "X"},
        {"range": lsp, "text": 7},
        {"range": "everything", "text": "X"}))
    return {"textDocument": {"uri": URI, "version": model.version + 1},
            "contentChanges": [broken]}


async def test_fuzzed_messages_are_all_answered_and_the_document_stays_exact() -> None:
    rng = random.Random(int(os.environ.get("SPARKEDIT_FUZZ_SEED", "1")))
    count = int(os.environ.get("SPARKEDIT_FUZZ_MESSAGES", "300"))
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lsp_server.cli", "lsp", "--model", str(untrained_model_dir()),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    assert server.stdin is not None and server.stdout is not None
    answers: dict[Any, dict] = {}
    null_ids = 0

    async def reader() -> None:
        nonlocal null_ids
        while True:
            message = await read_message(server.stdout)
            if "method" in message:
                continue
            if message.get("id") is None:
                null_ids += 1
            else:
                answers[message["id"]] = message

    def send(message: dict | bytes) -> None:
        assert server.stdin is not None
        if os.environ.get("SPARKEDIT_FUZZ_TRACE"):
            with open(os.environ["SPARKEDIT_FUZZ_TRACE"], "a") as trace:
                trace.write(repr(message)[:300] + "\n")
        if isinstance(message, bytes):
            server.stdin.write(f"Content-Length: {len(message)}\r\n\r\n".encode() + message)
        else:
            server.stdin.write(frame({"jsonrpc": "2.0", **message}))

    async def answer(msg_id: int) -> dict:
        for _ in range(int(ANSWER_BOUND_S / 0.01)):
            if msg_id in answers:
                return answers.pop(msg_id)
            if listening.done():  # the server closed its output, or a frame was unreadable
                listening.result()
                raise AssertionError("the server's output ended")
            await asyncio.sleep(0.01)
        raise AssertionError(f"request {msg_id} unanswered after {ANSWER_BOUND_S} s "
                             f"(answered meanwhile: {sorted(answers, key=str)})")

    log_chunks: list[bytes] = []

    async def drain_log() -> None:  # a full stderr pipe would block the server
        assert server.stderr is not None
        while chunk := await server.stderr.read(65536):
            log_chunks.append(chunk)

    listening = asyncio.create_task(reader())
    logging_task = asyncio.create_task(drain_log())
    model = DocumentModel(TEXT)
    try:
        send({"id": 0, "method": "initialize", "params": {
            "capabilities": {}, "initializationOptions": {"statsFile": "off"}}})
        await answer(0)
        send({"method": "initialized", "params": {}})
        send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": TEXT}}})
        pending: list[int] = []
        garbage = 0
        for n in range(1, count + 1):
            roll = rng.random()
            if roll < 0.02:  # header lines that are no frame: skipped up to the next one
                assert server.stdin is not None
                server.stdin.write(rng.choice((b"garbage\r\n", b"X-Junk: 1\r\n",
                                               b"Content-Length: x\r\n", b"\r\n")))
            elif roll < 0.05:  # a body that is not JSON, or JSON that is no message
                send(rng.choice((b"{not json", b"\xff\xfe\x00", b"[]", b"42", b'"x"',
                                 b'{"jsonrpc": "2.0"}')))
                garbage += 1
            elif roll < 0.35:  # a valid edit, applied to the model too
                lsp, start, end = model.random_range(rng)
                # BMP characters only: one UTF-16 unit (LSP's default) is one code point here
                text = rng.choice(("x", "", "\n", "  pass\n", "total", "ä€"))
                model.text = model.text[:start] + text + model.text[end:]
                model.version += 1
                send({"method": "textDocument/didChange", "params": {
                    "textDocument": {"uri": URI, "version": model.version},
                    "contentChanges": [{"range": lsp, "text": text}]}})
            elif roll < 0.45:
                send({"method": "textDocument/didChange", "params": invalid_change(model, rng)})
            else:
                method = rng.choice(REQUESTS + NOTIFICATIONS)
                params = valid_params(method, model, rng)
                kind = rng.random()
                if kind < 0.4:
                    params = mutate(params, rng)
                elif kind < 0.5:
                    params = rng.choice(JUNK)
                message = {"method": method, "params": params}
                if method in REQUESTS:
                    message["id"] = n
                    pending.append(n)
                send(message)
            if n % 50 == 0:
                await asyncio.wait_for(server.stdin.drain(), ANSWER_BOUND_S)
                for msg_id in pending:
                    await answer(msg_id)
                pending.clear()
                send({"id": -n, "method": "sparkedit/documentText", "params": {"uri": URI}})
                copy = (await answer(-n))["result"]
                expected = {"uri": URI, "version": model.version, "text": model.text}
                assert copy == expected, (copy, expected)
        await server.stdin.drain()
        for msg_id in pending:
            await answer(msg_id)
        assert server.returncode is None, "the server died"
        for _ in range(200):  # every garbage body was answered -32700 or -32600, id null
            if null_ids >= garbage:
                break
            await asyncio.sleep(0.01)
        assert null_ids == garbage
        send({"id": 10 ** 6, "method": "shutdown"})
        await answer(10 ** 6)
        send({"method": "exit"})
        await server.stdin.drain()
        await asyncio.wait_for(server.wait(), 30)
    finally:
        listening.cancel()
        if server.returncode is None:  # a failed run: the server and its engine go
            os.killpg(server.pid, signal.SIGKILL)
            await asyncio.wait_for(server.wait(), 10)
    await asyncio.wait_for(logging_task, 10)
    log = b"".join(log_chunks).decode(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_mutations_are_seeded_and_reach_every_kind_of_leaf() -> None:
    rng_a, rng_b = random.Random(5), random.Random(5)
    model = DocumentModel(TEXT)
    base = valid_params("textDocument/inlineCompletion", model, random.Random(0))
    a = [json.dumps(mutate(base, rng_a)) for _ in range(50)]
    b = [json.dumps(mutate(base, rng_b)) for _ in range(50)]
    assert a == b and len(set(a)) > 10
