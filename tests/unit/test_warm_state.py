"""warm_state.py: which budget a completion asks with while the context warms up."""

from __future__ import annotations

from lsp_server.warm_state import WarmState, first_screen_offset, stable_head

A, B = "file:///a.py", "file:///b.py"
HEAD = tuple(range(1000))


def test_cold_documents_ask_with_the_small_budget() -> None:
    state = WarmState()
    assert state.budget(A, small=1024, full=8192) == 1024  # never told about it
    state.activate(A)
    assert state.budget(A, small=1024, full=8192) == 1024
    # one budget only (the warm budget is not smaller): nothing to wait for
    assert state.budget(A, small=8192, full=8192) == 8192
    assert state.budget(A, small=2000, full=960) == 960


def test_small_then_full() -> None:
    state = WarmState()
    state.activate(A)
    state.begin(A, 1024)
    assert state.snapshot(small=1024, full=8192) == [
        {"uri": A, "budget": 1024, "complete": False, "warming": 1024}]
    state.done(A, 1024, complete=True, full=False)
    state.begin(A, 8192)
    assert state.budget(A, small=1024, full=8192) == 1024  # the full one is not warm yet
    state.done(A, 8192, complete=True, full=True, head=HEAD)
    assert state.budget(A, small=1024, full=8192) == 8192
    assert state.snapshot(small=1024, full=8192) == [
        {"uri": A, "budget": 8192, "complete": True, "warming": None}]


def test_an_incomplete_prefill_claims_nothing() -> None:
    state = WarmState()
    state.activate(A)
    state.begin(A, 8192)
    state.done(A, 8192, complete=False, full=True, head=HEAD)
    assert not state.use_full(A)
    assert state.snapshot(small=1024, full=8192)[0]["warming"] is None


def test_another_document_takes_the_cache() -> None:
    state = WarmState()
    assert state.activate(A) and not state.activate(A)
    state.done(A, 8192, complete=True, full=True, head=HEAD)
    assert state.activate(B)
    # B's warm-up may evict A's blocks: A is back to the small budget until warmed again
    assert not state.use_full(A) and state.active == B


def test_the_stable_part_decides_whether_the_claim_holds() -> None:
    state = WarmState(stale_tokens=256)
    state.activate(A)
    state.done(A, 8192, complete=True, full=True, head=HEAD)
    state.refresh(A, HEAD)  # focus again, nothing changed
    assert state.use_full(A)
    state.refresh(A, HEAD + tuple(range(200)))  # a little history appended
    assert state.use_full(A)
    state.refresh(A, HEAD[:500] + (7,) * 500)  # the repository segment changed early
    assert not state.use_full(A)


def test_reset_and_forget() -> None:
    state = WarmState()
    state.activate(A)
    state.requested(A, 5)
    state.done(A, 8192, complete=True, full=True, head=HEAD)
    state.reset()  # a new engine: its cache is empty
    assert not state.use_full(A) and state.active == A and state.cursor(A, "x" * 10) == 5
    state.forget(A)
    assert state.active is None and state.snapshot(small=1, full=2) == []
    state.done(A, 8192, complete=True, full=True, head=HEAD)  # late answer for a closed one
    assert not state.use_full(A)


def test_stopped_clears_what_was_warming() -> None:
    state = WarmState()
    state.activate(A)
    assert not state.stopped(A)
    state.begin(A, 1024)
    assert state.stopped(A) and state.doc(A).warming is None


def test_cursor_prefers_the_last_request_then_the_focus_then_the_first_screen() -> None:
    state = WarmState()
    text = "".join(f"line {i}\n" for i in range(100))
    assert state.cursor(A, text) == first_screen_offset(text)
    state.focused(A, 30)
    state.focused(A, None)  # a focus without a position keeps the one known
    assert state.cursor(A, text) == 30
    state.requested(A, 12)
    assert state.cursor(A, text) == 12
    state.requested(A, 10_000)  # the document shrank since
    assert state.cursor(A, text) == len(text)


def test_first_screen_offset() -> None:
    text = "".join(f"{i}\n" for i in range(50))
    assert text[:first_screen_offset(text, 3)] == "0\n1\n2"
    assert first_screen_offset("short\nfile", 40) == len("short\nfile")
    assert first_screen_offset("", 40) == 0


def test_stable_head() -> None:
    assert stable_head(list(range(10)), 3) == tuple(range(7))
    assert stable_head([1, 2], 5) == ()
