"""suggestions.py: type-through cache, adaptive debounce regimes, request tracking."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lsp_server.suggestions import (
    AdaptiveDebounce,
    Hit,
    RequestTracker,
    SuggestionCache,
    predicted_after_accept,
)

URI = "file:///a.py"
DOC = "def f(x):\n    return \n\nprint(f(1))\n"
AT = DOC.index("return ") + len("return ")
SUGGESTION = "x * 2 + 1"

TEXT = st.text(alphabet="ab (\n\té😀", max_size=30)


def _cache() -> SuggestionCache:
    cache = SuggestionCache()
    cache.store(URI, DOC, AT, SUGGESTION, suggestion_id="s1", now=0.0)
    return cache


def _typed(text: str, offset: int, typed: str) -> tuple[str, int]:
    return text[:offset] + typed + text[offset:], offset + len(typed)


def test_repeated_request_hits_with_the_whole_suggestion() -> None:
    assert _cache().lookup(URI, DOC, AT) == Hit(suggestion_id="s1", remaining=SUGGESTION,
                                                typed=0)


def test_typing_through_gives_the_rest() -> None:
    cache = _cache()
    text, offset = _typed(DOC, AT, "x * ")
    assert cache.lookup(URI, text, offset) == Hit("s1", "2 + 1", 4)


@pytest.mark.parametrize("case", [
    "other uri", "typed differently", "typed it all", "edit before", "edit after",
    "cursor before", "cursor moved past",
])
def test_misses(case: str) -> None:
    cache = _cache()
    uri, (text, offset) = URI, _typed(DOC, AT, "x * ")
    if case == "other uri":
        uri = "file:///b.py"
    elif case == "typed differently":
        text, offset = _typed(DOC, AT, "y")
    elif case == "typed it all":
        text, offset = _typed(DOC, AT, SUGGESTION)
    elif case == "edit before":
        text = "#" + text
        offset += 1
    elif case == "edit after":
        text = text + "#"
    elif case == "cursor before":
        text, offset = DOC, AT - 1
    elif case == "cursor moved past":
        offset += 1  # same text, cursor not where the typing ended
    assert cache.lookup(uri, text, offset) is None


@given(TEXT, TEXT, st.text(alphabet="ab )\n😀", min_size=1, max_size=12), st.data())
def test_any_typed_prefix_gives_the_rest(before: str, after: str, suggestion: str,
                                         data: st.DataObject) -> None:
    cache = SuggestionCache()
    text = before + after
    cache.store(URI, text, len(before), suggestion, suggestion_id="s", now=0.0)
    n = data.draw(st.integers(0, len(suggestion) - 1))
    typed, offset = _typed(text, len(before), suggestion[:n])
    assert cache.lookup(URI, typed, offset) == Hit("s", suggestion[n:], n)


@given(TEXT, TEXT, st.text(alphabet="ab", min_size=1, max_size=8), st.data())
def test_an_edit_before_the_offset_misses(before: str, after: str, suggestion: str,
                                          data: st.DataObject) -> None:
    assume(before)
    cache = SuggestionCache()
    text = before + after
    cache.store(URI, text, len(before), suggestion, suggestion_id="s", now=0.0)
    i = data.draw(st.integers(0, len(before) - 1))
    replacement = data.draw(st.sampled_from(["", "Z", "ZZ"]))
    edited = before[:i] + replacement + before[i + 1:]
    n = data.draw(st.integers(0, len(suggestion) - 1))
    typed, offset = _typed(edited + after, len(edited), suggestion[:n])
    # a deletion can give a document that really is the stored one typed into ("aa|" +
    # "a" after deleting one "a" of "aa" before typing "aa"): that must hit
    assume(all((typed, offset) != _typed(text, len(before), suggestion[:k])
               for k in range(len(suggestion))))
    assert cache.lookup(URI, typed, offset) is None


def test_newest_entry_wins_and_ids_replace() -> None:
    cache = _cache()
    cache.store(URI, DOC, AT, "x", suggestion_id="s2", now=1.0)
    assert cache.lookup(URI, DOC, AT) == Hit("s2", "x", 0)
    cache.store(URI, DOC, AT, "x + 3", suggestion_id="s1", now=2.0)  # same id: replaced
    assert len(cache) == 2
    assert cache.lookup(URI, DOC, AT) == Hit("s1", "x + 3", 0)


def test_empty_suggestion_is_not_stored() -> None:
    cache = SuggestionCache()
    cache.store(URI, DOC, AT, "", suggestion_id="e", now=0.0)
    assert len(cache) == 0 and cache.lookup(URI, DOC, AT) is None


def test_invalidate_drops_only_that_document() -> None:
    cache = _cache()
    cache.store("file:///b.py", DOC, AT, "y", suggestion_id="b", now=0.0)
    cache.invalidate(URI)
    assert cache.lookup(URI, DOC, AT) is None
    assert cache.lookup("file:///b.py", DOC, AT) == Hit("b", "y", 0)


def test_lru_bound_keeps_recently_hit_entries() -> None:
    cache = SuggestionCache(max_entries=3)
    for i in range(3):
        cache.store(f"u{i}", DOC, AT, "x", suggestion_id=f"s{i}", now=float(i))
    assert cache.lookup("u0", DOC, AT) is not None  # u0 is now the most recent
    cache.store("u3", DOC, AT, "x", suggestion_id="s3", now=3.0)
    assert len(cache) == 3
    assert cache.lookup("u1", DOC, AT) is None  # the least recent went
    assert all(cache.lookup(u, DOC, AT) is not None for u in ("u0", "u2", "u3"))


def test_precomputed_next_suggestion_hits_after_accept() -> None:
    cache = _cache()
    text, offset = predicted_after_accept(DOC, AT, SUGGESTION, len(SUGGESTION))
    cache.store(URI, text, offset, "  # doubled", suggestion_id="next", now=1.0)
    # the editor inserts the accepted suggestion: the document is the predicted one
    accepted, cursor = _typed(DOC, AT, SUGGESTION)
    assert cache.lookup(URI, accepted, cursor) == Hit("next", "  # doubled", 0)


def test_predicted_after_accept() -> None:
    assert predicted_after_accept("ab", 1, "XYZ", 3) == ("aXYZb", 4)
    assert predicted_after_accept("ab", 1, "XYZ", 2) == ("aXYb", 3)
    assert predicted_after_accept("ab", 2, "XYZ", 99) == ("abXYZ", 5)
    assert predicted_after_accept("ab", 0, "XYZ", -1) == ("ab", 0)


# -- adaptive debounce


def _typist(debounce: AdaptiveDebounce, interval_s: float, keys: int = 10) -> float:
    now = 100.0
    for _ in range(keys):
        debounce.keystroke(now)
        now += interval_s
    return now - interval_s  # the time of the last keystroke


def test_no_observation_gives_min() -> None:
    debounce = AdaptiveDebounce(min_ms=5.0, max_ms=150.0)
    assert debounce.delay_ms(0.0) == 5.0
    debounce.latency(300.0)
    assert debounce.delay_ms(0.0) == 5.0  # no typing speed yet
    debounce2 = AdaptiveDebounce(min_ms=5.0, max_ms=150.0)
    _typist(debounce2, 0.1)
    assert debounce2.delay_ms(100.9) == 5.0  # no latency yet


def test_fast_engine_answers_every_keystroke() -> None:
    debounce = AdaptiveDebounce(min_ms=0.0, max_ms=150.0)
    last = _typist(debounce, 0.2)  # 200 ms between keys
    debounce.latency(50.0)
    assert debounce.interval_ms == pytest.approx(200.0)
    assert debounce.delay_ms(last) == 0.0


def test_slow_engine_waits_about_one_interval() -> None:
    debounce = AdaptiveDebounce(min_ms=0.0, max_ms=150.0)
    last = _typist(debounce, 0.12)  # 120 ms between keys
    debounce.latency(400.0)
    assert debounce.delay_ms(last) == pytest.approx(120.0)
    # time since the keystroke counts towards the wait
    assert debounce.delay_ms(last + 0.05) == pytest.approx(70.0)


def test_wait_never_beyond_latency_or_max() -> None:
    debounce = AdaptiveDebounce(min_ms=0.0, max_ms=150.0)
    last = _typist(debounce, 0.1)
    debounce.latency(70.0)  # more than half the interval, less than all of it
    assert debounce.delay_ms(last) == pytest.approx(70.0)
    slow_typist = AdaptiveDebounce(min_ms=0.0, max_ms=150.0)
    last = _typist(slow_typist, 1.0)
    slow_typist.latency(900.0)
    assert slow_typist.delay_ms(last) == 150.0


def test_min_is_a_floor() -> None:
    debounce = AdaptiveDebounce(min_ms=30.0, max_ms=150.0)
    last = _typist(debounce, 0.2)
    debounce.latency(10.0)
    assert debounce.delay_ms(last) == 30.0


def test_pauses_do_not_count_as_typing_speed() -> None:
    debounce = AdaptiveDebounce(min_ms=0.0, max_ms=150.0)
    last = _typist(debounce, 0.1)
    debounce.keystroke(last + 30.0)  # a pause, then one more key
    assert debounce.interval_ms == pytest.approx(100.0)
    debounce.latency(500.0)
    assert debounce.delay_ms(last + 30.0) == pytest.approx(100.0)
    assert debounce.delay_ms(last + 33.0) == 0.0  # the user paused: answer now


def test_averages_move_with_alpha() -> None:
    debounce = AdaptiveDebounce(min_ms=0.0, max_ms=150.0, alpha=0.5)
    debounce.latency(100.0)
    debounce.latency(200.0)
    assert debounce.latency_ms == pytest.approx(150.0)
    debounce.latency(-5.0)  # ignored
    assert debounce.latency_ms == pytest.approx(150.0)


# -- request tracking


def test_request_tracker() -> None:
    tracker = RequestTracker()
    first = tracker.begin(URI)
    other = tracker.begin("file:///b.py")
    assert tracker.is_current(URI, first) and tracker.is_current("file:///b.py", other)
    second = tracker.begin(URI)  # a newer keystroke while the first is in flight
    assert second != first
    assert not tracker.is_current(URI, first) and tracker.is_current(URI, second)
    assert not tracker.finish(URI, first)
    assert tracker.finish(URI, second)
    third = tracker.begin(URI)  # nothing in flight: not a superseding begin
    assert (tracker.started, tracker.stale_count) == (4, 1)
    tracker.forget(URI)
    assert not tracker.is_current(URI, third)
