"""A fake Cerebras / OpenAI-compatible server: real HTTP/1.1 on 127.0.0.1, scripted per model.

`FakeServer` runs a `ThreadingHTTPServer` in a thread. Each model id maps to a `Script`
(streamed chunks, then `usage` and `time_info` in the last chunk; failures before the
stream; an error mid-stream; a hang; a fixed error status). An id without a script gets
the 404 of a retired model. `GET /v1/models` lists the scripted ids. Every request is
recorded (method, path, lower-cased headers, JSON body) for tests to inspect.

Run alone (`python tests/remote/fake_server.py [N ...]`) it serves until killed and prints
its base URL on stdout; scripts/bench_remote.py uses that, so the server has a process of
its own.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_USAGE = {
    "prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129,
    "prompt_tokens_details": {"cached_tokens": 64},
    "completion_tokens_details": {"accepted_prediction_tokens": 0,
                                  "rejected_prediction_tokens": 0},
}
DEFAULT_TIME_INFO = {"queue_time": 0.0002, "prompt_time": 0.0031, "completion_time": 0.0105,
                     "total_time": 0.0151, "created": 1764000000}
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests-day": "14400", "x-ratelimit-remaining-requests-day": "14399",
    "x-ratelimit-reset-requests-day": "33011.38", "x-ratelimit-limit-tokens-minute": "60000",
    "x-ratelimit-remaining-tokens-minute": "59871", "x-ratelimit-reset-tokens-minute": "42.5",
}
HANG_LIMIT_S = 30.0  # a hung handler gives up after this (or when the server stops)


@dataclass(frozen=True)
class Failure:
    status: int
    message: str = "try again"
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None


@dataclass
class Script:
    """What the server does for one model id, attempt after attempt."""

    chunks: tuple[str, ...] = ("def add(a, b):", "\n    return", " a + b\n")
    finish_reason: str = "stop"
    usage: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_USAGE))
    time_info: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_TIME_INFO))
    fail_first: tuple[Failure, ...] = ()  # answered to the first attempts, in order
    always: Failure | None = None  # answered to every attempt (a 400, a 401)
    mid_stream_error: str | None = None  # "data" or "event", after the first chunk
    hang: str | None = None  # "headers": never answer; "body": stall after the first chunk
    chunk_delay_s: float = 0.0
    json_answer: bool = False  # ignore `stream` and answer one JSON object
    echo_prediction: bool = False  # answer the request's predicted output (no change)
    # With a predicted output: answer it with these (regex, replacement) applied, each once.
    substitutions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


class FakeServer:
    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self.scripts: dict[str, Script] = dict(scripts or {})
        self.requests: list[Recorded] = []
        self.attempts: Counter[str] = Counter()
        self.released = threading.Event()  # set at stop: hung handlers return
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def record(self, entry: Recorded) -> int:
        """Keep a request; returns how many completion attempts its model has had."""
        with self._lock:
            self.requests.append(entry)
            model = (entry.body or {}).get("model", "")
            if entry.method == "POST":
                self.attempts[model] += 1
            return self.attempts[model]

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]


def _chunk(chat: bool, model: str, text: str | None, finish: str | None = None) -> dict:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": text} if text is not None else {}
    else:
        choice["text"] = text or ""
    return {"id": "cmpl-fake", "object": "chat.completion.chunk" if chat else "text_completion",
            "created": 1764000000, "model": model, "choices": [choice]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each event is its own small write: with Nagle's algorithm on, the second waits for
    # the client's delayed ACK (40 ms on Linux). Real servers set TCP_NODELAY too.
    disable_nagle_algorithm = True
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def fake(self) -> FakeServer:
        return self.server.fake  # type: ignore[attr-defined]

    # -- plumbing

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None
                   ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, payload: Any, event: str | None = None) -> None:
        head = f"event: {event}\n".encode() if event else b""
        body = payload if isinstance(payload, str) else json.dumps(payload)
        self._write_chunk(head + b"data: " + body.encode() + b"\n\n")

    def _hang(self) -> None:
        self.fake.released.wait(HANG_LIMIT_S)
        self.close_connection = True

    # -- routes

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.fake.record(Recorded("GET", self.path, _lower(self.headers), None))
        if self.path.rstrip("/") != "/v1/models":
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.fake.scripts]
        self._send_json(200, {"object": "list", "data": data}, RATE_LIMIT_HEADERS)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        attempt = self.fake.record(Recorded("POST", self.path, _lower(self.headers), body))
        chat = self.path.rstrip("/").endswith("/chat/completions")
        if not chat and not self.path.rstrip("/").endswith("/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        model = body.get("model", "")
        script = self.fake.scripts.get(model)
        if script is None:
            self._send_json(404, {"error": {"message": f"Model {model} does not exist or you "
                                            "do not have access to it.",
                                            "code": "model_not_found"}})
            return
        failure = script.always or (script.fail_first[attempt - 1]
                                    if attempt <= len(script.fail_first) else None)
        if failure is not None:
            self._send_json(failure.status, {"message": failure.message, "type": "error",
                                             "param": None, "code": failure.code},
                            {**RATE_LIMIT_HEADERS, **failure.headers})
            return
        if script.hang == "headers":
            self._hang()
            return
        chunks = script.chunks
        predicted = (body.get("prediction") or {}).get("content")
        if script.echo_prediction or (script.substitutions and predicted is not None):
            answer = predicted or ""
            for pattern, replacement in script.substitutions:
                answer = re.sub(pattern, replacement, answer, count=1)
            chunks = (answer,)
        if script.json_answer or not body.get("stream"):
            self._answer_whole(script, chunks, chat, model)
            return
        self._stream(script, chunks, chat, model)

    def _answer_whole(self, script: Script, chunks: tuple[str, ...], chat: bool, model: str
                      ) -> None:
        text = "".join(chunks)
        choice: dict[str, Any] = {"index": 0, "finish_reason": script.finish_reason}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        self._send_json(200, {"id": "cmpl-fake", "model": model, "choices": [choice],
                              "usage": script.usage, "time_info": script.time_info})

    def _stream(self, script: Script, chunks: tuple[str, ...], chat: bool, model: str
                ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in RATE_LIMIT_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for i, text in enumerate(chunks):
                if i and script.chunk_delay_s:
                    time.sleep(script.chunk_delay_s)
                self._event(_chunk(chat, model, text))
                if i == 0 and script.mid_stream_error == "data":
                    self._event({"error": {"message": "the model crashed", "type": "server_error",
                                           "code": "internal_error"}})
                    break
                if i == 0 and script.mid_stream_error == "event":
                    self._event({"message": "stream interrupted", "code": "internal_error"},
                                event="error")
                    break
                if i == 0 and script.hang == "body":
                    self._hang()
                    return
            else:
                last = _chunk(chat, model, None, script.finish_reason)
                if script.usage is not None:
                    last["usage"] = script.usage
                if script.time_info is not None:
                    last["time_info"] = script.time_info
                self._event(last)
            self._event("[DONE]")
            self._write_chunk(b"")  # the chunked body's end
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (a cancel)


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def main() -> int:
    """Serve model "bench-N" streaming N chunks, for each N in argv (default 32), until
    killed; the base URL goes to stdout."""
    counts = [int(a) for a in sys.argv[1:]] or [32]
    server = FakeServer({f"bench-{n}": Script(chunks=tuple(f"tok{i} " for i in range(n)))
                         for n in counts}).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
