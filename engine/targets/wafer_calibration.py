"""Fitting the wafer timing model to published Cerebras speeds, and testing it on rows it never saw.

The rows live in engine/targets/data/wafer_calibration.json (a copy kept with the project, each
row with its source, date, kind, precision and speculation). A row can be fitted when its
architecture is published (a preset) and no other row supersedes or disputes it (``flag``).

The fit: once the speculation of each row is fixed (its ``accepted_per_pass``: published,
assumed and labelled, or 1), the time per token is linear in the fitted constants
(``layer_s`` per layer crossed, ``fixed_s`` per token, ``hop_s`` per wafer boundary), so the
fit solves least squares on the *relative* error of each row's time per token (close to least
squares in log space), keeping the constants non-negative. Rows are evaluated at
CALIBRATION_CONTEXT tokens, the short prompts speeds are quoted for.

Out of sample: ``leave_one_out`` predicts each fittable row from a fit without it. Every
candidate set of constants (CANDIDATES) is scored that way, beside the simplest baseline (one
constant time per layer); the shipped set is the one that predicts left-out rows best, so a
constant is shipped only when it earns its place out of sample. Errors are factors
(max(predicted/published, published/predicted)); a mean is their geometric mean.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from importlib import resources
from typing import Any

import numpy as np

from engine.targets.model_config import ModelShape, load_preset
from engine.targets.wafer_model import TimingConstants, Wafer, WaferModel

CALIBRATION_CONTEXT = 1024
FITTED = ("layer_s", "fixed_s", "hop_s")
BASELINE = ("layer_s",)
CANDIDATES: tuple[tuple[str, ...], ...] = (
    BASELINE, ("layer_s", "fixed_s"), ("layer_s", "hop_s"), ("layer_s", "fixed_s", "hop_s"))
SPECULATION_SWEEP = (1.0, 1.5, 2.0, 2.5, 3.0)  # accepted per pass for the rows that speculate


def load_calibration() -> dict[str, Any]:
    path = resources.files("engine.targets") / "data" / "wafer_calibration.json"
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True, kw_only=True)
class CalibrationRow:
    model: str
    date: str
    kind: str
    source: str
    precision: str
    preset: str | None  # None: the architecture is not published
    published: float | None  # tokens/s for one user
    at_least: float | None  # a published lower bound instead of a figure
    speculation: str  # "published", "assumed" or what the source says otherwise
    accepted_per_pass: float  # what the fit uses: 1 unless speculation is published/assumed
    acceptance_note: str
    expert_bits: float | None  # the routed experts' precision when not the preset's
    flag: str | None  # superseded or disputed: reported, not fitted
    context_tokens: int

    @property
    def speculates(self) -> bool:
        return self.speculation in ("published", "assumed")

    @property
    def fittable(self) -> bool:
        return bool(self.preset and self.published and not self.flag)

    @cached_property
    def shape(self) -> ModelShape:
        shape = load_preset(self.preset or "")
        return replace(shape, expert_bits=self.expert_bits) if self.expert_bits else shape


def calibration_rows() -> list[CalibrationRow]:
    rows = []
    for row in load_calibration()["rows"]:
        speculation = str(row.get("speculation", "not stated"))
        speculates = speculation in ("published", "assumed")
        rows.append(CalibrationRow(
            model=row["model"], date=row["date"], kind=row["kind"], source=row["source"],
            precision=row.get("precision", "not stated"), preset=row.get("preset"),
            published=row.get("decode_tokens_per_s"),
            at_least=row.get("decode_tokens_per_s_at_least"), speculation=speculation,
            accepted_per_pass=float(row["accepted_per_pass"]) if speculates else 1.0,
            acceptance_note=row.get("acceptance_note", ""), expert_bits=row.get("expert_bits"),
            flag=row.get("flag"),
            context_tokens=int(row.get("context_tokens", CALIBRATION_CONTEXT))))
    return rows


# ---------------------------------------------------------------------------- the fit


@dataclass(frozen=True)
class Design:
    """Each fittable row's time per token as ``spec * (base + features @ theta)``."""

    rows: tuple[CalibrationRow, ...]
    features: np.ndarray  # [R, 3]: layers crossed, 1, wafer boundaries (FITTED's order)
    base: np.ndarray  # [R] s: KV reads and hidden-vector transfers (assumed constants)
    spec: np.ndarray  # [R] pass cost per yielded token, relative to one plain pass
    observed: np.ndarray  # [R] s per token, published


