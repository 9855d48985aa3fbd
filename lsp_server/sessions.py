"""Typing sessions: recorded keystrokes, what replaying them measured, and its table.

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

Nothing here talks LSP or to the engine: lsp_server/replay.py replays a session through a
real server, `sparkedit replay` and scripts/bench_latency.py report what it measured.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

OPS = ("type", "backspace")


class SessionError(ValueError):
    """A file that is not a session; the message names the file and the line."""


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
    """Provenance fields (source .. last_line, note) may be left out of a hand-written
    session; the generator always writes them."""

    session: str
    source: str = ""  # where the code comes from (repository path, or the stdlib module)
    license: str = ""
    model: str = ""  # how the keystroke times were made
    seed: int = 0
    path: str  # workspace-relative path the replay opens the document at
    language_id: str
    first_line: int = 0  # 1-based lines of `source` that were removed and are retyped
    last_line: int = 0
    text: str  # the document before the first keystroke
    cursor: int  # string offset of the cursor in `text`
    target: str  # what the keystrokes insert at the cursor, once typos are corrected
    note: str = ""


_REQUIRED = ("session", "path", "language_id", "text", "cursor", "target")
_HEADER_TYPES = {f.name: int if f.name in ("cursor", "seed", "first_line", "last_line")
                 else str for f in fields(SessionHeader)}


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
        """The session in `path`; SessionError naming the file and line if it is not one."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise SessionError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SessionError(f"{path}: cannot read it ({exc})") from None
        rows = [(n, _object(path, n, line)) for n, line in enumerate(lines, 1) if line.strip()]
        if not rows:
            raise SessionError(f"{path}: empty, no header line")
        header = _header(path, *rows[0])
        events = tuple(_event(path, n, row) for n, row in rows[1:])
        _check_typing(path, header, events, [n for n, _ in rows[1:]])
        return cls(header=header, events=events)


