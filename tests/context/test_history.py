"""Edit history: bursts of typing coalesce into one exact unified diff."""

from __future__ import annotations

import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.history import EditHistory

TEXT = "".join(f"line {i}\n" for i in range(20))


def type_text(history: EditHistory, path: str, text: str, at: int, typed: str,
              t0: float, step: float = 0.1) -> tuple[str, float]:
    """Type `typed` one character at a time at offset `at`; returns (text, time)."""
    now = t0
    for i, ch in enumerate(typed):
        history.record(path, text, at + i, "", ch, now)
        text = text[: at + i] + ch + text[at + i:]
        now += step
    return text, now


def reference_diff(path: str, before: str, after: str, n: int = 2) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}", n=n))


def test_typing_a_word_is_one_entry_with_an_exact_diff() -> None:
    history = EditHistory()
    at = TEXT.index("line 5") + len("line 5")
    after, now = type_text(history, "a.py", TEXT, at, " hello", 0.0)
    assert history.entries() == []  # the open burst is not shown by default
    (open_entry,) = history.entries(include_open=True)
    assert not open_entry.closed
    history.close_open(now + 10)
    (entry,) = history.entries()
    assert entry.closed and entry.path == "a.py" and entry.seq == 0
    assert entry.diff == reference_diff("a.py", TEXT, after)
    assert entry.diff == (
        "--- a/a.py\n+++ b/a.py\n@@ -4,5 +4,5 @@\n line 3\n line 4\n-line 5\n"
        "+line 5 hello\n line 6\n line 7\n")


def test_close_open_waits_for_the_gap() -> None:
    history = EditHistory(burst_gap_s=1.5)
    history.record("a.py", TEXT, 0, "", "x", 0.0)
    history.close_open(1.0)
    assert history.entries() == []
    history.close_open(2.0)
    assert len(history.entries()) == 1


def test_a_change_elsewhere_closes_the_burst() -> None:
    history = EditHistory()
    text, now = type_text(history, "a.py", TEXT, TEXT.index("line 2") + 6, "ab", 0.0)
    far = text.index("line 15") + 7
    history.record("a.py", text, far, "", "Z", now)
    (first,) = history.entries()
    assert "+line 2ab\n" in first.diff
    history.record("b.py", "x\n", 0, "", "y", now + 0.1)
    first_again, second = history.entries()
    assert first_again == first
    assert "+line 15Z\n" in second.diff and second.seq == 1
    assert history.recent_paths() == ["b.py", "a.py"]


def test_a_pause_closes_the_burst() -> None:
    history = EditHistory(burst_gap_s=1.0)
    at = TEXT.index("line 3") + 6
    text, now = type_text(history, "a.py", TEXT, at, "a", 0.0)
    type_text(history, "a.py", text, at + 1, "b", now + 5.0)
    history.close_open(100.0)
    first, second = history.entries()
    assert "+line 3a\n" in first.diff and "+line 3ab\n" in second.diff


def test_typed_then_deleted_leaves_no_entry() -> None:
    history = EditHistory()
    at = TEXT.index("line 4") + 6
    text, now = type_text(history, "a.py", TEXT, at, "abc", 0.0)
    for i in range(3):
        history.record("a.py", text, at + 2 - i, text[at + 2 - i], "", now + i * 0.1)
        text = text[: at + 2 - i] + text[at + 3 - i:]
    assert text == TEXT
    history.close_open(100.0)
    assert history.entries() == []


def test_net_effect_only() -> None:
    history = EditHistory()
    at = TEXT.index("line 4") + 6
    text, now = type_text(history, "a.py", TEXT, at, "ab", 0.0)
    history.record("a.py", text, at + 1, "b", "", now)  # backspace
    text = text[: at + 1] + text[at + 2:]
    history.close_open(100.0)
    (entry,) = history.entries()
    assert entry.diff == reference_diff("a.py", TEXT, text)


