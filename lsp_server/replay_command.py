"""`sparkedit replay SESSION.jsonl ...`: replay recorded typing through a real language server.

Each session (the format is in lsp_server/sessions.py) runs against a fresh `sparkedit lsp`
started with this interpreter, driven by lsp_server/replay.py exactly as the latency
benchmark does, and the command prints what it measured: keystroke -> ghost text p50/p95,
the share answered from the suggestion cache, cancelled requests, prompt-prefix reuse,
acceptance and characters saved. `--json` prints one JSON object per session instead.

The workspace root is `--root`, else the nearest folder above the session file holding
`.git`; the session's document is opened at `root / header.path`. Exit codes: 2 for bad
arguments or a file that is not a session, 1 when a server fails, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcException

from lsp_server.replay import run_session
from lsp_server.sessions import (
    Figures,
    Session,
    SessionError,
    SessionResult,
    footer,
    result_json,
    table,
)
from lsp_server.usage import UsageError
from lsp_server.workspace import find_root

SERVER_FAILED = 1


class ServerFailure(Exception):
    """The server died, never answered, or its engine could not start."""


def server_command(args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "lsp_server.cli", "lsp"]
    if args.model:
        model = Path(args.model)
        if args.target in (None, "wafer-sim") and not model.is_dir():
            raise UsageError(f"--model {args.model} is not a folder")
        # The server runs in the workspace root: a relative folder must not change meaning.
        command += ["--model", str(model.resolve()) if model.exists() else args.model]
    if args.target:
        command += ["--target", args.target]
    return command


def read_sessions(paths: list[str]) -> list[tuple[Path, Session]]:
    """Every session, read before any server starts, so a bad file costs no replay."""
    out = []
    for name in paths:
        path = Path(name)
        try:
            out.append((path, Session.read(path)))
        except SessionError as exc:
            raise UsageError(str(exc)) from None
    return out


def root_for(path: Path, root: str | None) -> Path:
    if root is None:
        return find_root(path.resolve())
    folder = Path(root).resolve()
    if not folder.is_dir():
        raise UsageError(f"--root {root} is not a folder")
    return folder


def server_log_tail(log: str, lines: int = 12) -> str:
    # A cancel that crossed its answer is routine in a replay, and buries the cause.
    kept = [line for line in log.splitlines()
            if line.strip() and "Cancel notification for unknown message id" not in line]
    return "\n".join(kept[-lines:])


def check(result: SessionResult) -> None:
    """A replay that ran but whose server could not serve is a failure, not a result."""
    status = result.status
    if status is None:
        raise ServerFailure("the server did not answer `sparkedit/status`")
    if status.get("state") == "error":
        log = server_log_tail(result.server_log)
        raise ServerFailure(f"the engine failed: {status.get('message') or 'no message'}"
                            + (f"\nthe server's log ends:\n{log}" if log else ""))


def replay_one(path: Path, session: Session, root: Path, args: argparse.Namespace) -> SessionResult:
    events = session.events
    length_s = (events[-1].t_ms if events else 0.0) / 1000 / args.speed
    print(f"replaying {session.name} ({path}): {len(events)} keystrokes, ~{length_s:.1f} s "
          f"at speed {args.speed:g}, root {root}", file=sys.stderr, flush=True)
    try:
        result = asyncio.run(run_session(session, root=root, speed=args.speed,
                                         server_command=server_command(args)))
    except JsonRpcException as exc:  # initialize failed
        raise ServerFailure(f"the language server failed to start: {exc}") from None
    except (OSError, RuntimeError, TimeoutError) as exc:
        # RuntimeError: pygls fails the pending requests of a server that exited.
        raise ServerFailure(f"the language server stopped: {exc or type(exc).__name__}") \
            from None
    check(result)
    return result


def result_object(path: Path, result: SessionResult) -> dict[str, Any]:
    """The table's figures first (shares as fractions), then everything the bench records;
    the header's `model` (how the timings were made) becomes `timing_model`."""
    rest = result_json(result)
    rest["timing_model"] = rest.pop("model")
    del rest["session"]
    return {"session": result.session.name, "file": str(path),
            "events": len(result.session.events), **asdict(Figures.of_result(result)), **rest}


def run_replay(args: argparse.Namespace) -> int:
    if not args.speed > 0:
        raise UsageError("--speed must be positive")
    sessions = read_sessions(args.sessions)
    server_command(args)  # bad --model: exit 2 before any server starts
    roots = [root_for(path, args.root) for path, _ in sessions]
    results = []
    for (path, session), root in zip(sessions, roots, strict=True):
        try:
            result = replay_one(path, session, root, args)
        except ServerFailure as exc:
            print(f"sparkedit replay: {path}: {exc}", file=sys.stderr)
            return SERVER_FAILED
        results.append(result)
        if args.json:
            print(json.dumps(result_object(path, result), ensure_ascii=False), flush=True)
    if not args.json:
        print(f"Keystroke -> ghost text through `sparkedit lsp`, replayed at speed "
              f"{args.speed:g}. p50/p95 over answered requests; from cache and prefix reuse "
              "are the server's counters; acceptance: accepted / ghost texts shown.\n")
        print(table(results, all_row=len(results) > 1))
        print()
        for result in results:
            print(footer(result))
    return 0
