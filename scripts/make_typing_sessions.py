"""Synthesise the typing sessions that scripts/bench_latency.py replays.

No recordings of people typing exist on this machine, so these sessions are SYNTHETIC: the
text is real code (a region of 10-25 lines cut out of a real file and typed back), the
timing of every keystroke is drawn from the seeded model below. Each session's header says
so (`"model": "synthetic human timing, seed N"`), and names its source file and licence.

The timing model (`TypingModel`; parameters in the spirit of published keystroke studies,
e.g. Dhakal et al., CHI 2018, where inter-key intervals are right-skewed and roughly
log-normal, and pauses cluster at word and line boundaries):
- each inter-key interval is log-normal, median `key_median_ms` (150 ms: a practised
  typist's ~65 words per minute), clipped below at `min_key_ms`;
- the first key of a word (after a space or punctuation) takes `word_factor` times longer;
- after Enter, a log-normal pause (median `line_pause_median_ms`) to read and plan the line;
- with probability `typo_rate` per letter a neighbouring key is hit instead; the typist
  notices 0-2 keys later, pauses, backspaces to the typo and types on;
- with probability `think_line_rate` per new line (and `think_word_rate` per word) a
  multi-second thinking pause (log-normal, median `think_median_ms`).
Editor behaviour assumed: Enter inserts the newline and the next line's indentation as one
event (an idealised auto-indent that always picks the right indentation), so indentation
is never typed space by space; the region's first line starts already indented.

Run: .venv/bin/python scripts/make_typing_sessions.py   (rewrites scripts/sessions/*.jsonl)
"""

from __future__ import annotations

import argparse
import json.decoder
import math
import platform
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from lsp_server.sessions import Event, Session, SessionHeader, typed_states

REPO = Path(__file__).resolve().parent.parent
SESSION_DIR = REPO / "scripts" / "sessions"
STDLIB = Path(json.decoder.__file__).resolve().parent.parent
REPO_LICENSE = "Apache-2.0 (this repository, see pyproject.toml)"
STDLIB_LICENSE = "PSF-2.0 (Python Software Foundation License; the CPython standard library)"

_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


@dataclass(frozen=True, kw_only=True)
class TypingModel:
    key_median_ms: float = 150.0
    key_sigma: float = 0.45  # of ln(interval): ~90% of keys between 70 and 315 ms
    min_key_ms: float = 35.0
    word_factor: float = 1.6
    line_pause_median_ms: float = 450.0
    line_pause_sigma: float = 0.6
    typo_rate: float = 0.03
    notice_pause_median_ms: float = 350.0
    think_line_rate: float = 0.12
    think_word_rate: float = 0.01
    think_median_ms: float = 2500.0
    think_sigma: float = 0.5  # ~90% of thinking pauses between 1.1 and 5.7 s


@dataclass(frozen=True, kw_only=True)
class SessionSpec:
    name: str
    source: Path
    first_line: int  # 1-based, inclusive
    last_line: int
    seed: int
    path: str  # where the bench opens the document, relative to the workspace root


SPECS = (
    SessionSpec(name="sample_cart", source=REPO / "examples/sample.py", first_line=38,
                last_line=48, seed=1, path="examples/sample.py"),
    SessionSpec(name="engine_sampling", source=REPO / "engine/sampling.py", first_line=23,
                last_line=36, seed=2, path="engine/sampling.py"),
    SessionSpec(name="lsp_documents", source=REPO / "lsp_server/documents.py",
                first_line=83, last_line=99, seed=3, path="lsp_server/documents.py"),
    # Outside the workspace: opened as a new, unsaved file of the workspace, so that it is
    # treated like the others (edit history and index follow it).
    SessionSpec(name="stdlib_json_scanstring", source=STDLIB / "json/decoder.py",
                first_line=79, last_line=96, seed=4, path="examples/json_decoder.py"),
)


def lognormal(rng: random.Random, median_ms: float, sigma: float) -> float:
    return math.exp(rng.gauss(math.log(median_ms), sigma))


def neighbour(rng: random.Random, ch: str) -> str:
    """A key next to `ch` on a QWERTY keyboard (same case)."""
    for row in _QWERTY_ROWS:
        i = row.find(ch.lower())
        if i >= 0:
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            wrong = rng.choice(near)
            return wrong.upper() if ch.isupper() else wrong
    return ch