def test_multi_line_paste_and_line_join() -> None:
    history = EditHistory()
    at = TEXT.index("line 10")
    history.record("a.py", TEXT, at, "", "new a\nnew b\n", 0.0)
    after = TEXT[:at] + "new a\nnew b\n" + TEXT[at:]
    nl = after.index("\n", after.index("line 12"))
    history.record("a.py", after, nl, "\n", "", 10.0)  # join lines 12 and 13
    joined = after[:nl] + after[nl + 1:]
    history.close_open(100.0)
    first, second = history.entries()
    assert first.diff == reference_diff("a.py", TEXT, after)
    assert second.diff == reference_diff("a.py", after, joined)


def test_last_line_without_newline() -> None:
    history = EditHistory()
    history.record("a.py", "a\nb", 3, "", "c", 0.0)
    history.close_open(100.0)
    (entry,) = history.entries()
    assert entry.diff == ("--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,2 @@\n a\n-b\n"
                          "\\ No newline at end of file\n+bc\n\\ No newline at end of file\n")


def test_bounds_drop_the_oldest() -> None:
    history = EditHistory(max_entries_per_file=3, max_total_chars=10_000, burst_gap_s=0.5)
    text = TEXT
    for i in range(6):
        text, _ = type_text(history, "a.py", text, 0, str(i), float(i * 10))
    history.close_open(1000.0)
    entries = history.entries()
    assert [e.seq for e in entries] == [3, 4, 5]
    small = EditHistory(max_total_chars=200, burst_gap_s=0.5)
    text = TEXT
    for i in range(6):
        text, _ = type_text(small, f"f{i}.py", text, 0, str(i), float(i * 10))
    small.close_open(1000.0)
    kept = small.entries()
    assert sum(len(e.diff) for e in kept) <= 200
    assert kept and kept[-1].path == "f5.py"


def test_big_file_diff_is_local() -> None:
    big = "".join(f"row {i}\n" for i in range(10_000))
    history = EditHistory()
    at = big.index("row 5000\n") + 7
    after, now = type_text(history, "big.py", big, at, "99", 0.0)
    history.close_open(now + 10)
    (entry,) = history.entries()
    assert entry.diff == reference_diff("big.py", big, after)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3),
                          st.sampled_from(["", "x", "y\n", "\n", "ab"])), min_size=1,
                max_size=12))
def test_bursts_replay_to_the_final_text(edits: list[tuple[int, int, str]]) -> None:
    """Applying each closed entry's diff in order reproduces the final text."""
    history = EditHistory(burst_gap_s=1.0, max_total_chars=10**9)
    text = "".join(f"{c}\n" for c in "abcdefgh")
    texts = [text]
    for i, (pos, n, ins) in enumerate(edits):
        at = pos % (len(text) + 1)
        removed = text[at:at + n]
        history.record("f", text, at, removed, ins, i * 0.6)
        text = text[:at] + ins + text[at + len(removed):]
        texts.append(text)
    history.close_open(1e9)
    current = texts[0]
    for entry in history.entries():
        current = apply_diff(current, entry.diff)
    assert current == text


def apply_diff(text: str, diff: str) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    body = diff.splitlines(keepends=True)[2:]
    i = 0
    while i < len(body):
        header = body[i]
        old_start = int(header.split()[1][1:].split(",")[0])
        old_len = int(header.split()[1].split(",")[1]) if "," in header.split()[1] else 1
        start = old_start - 1 if old_len else old_start
        out.extend(lines[pos:start])
        pos = start
        i += 1
        last = ""
        while i < len(body) and not body[i].startswith("@@"):
            line = body[i]
            if line.startswith("\\"):
                if last != "-":
                    out[-1] = out[-1].removesuffix("\n")
            elif line[0] == " ":
                out.append(line[1:])
                pos += 1
            elif line[0] == "-":
                pos += 1
            else:
                out.append(line[1:])
            last = line[0]
            i += 1
    out.extend(lines[pos:])
    return "".join(out)
