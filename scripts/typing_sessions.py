"""The latency benchmark's own parts: its session folder, its baseline and its report.

The session format, what a replay measured and the per-session table live in
lsp_server/sessions.py (shared with `sparkedit replay`); this adds what only
scripts/bench_latency.py needs: choosing sessions, the engine-alone baseline, the full
markdown report and the JSON file.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsp_server.sessions import (
    Session,
    SessionResult,
    Summary,
    counts_json,
    fmt,
    footer,
    number,
    pooled,
    pooled_stats,
    result_json,
    share,
    table,
)

SESSION_DIR = Path(__file__).resolve().parent / "sessions"


def load_sessions(folder: Path = SESSION_DIR) -> list[Session]:
    return [Session.read(p) for p in sorted(folder.glob("*.jsonl"))]


@dataclass
class Baseline:
    latencies_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    engine_total_ms: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    states: int = 0


def pick(sessions: list[Session], which: str | None) -> list[Session]:
    if not which:
        return sessions
    if which.isdigit():
        return sessions[:int(which)]
    names = which.split(",")
    chosen = [s for s in sessions if s.name in names]
    missing = set(names) - {s.name for s in chosen}
    if missing:
        raise SystemExit(f"no such session: {', '.join(sorted(missing))} "
                         f"(have {', '.join(s.name for s in sessions)})")
    return chosen


def report(results: list[SessionResult], baseline: Baseline | None, speed: float) -> None:
    everything = pooled(results)
    all_stats = pooled_stats(results)
    print(f"\nKeystroke -> ghost text through `sparkedit lsp` (stdio), synthetic typing sessions "
          f"replayed at speed {speed:g}. p50/p95: keystroke to the answer of that keystroke's "
          "request, over answered requests (not cancelled). From cache, prefix reuse: the "
          "server's own counters (`sparkedit/status` stats; n/a when it has none). Cancelled: "
          "requests the client cancelled because a newer key came first. Acceptance: accepted "
          "/ ghost texts shown. Chars saved: characters accepted (share of the typed text).\n")
    print(table(results))
    lsp = Summary.of(everything.latencies_ms)
    if baseline is not None and baseline.latencies_ms:
        base = Summary.of(baseline.latencies_ms)
        print(f"| engine alone (baseline) | {baseline.states} | {baseline.states} | "
              f"{fmt(base.p50_ms)} | {fmt(base.p95_ms)} | – | – | "
              f"{fmt(share(baseline.cached_prompt_tokens, baseline.prompt_tokens), '.1%')} "
              "| – | – |")
        ratio = share(lsp.p50_ms, base.p50_ms)
        print(f"\nratio p50, keystroke -> ghost text / engine alone: {fmt(ratio, '.2f')}. "
              "Engine alone: the same document states (every change the client sent, at the "
              "same times) through the same prompt builder (`complete_in_workspace`, same "
              "root) straight to a fresh `sparkedit engine`, one request per state, "
              "sequentially: no transport, no queueing, no cancellation, no suggestion cache. "
              "Its prefix reuse is the engine's cached prompt tokens / prompt tokens.")
        print(f"engine alone medians: ttft {fmt(median(baseline.ttft_ms))} ms, engine total "
              f"{fmt(median(baseline.engine_total_ms))} ms")
    if all_stats is None:
        print("\nserver stats: n/a (the server's `sparkedit/status` answer has no `stats`)")
    else:
        print("\n| session (server's counters) | shown | accepted | partially | rejected | "
              "unknown id | acceptance | requests | from cache | cancelled | "
              "server p50 / p95 ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, s in [(r.session.name, r.stats) for r in results] + [("all", all_stats)]:
            cells = [fmt(number(s, k), "g") for k in ("shown", "accepted", "partiallyAccepted",
                                                      "rejected", "unknown")]
            cells += [fmt(number(s, "acceptanceRate"), ".1%"), fmt(number(s, "requests"), "g"),
                      fmt(number(s, "answeredFromCache"), "g"), fmt(number(s, "cancelled"), "g"),
                      "– (percentiles do not pool)" if s is all_stats else
                      f"{fmt(number(s, 'latencyMs', 'p50'))} / "
                      f"{fmt(number(s, 'latencyMs', 'p95'))}"]
            print(f"| {name} | " + " | ".join(cells) + " |")
    ghost = Summary.of(everything.ghost_latencies_ms)
    lag = Summary.of(everything.lag_ms)
    print(f"\nclient: {everything.answers} answers, {everything.answers_with_ghost} with ghost "
          f"text (p50 {fmt(ghost.p50_ms)} / p95 {fmt(ghost.p95_ms)} ms); keystroke -> answer "
          f"mean {fmt(lsp.mean_ms)} ms, max {fmt(lsp.max_ms)} ms; cancelled "
          f"{everything.cancelled_by_client} (server confirmed {everything.cancel_confirmed}, "
          f"answered anyway {everything.late_answers}), errors {everything.errors}; "
          f"accepted {everything.accepts} ({everything.partial_accepts} cut short), "
          f"{everything.keys_saved} keystrokes saved; rejected {everything.rejected}, typed "
          f"through {everything.typed_through}, superseded {everything.superseded}; "
          f"keystrokes sent late by the client: p95 {fmt(lag.p95_ms)} ms")
    for r in results:
        print(footer(r))


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def write_json(out: Path, results: list[SessionResult], baseline: Baseline | None, *,
               machine: dict[str, Any], params: dict[str, Any]) -> None:
    everything = pooled(results)
    base = Summary.of(baseline.latencies_ms) if baseline else None
    lsp = Summary.of(everything.latencies_ms)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "latency (typing sessions)",
        "machine": machine,
        "params": params,
        "sessions": [result_json(r) for r in results],
        "all": {"client": counts_json(everything), "server_stats": pooled_stats(results)},
        "baseline_engine_only": None if baseline is None else {
            **asdict(base), "states": baseline.states,
            "prefix_reuse": share(baseline.cached_prompt_tokens, baseline.prompt_tokens),
            "ttft_ms_median": median(baseline.ttft_ms),
            "engine_total_ms_median": median(baseline.engine_total_ms),
            "samples_ms": baseline.latencies_ms},
        "ratio_p50": share(lsp.p50_ms, base.p50_ms if base else None),
    }, indent=1))
