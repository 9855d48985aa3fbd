"""Acceptance of ghost text in `sparkedit replay`: the recorded typing sessions replayed
through a real `sparkedit lsp` with the model, read from the command's `--json` lines.

Acceptance is over all sessions together: ghost texts accepted / ghost texts shown (the
simulated user accepts ghost text of at least 3 characters that is exactly what they type
next; see lsp_server/replay.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SESSIONS = REPO / "scripts" / "sessions"


@dataclass
class ReplayScore:
    sessions: list[str] = field(default_factory=list)
    accepts: int = 0
    shown: int = 0
    chars_saved: int = 0
    requests: int = 0
    error: str | None = None

    @property
    def acceptance(self) -> float | None:
        return self.accepts / self.shown if self.shown and self.error is None else None


def session_files(quick: bool) -> list[Path]:
    files = sorted(SESSIONS.glob("*.jsonl"))
    return files[:1] if quick else files


def read_replay_json(lines: Iterable[str]) -> ReplayScore:
    """The sum of the `--json` objects (one per session) among `lines`."""
    score = ReplayScore()
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        client = record.get("client") or {}
        score.sessions.append(str(record.get("session")))
        score.accepts += int(client.get("accepts", 0))
        score.shown += int(client.get("shown", 0))
        score.chars_saved += int(record.get("chars_saved", 0))
        score.requests += int(record.get("requests", 0))
    return score


def replay_command(model_dir: Path, sessions: Sequence[Path], speed: float) -> list[str]:
    return [sys.executable, "-m", "lsp_server.cli", "replay", *map(str, sessions),
            "--model", str(Path(model_dir).resolve()), "--json", "--speed", f"{speed:g}"]


def replay_acceptance(model_dir: Path, sessions: Sequence[Path], speed: float,
                      timeout_s: float = 900) -> ReplayScore:
    """Run `sparkedit replay` on the sessions; a failed run gives a score with `error`."""
    try:
        done = subprocess.run(replay_command(model_dir, sessions, speed), cwd=REPO,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ReplayScore(error=f"timed out after {timeout_s:g} s")
    score = read_replay_json(done.stdout.splitlines())
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        score.error = f"exit {done.returncode}: " + " / ".join(tail)
    return score