def _object(path: Path, n: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SessionError(f"{path}:{n}: not JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(row, dict):
        raise SessionError(f"{path}:{n}: not a JSON object")
    return row


def _header(path: Path, n: int, row: dict[str, Any]) -> SessionHeader:
    if "op" in row and "target" not in row:
        raise SessionError(f"{path}:{n}: no header line (this is a keystroke; the first "
                           f"line must hold {', '.join(_REQUIRED)})")
    missing = [key for key in _REQUIRED if key not in row]
    if missing:
        raise SessionError(f"{path}:{n}: the header lacks {', '.join(missing)}")
    unknown = sorted(set(row) - set(_HEADER_TYPES))
    if unknown:
        raise SessionError(f"{path}:{n}: unknown header field {', '.join(unknown)}")
    for key, value in row.items():
        kind = _HEADER_TYPES[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SessionError(f"{path}:{n}: header field {key} must be {kind.__name__}")
    header = SessionHeader(**row)
    if not 0 <= header.cursor <= len(header.text):
        raise SessionError(f"{path}:{n}: cursor {header.cursor} is outside `text` "
                           f"(0..{len(header.text)})")
    return header


def _event(path: Path, n: int, row: dict[str, Any]) -> Event:
    t_ms, op, text = row.get("t_ms"), row.get("op"), row.get("text", "")
    if not isinstance(t_ms, int | float) or isinstance(t_ms, bool):
        raise SessionError(f"{path}:{n}: a keystroke needs a number `t_ms`")
    if op not in OPS:
        raise SessionError(f"{path}:{n}: unknown op {op!r} (expected {' or '.join(OPS)})")
    if op == "type" and (not isinstance(text, str) or not text):
        raise SessionError(f"{path}:{n}: a `type` keystroke needs a non-empty `text`")
    return Event(t_ms=float(t_ms), op=op, text=text if op == "type" else "")


def _check_typing(path: Path, header: SessionHeader, events: tuple[Event, ...],
                  line_numbers: list[int]) -> None:
    typed = ""
    for event, n in zip(events, line_numbers, strict=True):
        if event.op == "type":
            typed += event.text
        elif not typed:
            raise SessionError(f"{path}:{n}: backspace before the session's cursor")
        else:
            typed = typed[:-1]
    if typed != header.target:
        raise SessionError(f"{path}:1: the keystrokes do not type the header's `target` "
                           f"(they type {len(typed)} characters, the target has "
                           f"{len(header.target)})")


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


@dataclass(frozen=True)
class Step:
    """A change the client sent: at `at_s` into the session, [start, end) of the text
    before it replaced by `inserted`; `cursor` after it."""

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
    server_log: str = ""  # the tail of the server's stderr


# -- the figures and their table


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


@dataclass(frozen=True, kw_only=True)
class Figures:
    """One row of the table; shares are fractions, None where there is nothing to count."""

    keystrokes: int
    requests: int
    p50_ms: float | None  # keystroke -> answer, over answered requests
    p95_ms: float | None
    from_cache: float | None  # the server's answeredFromCache / requests
    cancelled: float | None  # requests the client cancelled
    prefix_reuse: float | None
    acceptance: float | None  # accepted / ghost texts shown
    chars_saved: int
    chars_saved_share: float | None  # of the session's typed text

    @classmethod
    def of(cls, counts: ClientCounts, stats: dict[str, Any] | None, target_chars: int,
           server_cache: float | None) -> Figures:
        latency = Summary.of(counts.latencies_ms)
        return cls(keystrokes=counts.keystrokes, requests=counts.requests,
                   p50_ms=latency.p50_ms, p95_ms=latency.p95_ms, from_cache=server_cache,
                   cancelled=share(counts.cancelled_by_client, counts.requests),
                   prefix_reuse=reuse(stats), acceptance=share(counts.accepts, counts.shown),
                   chars_saved=counts.chars_saved,
                   chars_saved_share=share(counts.chars_saved, target_chars))

    @classmethod
    def of_result(cls, result: SessionResult) -> Figures:
        return cls.of(result.counts, result.stats, len(result.session.header.target),
                      share(number(result.stats, "answeredFromCache"),
                            number(result.stats, "requests")))


TABLE_HEAD = ("| session | keys | requests | p50 ms | p95 ms | from cache | cancelled | "
              "prefix reuse | acceptance | chars saved |\n"
              "|---|---|---|---|---|---|---|---|---|---|")


def row(name: str, f: Figures) -> str:
    return (f"| {name} | {f.keystrokes} | {f.requests} | {fmt(f.p50_ms)} | "
            f"{fmt(f.p95_ms)} | {fmt(f.from_cache, '.1%')} | {fmt(f.cancelled, '.1%')} | "
            f"{fmt(f.prefix_reuse, '.1%')} | {fmt(f.acceptance, '.1%')} | "
            f"{f.chars_saved} ({fmt(f.chars_saved_share, '.0%')}) |")


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


def table(results: list[SessionResult], *, all_row: bool = True) -> str:
    """The markdown table: a row per session and, with `all_row`, one pooling them all."""
    lines = [TABLE_HEAD] + [row(r.session.name, Figures.of_result(r)) for r in results]
    if all_row:
        all_stats = pooled_stats(results)
        chars = sum(len(r.session.header.target) for r in results)
        all_cache = share((all_stats or {}).get("answeredFromCache"),
                          (all_stats or {}).get("requests"))
        lines.append(row("**all**", Figures.of(pooled(results), all_stats, chars, all_cache)))
    return "\n".join(lines)


def footer(result: SessionResult) -> str:
    """What the table leaves out: start-up times, the replay's length, the final check."""
    lines = [f"{result.session.name}: cold start (engine spawn, model load, first completion) "
             f"{fmt(result.cold_ms, '.0f')} ms; index wait {fmt(result.index_ms, '.0f')} ms; "
             f"replay {result.duration_s:.1f} s; final document as expected: {result.in_sync}"]
    lines += [f"  server says: {notice}" for notice in sorted(set(result.notices))]
    return "\n".join(lines)


def counts_json(c: ClientCounts) -> dict[str, Any]:
    plain = {k: v for k, v in vars(c).items() if not isinstance(v, list)}
    return {**plain, "latency": asdict(Summary.of(c.latencies_ms)),
            "ghost_latency": asdict(Summary.of(c.ghost_latencies_ms)),
            "client_lag": asdict(Summary.of(c.lag_ms))}


def result_json(r: SessionResult) -> dict[str, Any]:
    header = r.session.header
    return {"session": r.session.name, "source": header.source, "license": header.license,
            "model": header.model, "client": counts_json(r.counts), "server_stats": r.stats,
            "server_status": r.status, "cold_start_ms": r.cold_ms, "index_ms": r.index_ms,
            "duration_s": r.duration_s, "document_in_sync": r.in_sync,
            "samples_ms": r.counts.latencies_ms}
