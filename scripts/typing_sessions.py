"""Typing sessions: the recorded (here: synthesised) keystrokes that bench_latency.py replays.

A session is a JSON Lines file. The first line is the header: what was typed, from which
source and licence, how the timings were made, the document as it is before the first
keystroke (`text`, with the cursor at string offset `cursor`) and the text the keystrokes
produce at the cursor (`target`). Every other line is one keystroke at `t_ms` after the
session starts:

    {"t_ms": 812.4, "op": "type", "text": "d"}
    {"t_ms": 967.0, "op": "backspace"}

`type` inserts `text` at the cursor. It is one character, except for Enter, which inserts
the newline and the next line's indentation in one event (an editor's auto-indent).
`backspace` deletes the character before the cursor.

Also what a replay measured and its report (tables, JSON). Nothing here talks LSP or to
the engine: scripts/make_typing_sessions.py writes sessions, scripts/bench_latency.py
replays them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SESSION_DIR = Path(__file__).resolve().parent / "sessions"


@dataclass(frozen=True, kw_only=True)
class Event:
    t_ms: float
    op: str  # "type" | "backspace"
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t_ms": round(self.t_ms, 1), "op": self.op}
        if self.op == "type":
            out["text"] = self.text
        return out


@dataclass(frozen=True, kw_only=True)
class SessionHeader:
    session: str
    source: str  # where the code comes from (repository path, or the stdlib module)
    license: str
    model: str  # how the keystroke times were made
    seed: int
    path: str  # workspace-relative path the bench opens the document at
    language_id: str
    first_line: int  # 1-based lines of `source` that were removed and are retyped
    last_line: int
    text: str  # the document before the first keystroke
    cursor: int  # string offset of the cursor in `text`
    target: str  # what the keystrokes insert at the cursor, once typos are corrected
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Session:
    header: SessionHeader
    events: tuple[Event, ...]

    @property
    def name(self) -> str:
        return self.header.session

    def write(self, path: Path) -> None:
        lines = [json.dumps(asdict(self.header), ensure_ascii=False)]
        lines += [json.dumps(e.to_json(), ensure_ascii=False) for e in self.events]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Session:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
        header = SessionHeader(**rows[0])
        events = tuple(Event(t_ms=float(r["t_ms"]), op=r["op"], text=r.get("text", ""))
                       for r in rows[1:])
        return cls(header=header, events=events)


def load_sessions(folder: Path = SESSION_DIR) -> list[Session]:
    return [Session.read(p) for p in sorted(folder.glob("*.jsonl"))]


def typed_states(session: Session) -> list[int]:
    """For each event index i (and len(events)): how many characters of `target` stand
    correctly typed before event i, or -1 while an uncorrected typo is in the way."""
    typed, out = "", []
    target = session.header.target
    for event in session.events:
        out.append(len(typed) if target.startswith(typed) else -1)
        if event.op == "type":
            typed += event.text
        else:
            typed = typed[:-1]
    assert typed == target, f"{session.name}: the events do not type the target"
    out.append(len(typed))
    return out


def utf16_position(text: str, offset: int) -> tuple[int, int]:
    """(line, character) of a string offset, `character` in utf-16 code units (VS Code's)."""
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return line, len(text[line_start:offset].encode("utf-16-le")) // 2


def utf16_offset(text: str, line: int, character: int) -> int:
    """The string offset of a utf-16 (line, character), clamped to the line's end."""
    start = 0
    for _ in range(line):
        nl = text.find("\n", start)
        if nl < 0:
            return len(text)
        start = nl + 1
    end = text.find("\n", start)
    content = text[start:len(text) if end < 0 else end]
    units = 0
    for index, ch in enumerate(content):
        if units >= character:
            return start + index
        units += 2 if ord(ch) > 0xFFFF else 1
    return start + len(content)


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Summary:
    count: int
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, samples_ms: list[float]) -> Summary:
        if not samples_ms:
            return cls(0, None, None, None, None)
        ordered = sorted(samples_ms)
        return cls(count=len(ordered), p50_ms=percentile(ordered, 50),
                   p95_ms=percentile(ordered, 95), mean_ms=statistics.fmean(ordered),
                   max_ms=ordered[-1])