def keystrokes(target: str) -> list[str]:
    """The target as the typist's keys: one character each, Enter with the indentation."""
    keys, i = [], 0
    while i < len(target):
        if target[i] == "\n":
            j = i + 1
            while j < len(target) and target[j] == " ":
                j += 1
            # A blank line keeps no indentation (editors strip it).
            if j < len(target) and target[j] == "\n":
                j = i + 1
            keys.append(target[i:j])
            i = j
        else:
            keys.append(target[i])
            i += 1
    return keys


def time_keys(keys: list[str], model: TypingModel, rng: random.Random) -> list[Event]:
    events: list[Event] = []
    t = 600.0  # the typist starts a little after the session does
    prev = "\n"

    def interval(key: str, prev: str) -> float:
        dt = max(model.min_key_ms, lognormal(rng, model.key_median_ms, model.key_sigma))
        starts_word = key.isalnum() and not (prev.isalnum() or prev == "_")
        if prev.startswith("\n"):
            dt += lognormal(rng, model.line_pause_median_ms, model.line_pause_sigma)
            if rng.random() < model.think_line_rate:
                dt += lognormal(rng, model.think_median_ms, model.think_sigma)
        elif starts_word:
            dt *= model.word_factor
            if rng.random() < model.think_word_rate:
                dt += lognormal(rng, model.think_median_ms, model.think_sigma)
        return dt

    i = 0
    while i < len(keys):
        key = keys[i]
        t += interval(key, prev)
        if key.isalpha() and len(key) == 1 and rng.random() < model.typo_rate:
            events.append(Event(t_ms=t, op="type", text=neighbour(rng, key)))
            # Keys typed on before the typo is noticed; never across a line end.
            more = 0
            while more < rng.choice((0, 0, 1, 2)) and i + 1 + more < len(keys) \
                    and len(keys[i + 1 + more]) == 1:
                t += interval(keys[i + 1 + more], keys[i + more])
                events.append(Event(t_ms=t, op="type", text=keys[i + 1 + more]))
                more += 1
            t += lognormal(rng, model.notice_pause_median_ms, 0.4)
            for _ in range(more + 1):
                events.append(Event(t_ms=t, op="backspace"))
                t += max(model.min_key_ms, lognormal(rng, 110.0, 0.3))
            t += lognormal(rng, 120.0, 0.3)
        else:
            events.append(Event(t_ms=t, op="type", text=key))
            prev = key
            i += 1
    return events


def make_session(spec: SessionSpec, model: TypingModel) -> Session:
    source = spec.source.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    start = sum(len(line) for line in lines[:spec.first_line - 1])
    region = "".join(lines[spec.first_line - 1:spec.last_line])
    indent = region[:len(region) - len(region.lstrip(" "))]
    target = region[len(indent):].rstrip("\n")
    # The cursor waits on an (auto-indented) empty line where the region was.
    text = source[:start] + indent + source[start + len(region.rstrip("\n")):]
    if spec.source.is_relative_to(REPO):
        where, licence = spec.source.relative_to(REPO).as_posix(), REPO_LICENSE
    else:
        where = (f"Python {platform.python_version()} standard library: "
                 f"{spec.source.relative_to(STDLIB).as_posix()}")
        licence = STDLIB_LICENSE
    header = SessionHeader(
        session=spec.name, source=where, license=licence,
        model=f"synthetic human timing, seed {spec.seed}", seed=spec.seed, path=spec.path,
        language_id="python", first_line=spec.first_line, last_line=spec.last_line,
        text=text, cursor=start + len(indent), target=target,
        note=("SYNTHETIC: real code, retyped with keystroke times drawn from the seeded "
              "model in scripts/make_typing_sessions.py; no human recording."))
    events = time_keys(keystrokes(target), model, random.Random(spec.seed))
    session = Session(header=header, events=tuple(events))
    typed_states(session)  # asserts that the events type exactly the target
    return session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SESSION_DIR)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = TypingModel()
    for spec in SPECS:
        session = make_session(spec, model)
        path = args.out / f"{spec.name}.jsonl"
        session.write(path)
        events = session.events
        typos = sum(1 for e in events if e.op == "backspace")
        pauses = sum(1 for a, b in zip(events, events[1:], strict=False) if b.t_ms - a.t_ms > 1000)
        print(f"{path.relative_to(REPO)}: {len(events)} keystrokes ({typos} backspaces), "
              f"{len(session.header.target)} characters, lines {spec.first_line}-"
              f"{spec.last_line} of {session.header.source}, {events[-1].t_ms / 1000:.0f} s, "
              f"{pauses} pauses over 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
