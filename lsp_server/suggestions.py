"""Speed tricks around suggestions: type-through cache, adaptive debounce, current request.

All pure: no I/O, no clock. Every method that depends on time takes `now` (seconds, from
any monotonic clock, the same one for every call on an object).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

PAUSE_S = 2.0  # a gap between keystrokes longer than this is a pause, not typing speed


@dataclass(frozen=True, slots=True)
class Hit:
    """A cached suggestion still valid at the cursor: show `remaining` there."""

    suggestion_id: str
    remaining: str  # the part of the suggestion not typed yet (never empty)
    typed: int  # how many of its characters the user has typed since it was stored


@dataclass(frozen=True, slots=True)
class _Entry:
    prefix: str  # the document before the stored offset
    suffix: str  # the document after it
    suggestion: str
    suggestion_id: str
    stored_at: float


class SuggestionCache:
    """Suggestions shown (or pre-computed) per document, found again while the user types
    through them, so the next keystrokes cost no engine request.

    Key: (uri, suggestion_id); an entry holds the document split at its offset. Bound:
    `max_entries` over all documents, least recently stored or hit dropped first, so the
    memory is at most `max_entries` document copies. Invalidation: `invalidate(uri)` (the
    document closed); any other edit needs none, because `lookup` checks that the text
    before the stored offset and after the cursor is unchanged.
    """

    def __init__(self, max_entries: int = 32) -> None:
        assert max_entries > 0
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def store(self, uri: str, text: str, offset: int, suggestion: str, *,
              suggestion_id: str, now: float) -> None:
        """Remember `suggestion` shown at string offset `offset` of `text` (an empty
        suggestion is not stored: there is nothing to type through)."""
        assert 0 <= offset <= len(text), "callers map positions to valid offsets"
        if not suggestion:
            return
        key = (uri, suggestion_id)
        self._entries.pop(key, None)
        self._entries[key] = _Entry(prefix=text[:offset], suffix=text[offset:],
                                    suggestion=suggestion, suggestion_id=suggestion_id,
                                    stored_at=now)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def lookup(self, uri: str, text: str, offset: int) -> Hit | None:
        """The most recent entry of `uri` that the user typed into (or asked for again at
        the same place), when something of it remains; None otherwise."""
        for key in reversed(self._entries):
            if key[0] != uri:
                continue
            entry = self._entries[key]
            hit = _match(entry, text, offset)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        return None

    def invalidate(self, uri: str) -> None:
        for key in [k for k in self._entries if k[0] == uri]:
            del self._entries[key]


def _match(entry: _Entry, text: str, offset: int) -> Hit | None:
    start = len(entry.prefix)
    typed = offset - start
    if not 0 <= typed < len(entry.suggestion):
        return None
    # lengths first; then the typed characters (short), then prefix and suffix, compared
    # in place by startswith/endswith without copying the document
    if len(text) != start + typed + len(entry.suffix):
        return None
    if typed and not text.startswith(entry.suggestion[:typed], start):
        return None
    if not text.endswith(entry.suffix) or not text.startswith(entry.prefix):
        return None
    return Hit(suggestion_id=entry.suggestion_id, remaining=entry.suggestion[typed:],
               typed=typed)


class AdaptiveDebounce:
    """How long to wait after a keystroke before asking the engine.

    It keeps two moving averages (EMA with weight `alpha` on the newest observation): the
    user's interval between keystrokes (gaps over `PAUSE_S` are pauses and not counted)
    and the engine's latency (time to the answer or first token). The rule:

    - an engine that answers within half the typical interval answers every keystroke
      before the next one: no wait (`min_ms`);
    - otherwise the next keystroke is likely to arrive and cancel the request: wait about
      one typical interval, but never longer than the engine would take, less the time
      already elapsed since the last keystroke;
    - the result is clamped to [`min_ms`, `max_ms`]; before both averages exist, and
      after a pause, it is `min_ms`.
    """

    def __init__(self, min_ms: float, max_ms: float, alpha: float = 0.3) -> None:
        assert 0 <= min_ms <= max_ms and 0 < alpha <= 1
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.alpha = alpha
        self.interval_ms: float | None = None
        self.latency_ms: float | None = None
        self._last_key: float | None = None

    def _ema(self, old: float | None, new: float) -> float:
        return new if old is None else old + self.alpha * (new - old)

    def keystroke(self, now: float) -> None:
        if self._last_key is not None and 0 <= now - self._last_key <= PAUSE_S:
            self.interval_ms = self._ema(self.interval_ms, (now - self._last_key) * 1000)
        self._last_key = now

    def latency(self, ms: float) -> None:
        """Record an engine answer's latency (not one served from the cache)."""
        if ms >= 0:
            self.latency_ms = self._ema(self.latency_ms, ms)

    def delay_ms(self, now: float) -> float:
        interval, latency = self.interval_ms, self.latency_ms
        if interval is None or latency is None or self._last_key is None:
            return self.min_ms
        elapsed = (now - self._last_key) * 1000
        if latency <= interval / 2 or elapsed > PAUSE_S * 1000:
            wait = 0.0
        else:
            wait = min(interval, latency) - max(elapsed, 0.0)
        return min(max(wait, self.min_ms), self.max_ms)


class RequestTracker:
    """Which request is the latest for each document; older ones are stale.

    Memory: one token per document with a request begun, dropped by `forget(uri)`.
    """

    def __init__(self) -> None:
        self._latest: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._counter = 0
        self.started = 0  # requests begun
        self.stale_count = 0  # requests superseded by a newer one before they finished

    def begin(self, uri: str) -> int:
        self._counter += 1
        self.started += 1
        if uri in self._in_flight:
            self.stale_count += 1
        self._latest[uri] = self._in_flight[uri] = self._counter
        return self._counter

    def is_current(self, uri: str, token: int) -> bool:
        return self._latest.get(uri) == token

    def finish(self, uri: str, token: int) -> bool:
        """Mark `token`'s request done; whether it was still the current one."""
        if self._in_flight.get(uri) == token:
            del self._in_flight[uri]
        return self.is_current(uri, token)

    def forget(self, uri: str) -> None:
        self._latest.pop(uri, None)
        self._in_flight.pop(uri, None)


def predicted_after_accept(text: str, offset: int, suggestion: str,
                           accepted_chars: int) -> tuple[str, int]:
    """The document and cursor offset after accepting the first `accepted_chars`
    characters of `suggestion` shown at `offset` (clamped to the suggestion)."""
    assert 0 <= offset <= len(text)
    accepted = suggestion[:max(0, accepted_chars)]
    return text[:offset] + accepted + text[offset:], offset + len(accepted)