# -- what a replay measured


@dataclass
class Ghost:
    """The ghost text on screen: what is left of it at the cursor, and its item's id."""

    id: Any
    text: str


def plain(value: Any) -> Any:
    """JSON-like data from a pygls answer, which turns JSON objects into namedtuples."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def item_id(item: Any) -> Any:
    """The suggestion id the server puts in an inline item's accept command, or None."""
    arguments = item.command.arguments if item.command is not None else None
    return plain(arguments[0]) if arguments else None


@dataclass(frozen=True)
class Step:
    """A change the client sent, for the baseline: at `at_s` into the session, [start, end)
    of the text before it replaced by `inserted`; `cursor` after it."""

    at_s: float
    start: int
    end: int
    inserted: str
    cursor: int


@dataclass
class ClientCounts:
    keystrokes: int = 0  # typed keys and backspaces sent, plus one Tab per accept
    accepts: int = 0
    partial_accepts: int = 0  # cut to a keystroke boundary (never inside an auto-indent)
    chars_saved: int = 0
    keys_saved: int = 0  # session keystrokes skipped, less the Tab
    requests: int = 0
    cancelled_by_client: int = 0
    cancel_confirmed: int = 0  # answered with RequestCancelled (-32800)
    late_answers: int = 0  # answered with a result after the client had cancelled
    errors: int = 0
    answers: int = 0
    answers_with_ghost: int = 0
    shown: int = 0
    rejected: int = 0
    typed_through: int = 0  # ghost text typed to its end by hand
    superseded: int = 0  # replaced by a newer answer's ghost text
    unrenderable: int = 0  # an item whose range does not end at the cursor
    latencies_ms: list[float] = field(default_factory=list)
    ghost_latencies_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)  # how late the client sent keystrokes


@dataclass
class SessionResult:
    session: Session
    counts: ClientCounts
    stats: dict[str, Any] | None  # the server's `stats`, camelCase as sent
    status: dict[str, Any] | None
    cold_ms: float | None
    index_ms: float | None
    duration_s: float
    steps: list[Step]
    notices: list[str]
    in_sync: bool | None  # client and server copies end as expected (None: not asked)


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


