"""feedback.py: counting rules, rates, percentiles, bounded memory, the saved stats file."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from lsp_server.feedback import MAX_PENDING, Feedback

URI = "file:///a.py"


def _show(feedback: Feedback, sid: str, length: int = 10, latency: float | None = 20.0,
          now: float = 0.0) -> None:
    feedback.shown(sid, uri=URI, kind="ghost", length=length, latency_ms=latency, now=now)


def test_nothing_happened() -> None:
    summary = Feedback(None).summary()
    assert summary["shown"] == 0 and summary["acceptanceRate"] is None
    assert summary["acceptedCharsRate"] is None and summary["prefixReuse"] is None
    assert summary["latencyMs"] == {"p50": None, "p95": None, "count": 0}


def test_accept_partial_reject_and_rates() -> None:
    feedback = Feedback(None)
    for sid in ("a", "b", "c", "d"):
        _show(feedback, sid)
    feedback.accepted("a", None, now=1.0)
    feedback.accepted("b", 4, now=2.0)
    feedback.rejected("c", now=3.0)
    summary = feedback.summary()
    assert (summary["shown"], summary["accepted"], summary["partiallyAccepted"],
            summary["rejected"], summary["pending"]) == (4, 1, 1, 1, 2)
    assert summary["acceptanceRate"] == 0.5  # (1 + 1 partial) / 4
    assert summary["acceptedCharsRate"] == 0.35  # (10 + 4) / 40
    assert summary["timeToAcceptMs"] == {"p50": 1000.0, "p95": 2000.0, "count": 2}


def test_word_by_word_accept_moves_partial_to_accepted() -> None:
    feedback = Feedback(None)
    _show(feedback, "a", length=9)
    feedback.accepted("a", 3, now=1.0)
    feedback.accepted("a", 3, now=1.5)  # a repeated report adds nothing
    feedback.accepted("a", 6, now=2.0)
    summary = feedback.summary()
    assert (summary["accepted"], summary["partiallyAccepted"], summary["acceptedChars"]) == \
        (0, 1, 6)
    feedback.accepted("a", 9, now=3.0)
    summary = feedback.summary()
    assert (summary["accepted"], summary["partiallyAccepted"], summary["acceptedChars"]) == \
        (1, 0, 9)
    assert summary["timeToAcceptMs"]["count"] == 1  # timed at the first accept only


def test_reject_after_partial_stays_partial() -> None:
    feedback = Feedback(None)
    _show(feedback, "a")
    feedback.accepted("a", 2, now=1.0)
    feedback.rejected("a", now=2.0)
    summary = feedback.summary()
    assert (summary["partiallyAccepted"], summary["rejected"], summary["pending"]) == (1, 0, 0)


def test_accepted_length_is_clamped() -> None:
    feedback = Feedback(None)
    _show(feedback, "a", length=5)
    feedback.accepted("a", 50, now=1.0)
    assert feedback.summary()["acceptedChars"] == 5
    assert feedback.summary()["accepted"] == 1


def test_shown_twice_counts_once_and_unknown_ids() -> None:
    feedback = Feedback(None)
    _show(feedback, "a")
    _show(feedback, "a")
    feedback.accepted("zz", None, now=1.0)
    feedback.rejected("yy", now=1.0)
    feedback.accepted("a", None, now=1.0)
    feedback.accepted("a", None, now=2.0)  # already resolved: unknown now
    summary = feedback.summary()
    assert (summary["shown"], summary["accepted"], summary["unknown"]) == (1, 1, 3)


def test_pending_ids_are_bounded() -> None:
    feedback = Feedback(None)
    for i in range(MAX_PENDING + 5):
        _show(feedback, f"s{i}")
    assert feedback.summary()["pending"] == MAX_PENDING
    feedback.accepted("s0", None, now=1.0)  # the oldest were dropped
    feedback.accepted(f"s{MAX_PENDING + 4}", None, now=1.0)
    summary = feedback.summary()
    assert (summary["unknown"], summary["accepted"]) == (1, 1)


def test_requests_latency_and_prefix_reuse() -> None:
    feedback = Feedback(None)
    for ms in range(1, 101):  # 1..100 ms
        feedback.request(False, False, float(ms), 1000, 900)
    feedback.request(True, False, None, None, None)
    feedback.request(False, True, float("nan"), 50, None)
    summary = feedback.summary()
    assert (summary["requests"], summary["answeredFromCache"], summary["cancelled"]) == \
        (102, 1, 1)
    assert summary["latencyMs"] == {"p50": 50.0, "p95": 95.0, "count": 100}
    assert (summary["promptTokens"], summary["cachedPromptTokens"]) == (100_050, 90_000)
    assert summary["prefixReuse"] == round(90_000 / 100_050, 4)


def test_latencies_keep_the_last_thousand() -> None:
    feedback = Feedback(None)
    for _ in range(1000):
        feedback.request(False, False, 500.0, None, None)
    for _ in range(1000):
        feedback.request(False, False, 5.0, None, None)
    assert feedback.summary()["latencyMs"] == {"p50": 5.0, "p95": 5.0, "count": 1000}


def test_summary_is_json() -> None:
    feedback = Feedback(None)
    _show(feedback, "a")
    assert json.loads(json.dumps(feedback.summary())) == feedback.summary()


def test_save_writes_private_file_and_merges_lifetime(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sparkedit" / "stats.json"
    first = Feedback(path)
    _show(first, "a")
    first.accepted("a", None, now=1.0)
    first.save(now=1000.0)
    first.save(now=1001.0)  # saving again adds nothing twice
    data = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert data["updatedAt"] == 1001.0 and data["shown"] == 1
    assert data["lifetime"]["shown"] == 1 and data["lifetime"]["sessions"] == 1

    second = Feedback(path)  # a later session
    _show(second, "b")
    _show(second, "c")
    second.rejected("b", now=1.0)
    second.accepted("c", 5, now=2.0)
    second.save(now=2000.0)
    data = json.loads(path.read_text())
    assert data["shown"] == 2  # this session
    lifetime = data["lifetime"]
    assert (lifetime["shown"], lifetime["accepted"], lifetime["partiallyAccepted"],
            lifetime["rejected"], lifetime["sessions"]) == (3, 1, 1, 1, 2)
    assert lifetime["acceptanceRate"] == round(2 / 3, 4)
    second.accepted("c", 10, now=3.0)  # partial becomes full after a save
    second.save(now=2001.0)
    lifetime = json.loads(path.read_text())["lifetime"]
    assert (lifetime["accepted"], lifetime["partiallyAccepted"], lifetime["sessions"]) == \
        (2, 0, 2)
    assert [p.name for p in path.parent.iterdir()] == ["stats.json"]  # no temp files left


def test_save_over_a_corrupt_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "stats.json"
    path.write_text("{not json")
    feedback = Feedback(path)
    _show(feedback, "a")
    with caplog.at_level(logging.WARNING):
        feedback.save(now=1.0)
    assert "unreadable" in caplog.text
    assert json.loads(path.read_text())["lifetime"]["shown"] == 1


def test_save_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    feedback = Feedback(blocker / "sub" / "stats.json")  # a parent that is a file
    _show(feedback, "a")
    with caplog.at_level(logging.WARNING):
        first = feedback.save(now=1.0)
        again = [feedback.save(now=2.0), feedback.save(now=3.0)]
    assert first is not None and "could not save statistics" in first and "\n" not in first
    assert again == [None, None] and feedback.save_problem is not None
    assert caplog.text.count("could not save") == 1  # said once, not every minute
    blocker.unlink()  # the folder can be written again: the counts kept are saved
    assert feedback.save(now=4.0) is None and feedback.save_problem is None
    assert json.loads((blocker / "sub" / "stats.json").read_text())["lifetime"]["shown"] == 1
    assert Feedback(None).save(now=1.0) is None  # no path: nothing to do


def test_suppressed_edits_are_counted_by_gate_and_kept_in_the_lifetime(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    feedback = Feedback(path)
    assert feedback.summary()["suppressedEdits"] == 0
    assert feedback.summary()["suppressedBy"] == {}
    feedback.suppressed("destructive")
    feedback.suppressed("destructive")
    feedback.suppressed("breaks_parse")
    summary = feedback.summary()
    assert summary["suppressedEdits"] == 3
    assert summary["suppressedBy"] == {"destructive": 2, "breaks_parse": 1}
    assert summary["shown"] == 0  # a suppressed edit was never shown
    feedback.save(now=1.0)
    assert json.loads(path.read_text())["lifetime"]["suppressedEdits"] == 3
