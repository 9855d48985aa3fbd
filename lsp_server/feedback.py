"""What happened to the suggestions: shown, accepted (fully or partly), rejected; requests,
latencies and prompt-cache reuse, summarised for `sparkedit/status` and saved to disk.

Counting rules. An id is counted as shown once, however often the client reports it. The
first accept of an id counts it as accepted, or as partially accepted when fewer
characters than its length were taken; a later, longer accept of the same id
(word-by-word acceptance: lengths are cumulative) adds the new characters and, once all
are taken, moves it from partial to accepted. A reject after a partial accept leaves it
partially accepted. Events for ids never shown
(or dropped from the bounded pending set) count as `unknown` and change nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

Kind = Literal["ghost", "next_edit", "edit"]
MAX_PENDING = 1000  # shown ids awaiting accept or reject
MAX_SAMPLES = 1000  # latencies kept for percentiles

# counters that add up across sessions (the `lifetime` object in the stats file)
COUNTERS = ("shown", "accepted", "partiallyAccepted", "rejected", "unknown", "shownChars",
            "acceptedChars", "requests", "answeredFromCache", "cancelled", "promptTokens",
            "cachedPromptTokens", "suppressedEdits")


@dataclass(slots=True)
class _Shown:
    uri: str
    kind: Kind
    length: int
    shown_at: float
    accepted_chars: int = 0
    partial: bool = False  # counted as partially accepted (so far)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentiles(samples: deque[float]) -> dict[str, float | int | None]:
    """Nearest-rank p50 and p95 of the samples, in ms."""
    ordered = sorted(samples)

    def rank(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 1)

    return {"p50": rank(0.5), "p95": rank(0.95), "count": len(ordered)}


def _rates(totals: dict[str, int]) -> dict[str, float | None]:
    return {
        "acceptanceRate": _ratio(totals["accepted"] + totals["partiallyAccepted"],
                                 totals["shown"]),
        "acceptedCharsRate": _ratio(totals["acceptedChars"], totals["shownChars"]),
        "prefixReuse": _ratio(totals["cachedPromptTokens"], totals["promptTokens"]),
    }


class Feedback:
    """Counters for one server session, saved (with lifetime totals) to `stats_path`.

    Memory: at most MAX_PENDING shown ids (oldest dropped first; a late event for one
    counts as unknown) and MAX_SAMPLES latencies of each kind.
    """

    def __init__(self, stats_path: Path | None) -> None:
        self.stats_path = stats_path
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._saved = dict.fromkeys(COUNTERS, 0)  # what earlier saves added to the file
        self._pending: OrderedDict[str, _Shown] = OrderedDict()
        self._latencies: deque[float] = deque(maxlen=MAX_SAMPLES)
        self._shown_latencies: deque[float] = deque(maxlen=MAX_SAMPLES)
        self._decisions: deque[float] = deque(maxlen=MAX_SAMPLES)  # shown -> accepted, ms
        self._session_saved = False
        # Why the last save failed; said once, and again only after a save succeeded.
        self.save_problem: str | None = None
        self._suppressed_by: dict[str, int] = {}  # quality gate -> edits it held back

    # -- events

    def shown(self, suggestion_id: str, *, uri: str, kind: Kind, length: int,
              latency_ms: float | None, now: float) -> None:
        if suggestion_id in self._pending:
            return  # the same suggestion shown again (typed through, re-rendered)
        self._pending[suggestion_id] = _Shown(uri=uri, kind=kind, length=max(0, length),
                                              shown_at=now)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        self._counts["shown"] += 1
        self._counts["shownChars"] += max(0, length)
        _add_sample(self._shown_latencies, latency_ms)

    def accepted(self, suggestion_id: str, accepted_length: int | None, now: float) -> None:
        """All of the suggestion (`accepted_length` None) or its first characters."""
        entry = self._pending.get(suggestion_id)
        if entry is None:
            self._counts["unknown"] += 1
            return
        taken = entry.length if accepted_length is None \
            else min(max(0, accepted_length), entry.length)
        if entry.partial and taken <= entry.accepted_chars:
            return  # a repeated or shorter report of what was already counted
        if not entry.partial:
            _add_sample(self._decisions, (now - entry.shown_at) * 1000)
        self._counts["acceptedChars"] += taken - entry.accepted_chars
        entry.accepted_chars = taken
        if taken < entry.length:
            if not entry.partial:
                self._counts["partiallyAccepted"] += 1
            entry.partial = True
            return
        if entry.partial:
            self._counts["partiallyAccepted"] -= 1
        self._counts["accepted"] += 1
        del self._pending[suggestion_id]

    def rejected(self, suggestion_id: str, now: float) -> None:
        entry = self._pending.pop(suggestion_id, None)
        if entry is None:
            self._counts["unknown"] += 1
        elif not entry.partial:
            self._counts["rejected"] += 1

    def request(self, answered_from_cache: bool, cancelled: bool, latency_ms: float | None,
                prompt_tokens: int | None, cached_prompt_tokens: int | None) -> None:
        self._counts["requests"] += 1
        self._counts["answeredFromCache"] += bool(answered_from_cache)
        self._counts["cancelled"] += bool(cancelled)
        _add_sample(self._latencies, latency_ms)
        if isinstance(prompt_tokens, int) and prompt_tokens > 0:
            self._counts["promptTokens"] += prompt_tokens
            if isinstance(cached_prompt_tokens, int) and cached_prompt_tokens > 0:
                self._counts["cachedPromptTokens"] += min(cached_prompt_tokens, prompt_tokens)

    def suppressed(self, reason: str) -> None:
        """An edit the model proposed that a quality gate (edit_gates.py) did not show."""
        self._counts["suppressedEdits"] += 1
        self._suppressed_by[reason] = self._suppressed_by.get(reason, 0) + 1

    # -- reports

    def summary(self) -> dict[str, Any]:
        """This session's figures, camelCase for the wire."""
        return {
            **self._counts,
            **_rates(self._counts),
            "latencyMs": _percentiles(self._latencies),
            "shownLatencyMs": _percentiles(self._shown_latencies),
            "timeToAcceptMs": _percentiles(self._decisions),
            "pending": len(self._pending),
            "suppressedBy": dict(self._suppressed_by),
        }

    def save(self, now: float) -> str | None:
        """Write the summary, `updatedAt` (the `now` given) and the lifetime totals (the
        file's earlier totals plus what this session added since its last save) to
        `stats_path`, atomically and readable by the user only. An I/O error is logged and
        returned as one line the first time (None otherwise); `save_problem` keeps it."""
        if self.stats_path is None:
            return None
        path = self.stats_path
        lifetime = _read_lifetime(path)
        for key in COUNTERS:
            lifetime[key] = max(0, lifetime[key] + self._counts[key] - self._saved[key])
        lifetime["sessions"] += 0 if self._session_saved else 1
        data = {**self.summary(), "updatedAt": now,
                "lifetime": {**lifetime, **_rates(lifetime)}}
        try:
            _write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        except OSError as exc:  # a read-only or full folder: keep serving, say so once
            first = self.save_problem is None
            self.save_problem = (f"could not save statistics to {path}: "
                                 f"{exc.strerror or exc} (the counts are kept in memory)")
            if first:
                log.warning("%s; said once", self.save_problem)
                return self.save_problem
            return None
        if self.save_problem is not None:
            log.info("statistics saved to %s again", path)
        self.save_problem = None
        self._saved = dict(self._counts)
        self._session_saved = True
        return None


def _add_sample(samples: deque[float], ms: float | None) -> None:
    if isinstance(ms, int | float) and not isinstance(ms, bool) and math.isfinite(ms) \
            and ms >= 0:
        samples.append(float(ms))


def _read_lifetime(path: Path) -> dict[str, int]:
    """The file's lifetime counters (zeros for a missing, unreadable or foreign file)."""
    totals = dict.fromkeys((*COUNTERS, "sessions"), 0)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return totals
    except (OSError, ValueError) as exc:
        log.warning("statistics file %s unreadable (%s); lifetime totals start again",
                    path, exc)
        return totals
    earlier = data.get("lifetime") if isinstance(data, dict) else None
    if isinstance(earlier, dict):
        for key in totals:
            value = earlier.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                totals[key] = value
    return totals


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file with mode 0600 in the target's folder, so os.replace is a
    # rename on one file system: a reader sees the old file or the new one, never half
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