# -- the report


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def share(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def number(stats: dict[str, Any] | None, *keys: str) -> float | None:
    """A numeric field of the server's `stats` (nested by `keys`), or None when absent."""
    value: Any = stats
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def total(stats: list[dict[str, Any] | None], key: str) -> float | None:
    values = [number(s, key) for s in stats]
    return None if not values or None in values else sum(v for v in values if v is not None)


def reuse(stats: dict[str, Any] | None) -> float | None:
    value = number(stats, "prefixReuse")
    if value is None:
        value = share(number(stats, "cachedPromptTokens"), number(stats, "promptTokens"))
    return value


def row(name: str, counts: ClientCounts, stats: dict[str, Any] | None, target_chars: int,
        server_cache: float | None) -> str:
    latency = Summary.of(counts.latencies_ms)
    saved = share(counts.chars_saved, target_chars)
    return (f"| {name} | {counts.keystrokes} | {counts.requests} | {fmt(latency.p50_ms)} | "
            f"{fmt(latency.p95_ms)} | {fmt(server_cache, '.1%')} | "
            f"{fmt(share(counts.cancelled_by_client, counts.requests), '.1%')} | "
            f"{fmt(reuse(stats), '.1%')} | {fmt(share(counts.accepts, counts.shown), '.1%')} | "
            f"{counts.chars_saved} ({fmt(saved, '.0%')}) |")


def pooled(results: list[SessionResult]) -> ClientCounts:
    out = ClientCounts()
    for result in results:
        for name, value in vars(result.counts).items():
            setattr(out, name, getattr(out, name) + value)
    return out


def pooled_stats(results: list[SessionResult]) -> dict[str, Any] | None:
    stats = [r.stats for r in results]
    if all(s is None for s in stats):
        return None
    keys = ("shown", "accepted", "partiallyAccepted", "rejected", "unknown", "requests",
            "answeredFromCache", "cancelled", "promptTokens", "cachedPromptTokens")
    out: dict[str, Any] = {key: total(stats, key) for key in keys}
    accepted = None if out["accepted"] is None or out["partiallyAccepted"] is None \
        else out["accepted"] + out["partiallyAccepted"]
    out["acceptanceRate"] = share(accepted, out["shown"])  # as the server counts it
    out["prefixReuse"] = share(out["cachedPromptTokens"], out["promptTokens"])
    return out


def report(results: list[SessionResult], baseline: Baseline | None, speed: float) -> None:
    everything = pooled(results)
    all_stats = pooled_stats(results)
    print(f"\nKeystroke -> ghost text through `sparkedit lsp` (stdio), synthetic typing sessions "
          f"replayed at speed {speed:g}. p50/p95: keystroke to the answer of that keystroke's "
          "request, over answered requests (not cancelled). From cache, prefix reuse: the "
          "server's own counters (`sparkedit/status` stats; n/a when it has none). Cancelled: "
          "requests the client cancelled because a newer key came first. Acceptance: accepted "
          "/ ghost texts shown. Chars saved: characters accepted (share of the typed text).\n")
    print("| session | keys | requests | p50 ms | p95 ms | from cache | cancelled | "
          "prefix reuse | acceptance | chars saved |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r.session.name, r.counts, r.stats, len(r.session.header.target),
                  share(number(r.stats, "answeredFromCache"), number(r.stats, "requests"))))
    chars = sum(len(r.session.header.target) for r in results)
    all_cache = share((all_stats or {}).get("answeredFromCache"),
                      (all_stats or {}).get("requests"))
    print(row("**all**", everything, all_stats, chars, all_cache))
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
        print(f"{r.session.name}: cold start (engine spawn, model load, first completion) "
              f"{fmt(r.cold_ms, '.0f')} ms; index wait {fmt(r.index_ms, '.0f')} ms; "
              f"replay {r.duration_s:.1f} s; final document as expected: {r.in_sync}")
        for notice in sorted(set(r.notices)):
            print(f"  server says: {notice}")


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def write_json(out: Path, results: list[SessionResult], baseline: Baseline | None, *,
               machine: dict[str, Any], params: dict[str, Any]) -> None:
    def counts(c: ClientCounts) -> dict[str, Any]:
        plain = {k: v for k, v in vars(c).items() if not isinstance(v, list)}
        return {**plain, "latency": asdict(Summary.of(c.latencies_ms)),
                "ghost_latency": asdict(Summary.of(c.ghost_latencies_ms)),
                "client_lag": asdict(Summary.of(c.lag_ms))}

    everything = pooled(results)
    base = Summary.of(baseline.latencies_ms) if baseline else None
    lsp = Summary.of(everything.latencies_ms)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "latency (typing sessions)",
        "machine": machine,
        "params": params,
        "sessions": [{
            "session": r.session.name, "source": r.session.header.source,
            "license": r.session.header.license, "model": r.session.header.model,
            "client": counts(r.counts), "server_stats": r.stats, "server_status": r.status,
            "cold_start_ms": r.cold_ms, "index_ms": r.index_ms, "duration_s": r.duration_s,
            "document_in_sync": r.in_sync,
            "samples_ms": r.counts.latencies_ms,
        } for r in results],
        "all": {"client": counts(everything), "server_stats": pooled_stats(results)},
        "baseline_engine_only": None if baseline is None else {
            **asdict(base), "states": baseline.states,
            "prefix_reuse": share(baseline.cached_prompt_tokens, baseline.prompt_tokens),
            "ttft_ms_median": median(baseline.ttft_ms),
            "engine_total_ms_median": median(baseline.engine_total_ms),
            "samples_ms": baseline.latencies_ms},
        "ratio_p50": share(lsp.p50_ms, base.p50_ms if base else None),
    }, indent=1))
