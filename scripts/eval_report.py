"""One row per model of the v2 evaluation, its markdown tables and the model card block."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval_bpb import BPB_LANGUAGES, ByteScore, summary
from eval_edits import PROPAGATION, EditOutcome, InstructionOutcome
from eval_replay import ReplayScore

CARD_BEGIN, CARD_END = "<!-- EVAL BEGIN -->", "<!-- EVAL END -->"


@dataclass
class Row:
    name: str
    bits_per_byte: dict[str, float] = field(default_factory=dict)
    bpb_mean: float | None = None
    bpb_max: float | None = None
    edits: int = 0
    edits_skipped: int = 0
    edit_exact: float | None = None
    propagation_exact: float | None = None
    edit_exact_by_kind: dict[str, float] = field(default_factory=dict)
    edit_exact_by_language: dict[str, float] = field(default_factory=dict)  # JSON only
    instructions: int = 0
    instruction_pass: float | None = None
    instruction_pass_by_kind: dict[str, float] = field(default_factory=dict)
    destructive_proposed: int | None = None
    destructive_shown: int | None = None
    acceptance: float | None = None
    replay: dict | None = None
    edit_tokens_per_s: float | None = None
    edit_ms_mean: float | None = None
    seconds: float | None = None

    def add_bpb(self, scores: dict[str, ByteScore]) -> None:
        self.bits_per_byte = {k: s.bits_per_byte for k, s in scores.items()
                              if s.bits_per_byte is not None}
        self.bpb_mean, self.bpb_max = summary(scores)

    def add_edits(self, outcomes: Sequence[EditOutcome], timed: bool = True) -> None:
        if not outcomes:
            return
        self.edits = len(outcomes)
        self.edits_skipped = sum(o.skipped for o in outcomes)
        self.edit_exact = share([o.exact for o in outcomes])
        self.propagation_exact = share([o.exact for o in outcomes if o.kind in PROPAGATION])
        self.edit_exact_by_kind = by_kind([(o.kind, o.exact) for o in outcomes])
        self.edit_exact_by_language = by_kind([(o.language, o.exact) for o in outcomes])
        self.destructive_proposed = sum(o.destructive for o in outcomes)
        self.destructive_shown = sum(o.destructive and o.shown for o in outcomes)
        ran = [o for o in outcomes if not o.skipped]
        ms = sum(o.total_ms for o in ran)
        if timed and ran and ms > 0:
            self.edit_tokens_per_s = 1000 * sum(o.tokens for o in ran) / ms
            self.edit_ms_mean = ms / len(ran)

    def add_instructions(self, outcomes: Sequence[InstructionOutcome]) -> None:
        if not outcomes:
            return
        self.instructions = len(outcomes)
        self.instruction_pass = share([o.passed for o in outcomes])
        self.instruction_pass_by_kind = by_kind([(o.kind, o.passed) for o in outcomes])

    def add_replay(self, score: ReplayScore) -> None:
        self.acceptance = score.acceptance
        self.replay = {"sessions": score.sessions, "accepts": score.accepts,
                       "shown": score.shown, "chars_saved": score.chars_saved,
                       "requests": score.requests, "error": score.error}


def share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def by_kind(pairs: Sequence[tuple[str, bool]]) -> dict[str, float]:
    kinds: dict[str, list[bool]] = {}
    for kind, ok in pairs:
        kinds.setdefault(kind, []).append(ok)
    return {k: sum(v) / len(v) for k, v in sorted(kinds.items())}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(out)


def _destructive(r: Row) -> str:
    if r.destructive_proposed is None:
        return "—"
    return f"{r.destructive_proposed} / {r.destructive_shown}"


def summary_table(rows: Sequence[Row]) -> str:
    head = ["model", "bits/byte mean", "bits/byte max", "edit exact", "propagation exact",
            "instruction pass", "destructive proposed / shown", "replay acceptance",
            "edit tok/s"]
    return _table(head, [[r.name, _num(r.bpb_mean, ".3f"), _num(r.bpb_max, ".3f"),
                          _pct(r.edit_exact), _pct(r.propagation_exact),
                          _pct(r.instruction_pass), _destructive(r), _pct(r.acceptance),
                          _num(r.edit_tokens_per_s, ".0f")] for r in rows])


def bpb_table(rows: Sequence[Row]) -> str:
    shown = [r for r in rows if r.bits_per_byte]
    head = ["model", *BPB_LANGUAGES, "mean", "max"]
    return _table(head, [[r.name, *[_num(r.bits_per_byte.get(k), ".3f") for k in BPB_LANGUAGES],
                          _num(r.bpb_mean, ".3f"), _num(r.bpb_max, ".3f")] for r in shown])


def kind_table(rows: Sequence[Row], attr: str, total: str) -> str:
    shown = [r for r in rows if getattr(r, attr)]
    kinds = sorted({k for r in shown for k in getattr(r, attr)})
    head = ["model", total, *kinds]
    overall = "edit_exact" if attr == "edit_exact_by_kind" else "instruction_pass"
    return _table(head, [[r.name, _pct(getattr(r, overall)),
                          *[_pct(getattr(r, attr).get(k)) for k in kinds]] for r in shown])


def render(rows: Sequence[Row], setup: str) -> str:
    """All tables (markdown) and the setup line."""
    parts = [summary_table(rows),
             "Bits per UTF-8 byte of held-out packages (typescript includes tsx):",
             bpb_table(rows),
             "Next edits reproduced exactly, by kind:",
             kind_table(rows, "edit_exact_by_kind", "all"),
             "Instructions carried out (the task's check), by kind:",
             kind_table(rows, "instruction_pass_by_kind", "all"),
             setup]
    return "\n\n".join(parts)


def write_card(card: Path, block: str) -> None:
    """Put `block` between the EVAL markers of `card` (in place); without the markers,
    append an Evaluation section that has them."""
    text = card.read_text(encoding="utf-8") if card.exists() else ""
    wrapped = f"{CARD_BEGIN}\n{block}\n{CARD_END}"
    begin, end = text.find(CARD_BEGIN), text.find(CARD_END)
    if begin >= 0 and end > begin:
        text = text[:begin] + wrapped + text[end + len(CARD_END):]
    else:
        text += ("" if not text or text.endswith("\n") else "\n") + \
            f"\n## Evaluation\n\n{wrapped}\n"
    card.write_text(text, encoding="utf-8")
