"""Soak: 20,000 keystrokes through one real `sparkedit lsp`, with completions and next edits.

The typing sessions of scripts/sessions/ (real code, synthetic human timing) are replayed
one after another, round after round, through a single server over stdio (this repository
as its workspace root), until `--keystrokes` have been typed: each segment opens its
session's document (the same URI each round, at the recorded text), types it as an editor
would (lsp_server/replay.py:
a didChange and an inline-completion request per keystroke at the recorded times divided
by `--speed`, overtaken requests cancelled, ghost text accepted when it is exactly what
comes next), asks for a next edit at the pause after it, and closes the document.

What it measures, per quarter of the keystrokes (a segment counts in the quarter its middle
keystroke falls in): keystroke -> answer p50/p95, and the resident memory of the server and
of its engine at the quarter's end. The baseline is the same run's second quarter (the
first one holds the cold start and the index build):
- p95 of the last quarter / p95 of the second quarter (target <= 1.2);
- RSS growth of server + engine from the end of the first quarter to the end (target
  <= 20 MB);
- unanswered requests (target 0): inline completions answered neither with a result nor
  a cancellation, and next edits not answered within 30 s.

Prints a table and writes JSON (default bench_results/soak.json). Take figures only while
nothing else loads the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsp_server.replay import Replay, drain, plain  # noqa: E402
from lsp_server.sessions import Session, percentile  # noqa: E402

NEXT_EDIT_TIMEOUT_S = 30.0  # also how long a segment's last completion may take


def rss_kb(pid: int | None) -> int:
    if pid is None:
        return 0
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


@dataclass
class Quarter:
    latencies_ms: list[float] = field(default_factory=list)
    keystrokes: int = 0
    server_kb: int = 0
    engine_kb: int = 0

    def row(self, n: int) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {"quarter": n, "keystrokes": self.keystrokes, "answers": len(ordered),
                "p50_ms": round(percentile(ordered, 50), 1) if ordered else None,
                "p95_ms": round(percentile(ordered, 95), 1) if ordered else None,
                "server_mb": round(self.server_kb / 1024, 1),
                "engine_mb": round(self.engine_kb / 1024, 1)}


@dataclass
class Totals:
    requests: int = 0
    answered: int = 0  # with a result
    cancelled: int = 0  # answered RequestCancelled
    errors: int = 0
    next_edits: int = 0
    next_edits_answered: int = 0
    accepts: int = 0
    in_sync: int = 0
    segments: int = 0

    @property
    def unanswered(self) -> int:
        return (self.requests - self.answered - self.cancelled - self.errors
                + self.next_edits - self.next_edits_answered)


async def soak(args: argparse.Namespace, sessions: list[Session]) -> dict[str, Any]:
    client = LanguageClient("sparkedit-soak", "0")
    engine_pid: list[int | None] = [None]

    @client.feature("sparkedit/status")
    def on_status(_client: LanguageClient, params: Any) -> None:
        pid = plain(params).get("enginePid") if params is not None else None
        if pid:
            engine_pid[0] = pid

    for method in (types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE,
                   types.WINDOW_WORK_DONE_PROGRESS_CREATE, types.PROGRESS):
        client.feature(method)(lambda _client, params: None)
    command = [sys.executable, "-m", "lsp_server.cli", "lsp", "--log-level", "WARNING"]
    if args.model:
        command += ["--model", str(Path(args.model).resolve())]
    await client.start_io(*command, cwd=str(ROOT))
    server_pid = client._server.pid
    log: list[bytes] = []
    drainer = asyncio.create_task(drain(client._server.stderr, log))
    await asyncio.wait_for(client.initialize_async(types.InitializeParams(
        process_id=os.getpid(), root_uri=ROOT.as_uri(),
        initialization_options={"statsFile": "off"},
        capabilities=types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities())))), 60)
    client.initialized(types.InitializedParams())

    quarters = [Quarter() for _ in range(4)]
    totals = Totals()
    typed, segment = 0, 0
    started = time.perf_counter()
    while typed < args.keystrokes:
        session = sessions[segment % len(sessions)]
        header = session.header
        # The same file each round, reopened at its recorded text: a user at work on a
        # project. (A fresh file each time would grow the engine's prefix cache towards
        # its bound, 512 MB: bounded, but no measure of a leak.)
        uri = (ROOT / "soak" / header.path).as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=header.language_id,
                                                 version=1, text=header.text)))
        replay = Replay(client, session, uri, args.speed, id_prefix=f"soak{segment}")
        await replay.run()
        if replay.pending is not None:  # its answer still counts (run waits only 10 s)
            await asyncio.wait([replay.pending[1]], timeout=NEXT_EDIT_TIMEOUT_S)
        counts = replay.counts
        middle = typed + counts.keystrokes // 2
        quarter = quarters[min(3, middle * 4 // args.keystrokes)]
        quarter.latencies_ms += counts.latencies_ms
        quarter.keystrokes += counts.keystrokes
        typed += counts.keystrokes
        totals.requests += counts.requests
        totals.answered += counts.answers + counts.late_answers
        totals.cancelled += counts.cancel_confirmed
        totals.errors += counts.errors
        totals.accepts += counts.accepts
        totals.next_edits += 1
        try:  # the pause after the segment: a next edit, as an editor asks for one
            await asyncio.wait_for(client.protocol.send_request_async("sparkedit/nextEdit", {
                "textDocument": {"uri": uri, "version": replay.version},
                "position": dict(line=replay.position(replay.cursor).line,
                                 character=replay.position(replay.cursor).character)}),
                NEXT_EDIT_TIMEOUT_S)
            totals.next_edits_answered += 1
        except (JsonRpcException, TimeoutError) as exc:
            print(f"  next edit in segment {segment}: {exc!r}", file=sys.stderr)
        copy = plain(await asyncio.wait_for(client.protocol.send_request_async(
            "sparkedit/documentText", {"uri": uri}), 10))
        totals.in_sync += int(isinstance(copy, dict) and copy.get("text") == replay.text)
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        totals.segments += 1
        quarter.server_kb, quarter.engine_kb = rss_kb(server_pid), rss_kb(engine_pid[0])
        print(f"  segment {segment:3d} {session.name:24s} {typed:6d} keystrokes, "
              f"server {quarter.server_kb / 1024:.0f} MB, engine {quarter.engine_kb / 1024:.0f}"
              f" MB, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        segment += 1
    try:
        await asyncio.wait_for(client.shutdown_async(None), 20)
        client.exit(None)
    except (JsonRpcException, TimeoutError) as exc:
        print(f"  shutdown: {exc!r}", file=sys.stderr)
    await asyncio.sleep(0.3)
    drainer.cancel()
    server_log = b"".join(log).decode(errors="replace")
    return {"quarters": [q.row(n + 1) for n, q in enumerate(quarters)], "totals": totals,
            "duration_s": round(time.perf_counter() - started, 1),
            "tracebacks": server_log.count("Traceback")}


def report(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    q = result["quarters"]
    totals: Totals = result["totals"]
    p95_ratio = (q[3]["p95_ms"] / q[1]["p95_ms"]) if q[1]["p95_ms"] and q[3]["p95_ms"] else None
    growth_mb = (q[3]["server_mb"] + q[3]["engine_mb"]) - (q[0]["server_mb"] + q[0]["engine_mb"])
    verdicts = {
        "p95_last_over_second": (p95_ratio, p95_ratio is not None and p95_ratio <= 1.2, "<= 1.2"),
        "rss_growth_mb": (round(growth_mb, 1), growth_mb <= 20, "<= 20"),
        "unanswered": (totals.unanswered, totals.unanswered == 0, "0"),
    }
    print("| quarter | keystrokes | answers | p50 ms | p95 ms | server MB | engine MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in q:
        print(f"| {row['quarter']} | {row['keystrokes']} | {row['answers']} | {row['p50_ms']} "
              f"| {row['p95_ms']} | {row['server_mb']} | {row['engine_mb']} |")
    print()
    print("| figure | value | target | met |")
    print("|---|---:|---:|---|")
    for name, (value, met, target) in verdicts.items():
        shown = f"{value:.2f}" if isinstance(value, float) else value
        print(f"| {name} | {shown} | {target} | {'yes' if met else 'no'} |")
    print(f"\n{totals.segments} segments, {totals.requests} completion requests "
          f"({totals.answered} answered, {totals.cancelled} cancelled, {totals.errors} "
          f"errors), {totals.next_edits} next edits ({totals.next_edits_answered} answered), "
          f"{totals.accepts} accepts, documents in sync {totals.in_sync}/{totals.segments}, "
          f"{result['tracebacks']} tracebacks, {result['duration_s']} s at speed {args.speed}")
    return {"quarters": q, "verdicts": {k: {"value": v, "met": m, "target": t}
                                        for k, (v, m, t) in verdicts.items()},
            "totals": {**totals.__dict__, "unanswered": totals.unanswered},
            "duration_s": result["duration_s"], "tracebacks": result["tracebacks"],
            "speed": args.speed, "keystrokes_target": args.keystrokes,
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                        "python": platform.python_version()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keystrokes", type=int, default=20_000)
    ap.add_argument("--speed", type=float, default=8.0,
                    help="replay this many times faster than the recorded typing (>= 4)")
    ap.add_argument("--model", help="the model folder (default: the embedded model)")
    ap.add_argument("--sessions", type=Path, default=ROOT / "scripts" / "sessions")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_results" / "soak.json")
    args = ap.parse_args()
    sessions = [Session.read(p) for p in sorted(args.sessions.glob("*.jsonl"))]
    if not sessions:
        print(f"no sessions in {args.sessions}", file=sys.stderr)
        return 2
    result = asyncio.run(soak(args, sessions))
    out = report(result, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(v["met"] for v in out["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