def design(rows: Sequence[CalibrationRow], *, wafer: Wafer | None = None,
           assumed: TimingConstants | None = None, accepted: float | None = None) -> Design:
    """``accepted`` replaces the acceptance of every row that speculates (the sensitivity)."""
    wafer, assumed = wafer or Wafer(), assumed or TimingConstants()
    zero = WaferModel(wafer=wafer, constants=replace(assumed, layer_s=0.0, fixed_s=0.0,
                                                     hop_s=0.0))
    feats, base, spec = [], [], []
    for r in rows:
        a = (accepted if accepted is not None else r.accepted_per_pass) if r.speculates else 1.0
        feats.append([r.shape.num_layers, 1.0, zero.wafers(r.shape) - 1])
        base.append(zero.token_s(r.shape, r.context_tokens))
        spec.append((1 + assumed.verify_overhead * (a - 1)) / a)
    return Design(rows=tuple(rows), features=np.array(feats, dtype=float),
                  base=np.array(base), spec=np.array(spec),
                  observed=np.array([1.0 / (r.published or 1.0) for r in rows]))


def _solve(d: Design, free: Sequence[str], keep: np.ndarray) -> np.ndarray:
    """Non-negative least squares of the relative errors over the rows in ``keep``."""
    cols = [FITTED.index(name) for name in free]
    x = (d.spec / d.observed)[:, None] * d.features[:, cols]
    y = 1 - d.spec * d.base / d.observed
    best: tuple[float, np.ndarray] | None = None
    for k in range(1, len(cols) + 1):  # the best of the non-negative solutions on any subset
        for subset in itertools.combinations(range(len(cols)), k):
            sol, *_ = np.linalg.lstsq(x[keep][:, subset], y[keep], rcond=None)
            if (sol < 0).any():
                continue
            theta = np.zeros(len(cols))
            theta[list(subset)] = sol
            sse = float(((x[keep] @ theta - y[keep]) ** 2).sum())
            if best is None or sse < best[0] - 1e-18:
                best = (sse, theta)
    full = np.zeros(len(FITTED))
    if best is not None:
        full[cols] = best[1]
    return full


def predicted_tokens_per_s(d: Design, theta: np.ndarray) -> np.ndarray:
    return 1.0 / (d.spec * (d.base + d.features @ theta))


def factor(predicted: float, published: float) -> float:
    ratio = predicted / published
    return max(ratio, 1 / ratio)


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


@dataclass(frozen=True, kw_only=True)
class Scores:
    """One candidate set of constants, fitted on all rows and left out one at a time."""

    constants: tuple[str, ...]
    theta: dict[str, float]
    in_sample: tuple[float, ...]  # tokens/s per fittable row
    left_out: tuple[float, ...]  # tokens/s per fittable row, from a fit without it

    def errors(self, d: Design, which: str = "left_out") -> list[float]:
        values = getattr(self, which)
        return [factor(p, 1 / o) for p, o in zip(values, d.observed, strict=True)]

    def summary(self, d: Design) -> dict[str, float]:
        loo, ins = self.errors(d), self.errors(d, "in_sample")
        return {"in_sample_mean": geometric_mean(ins), "in_sample_worst": max(ins),
                "loo_mean": geometric_mean(loo), "loo_worst": max(loo)}


def score(d: Design, constants: Sequence[str]) -> Scores:
    everything = np.ones(len(d.rows), dtype=bool)
    theta = _solve(d, constants, everything)
    left_out = []
    for i in range(len(d.rows)):
        keep = everything.copy()
        keep[i] = False
        left_out.append(float(predicted_tokens_per_s(d, _solve(d, constants, keep))[i]))
    return Scores(constants=tuple(constants), theta=dict(zip(FITTED, map(float, theta),
                                                             strict=True)),
                  in_sample=tuple(map(float, predicted_tokens_per_s(d, theta))),
                  left_out=tuple(left_out))


def fittable_rows() -> list[CalibrationRow]:
    return [r for r in calibration_rows() if r.fittable]


def choose(d: Design, scored: Sequence[Scores] | None = None) -> Scores:
    """The candidate that predicts left-out rows best (fewer constants on a tie); `scored`:
    the candidates already scored on `d`."""
    scored = scored if scored is not None else [score(d, c) for c in CANDIDATES]
    return min(scored, key=lambda s: (round(s.summary(d)["loo_mean"], 6), len(s.constants)))


def fit(*, wafer: Wafer | None = None, assumed: TimingConstants | None = None
        ) -> TimingConstants:
    """The shipped constants: the chosen candidate fitted on every fittable row."""
    assumed = assumed or TimingConstants()
    chosen = choose(design(fittable_rows(), wafer=wafer, assumed=assumed))
    return replace(assumed, **chosen.theta)


@dataclass(frozen=True, kw_only=True)
class Sensitivity:
    accepted: float
    scores: Scores
    design: Design


def sensitivity(constants: Sequence[str]) -> list[Sensitivity]:
    """The same candidate refitted with every speculating row at each acceptance."""
    rows = fittable_rows()
    out = []
    for a in SPECULATION_SWEEP:
        d = design(rows, accepted=a)
        out.append(Sensitivity(accepted=a, scores=score(d, constants), design=d))
    return out
