"""Keystroke -> ghost text through the real stdio language server, replaying typing sessions.

Each session of scripts/sessions/ (real code, SYNTHETIC human timing: see
scripts/make_typing_sessions.py) runs against a fresh `sparkedit lsp` over stdio, with this
repository as the workspace root, driven by lsp_server/replay.py as `sparkedit replay` does:
an editor-like client that sends an incremental didChange and an inline-completion request
per keystroke at the recorded times (divided by `--speed`), cancels requests overtaken by
the next key, reports ghost text with didShow/didAccept/didReject (the simulated user
accepts ghost text of at least 3 characters that is exactly what comes next), and reads
the server's own counters from `sparkedit/status` at the end. See that module's docstring.

Baseline, measured in the same run after the LSP runs: the engine alone. The same document
states (every change the client sent, at the same times) go through the same prompt builder
(`complete_in_workspace` over a `Workspace` of the same root) straight to a `sparkedit
engine`, one request per keystroke, sequentially, nothing cancelled or cached. The ratio of
the p50s is what the language server adds to, or saves over, a plain engine round trip.

Prints markdown tables and writes JSON (default bench_results/latency.json).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import typing_sessions as ts

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server import replay
from lsp_server.completion import CompletionOptions, complete_in_workspace
from lsp_server.documents import DocumentStore, Encoding, Range, TextChange
from lsp_server.engine_process import EngineOptions, EngineProcess
from lsp_server.sessions import Session, SessionResult
from lsp_server.workspace import Workspace, WorkspaceSettings

REPO = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-m", "lsp_server.cli", "lsp"]


async def run_session(session: Session, args: argparse.Namespace) -> SessionResult:
    return await replay.run_session(
        session, root=REPO, speed=args.speed, server_command=SERVER,
        server_log_level=args.server_log_level, index_timeout=args.index_timeout)


async def bench_engine(result: SessionResult, every: int, options: CompletionOptions,
                       into: ts.Baseline) -> None:
    """The client's document states of one session, through the prompt builder, straight
    to a fresh engine: one generate per sampled state, sequentially."""
    header = result.session.header
    uri = (REPO / header.path).as_uri()
    workspace = Workspace(tokenizer=Tokenizer.from_dir(default_model_dir()),
                          settings=WorkspaceSettings(root=REPO))
    store = DocumentStore()
    doc = store.open(uri, header.text, 1, header.language_id)
    workspace.opened(doc)
    await asyncio.to_thread(workspace.build_index)
    process = EngineProcess(EngineOptions(log_level="WARNING"))
    try:
        handle = await process.handle()

        async def complete(document: Any, offset: int) -> Any:
            return await complete_in_workspace(workspace, document, offset, engine=handle.client,
                                               info=handle.info, options=options)

        await complete(doc, header.cursor)  # as the LSP run's cold-start request
        # A virtual clock far ahead of time.monotonic(): bursts of edit history then close
        # at the replayed times (close_open below), not at the real ones.
        clock0 = time.monotonic() + 1e6
        for n, step in enumerate(result.steps):
            before = store.get(uri)
            assert before is not None
            change = TextChange(text=step.inserted, range=Range(
                start=before.position_at(step.start), end=before.position_at(step.end)))
            changed = store.change_with_edits(uri, [change], n + 2, Encoding.UTF16)
            assert not isinstance(changed, Exception) and isinstance(changed, tuple), changed
            now = clock0 + step.at_s
            workspace.changed(*changed, now=now)
            workspace.refresh_dirty(now)
            if n % every:
                continue
            workspace.history.close_open(now)
            t0 = time.perf_counter()
            suggestion = await complete(changed[1], step.cursor)
            into.latencies_ms.append((time.perf_counter() - t0) * 1000)
            into.states += 1
            for key, sink in (("ttft_ms", into.ttft_ms), ("total_ms", into.engine_total_ms)):
                if isinstance(value := suggestion.timing.get(key), int | float):
                    sink.append(float(value))
            into.prompt_tokens += suggestion.stats.get("prompt_tokens") or 0
            into.cached_prompt_tokens += suggestion.stats.get("cached_prompt_tokens") or 0
    finally:
        await process.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Example: bench_latency.py --speed 4 --sessions 1   (a quick check)")
    parser.add_argument("--sessions", default=None, metavar="N|NAME,...",
                        help="the first N sessions, or these names (default: all)")
    parser.add_argument("--session-dir", type=Path, default=REPO / "scripts" / "sessions")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="replay this many times faster than recorded (default 1.0)")
    parser.add_argument("--baseline-every", type=int, default=1, metavar="N",
                        help="time the engine alone on every Nth document state (default 1)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--index-timeout", type=float, default=120.0, metavar="S")
    parser.add_argument("--server-log-level", default="WARNING")
    parser.add_argument("--out", type=Path, default=REPO / "bench_results" / "latency.json")
    args = parser.parse_args()
    if args.speed <= 0 or args.baseline_every < 1:
        parser.error("--speed must be positive and --baseline-every at least 1")
    sessions = ts.pick(ts.load_sessions(args.session_dir), args.sessions)

    options = CompletionOptions()  # the server runs with its defaults; so does the baseline
    results = []
    for session in sessions:
        print(f"session {session.name}: {len(session.events)} keystrokes, "
              f"~{session.events[-1].t_ms / 1000 / args.speed:.0f} s at speed {args.speed}",
              flush=True)
        results.append(asyncio.run(run_session(session, args)))
    baseline = None
    if not args.no_baseline:
        baseline = ts.Baseline()
        for result in results:
            print(f"baseline (engine alone) on {result.session.name}", flush=True)
            asyncio.run(bench_engine(result, args.baseline_every, options, baseline))

    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version()}
    ts.report(results, baseline, args.speed)
    ts.write_json(args.out, results, baseline, machine=machine,
                  params={"speed": args.speed, "baseline_every": args.baseline_every,
                          "budget": options.budget, "max_tokens": options.max_tokens,
                          "sessions": [r.session.name for r in results]})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
