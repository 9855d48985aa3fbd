"""Fitting the wafer timing model to published Cerebras speeds, and reporting how well it fits.

The rows live in engine/targets/data/wafer_calibration.json (a copy kept with the project,
each row with its date, source kind and the preset that gives its architecture). The fit:

- per-token time is linear in (layer_s, hop_s, fixed_s) once ``width_exponent`` is fixed, so
  for each exponent on a 0.01 grid from 0 to MAX_WIDTH_EXPONENT it solves least squares on
  the *relative* error of each row's time per token (close to least squares in log space),
  keeping the three constants non-negative (the best of the non-negative solutions over
  every subset of free constants), and keeps the exponent with the smallest error;
- a row measured with speculative decoding divides by its assumed accepted tokens per pass
  (``accepted_per_pass_assumed``) and pays ``verify_overhead``;
- rows are evaluated at CALIBRATION_CONTEXT tokens, the short prompts speeds are quoted for.

The exponent is capped: a layer spreads over cores in proportion to its weights, so its time
can grow at most with the distance across its region, the square root of its area.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import numpy as np

from engine.targets.model_config import load_preset
from engine.targets.wafer_model import TimingConstants, Wafer, WaferModel

MAX_WIDTH_EXPONENT = 0.5
CALIBRATION_CONTEXT = 1024


def load_calibration() -> dict[str, Any]:
    path = resources.files("engine.targets") / "data" / "wafer_calibration.json"
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True, kw_only=True)
class CalibrationRow:
    model: str
    date: str
    kind: str
    preset: str | None  # None: the architecture is not published
    published: float | None  # tokens/s for one user
    at_least: float | None  # a published lower bound instead of a figure
    accepted_per_pass: float
    context_tokens: int


def calibration_rows() -> list[CalibrationRow]:
    return [CalibrationRow(
        model=row["model"], date=row["date"], kind=row["kind"], preset=row.get("preset"),
        published=row.get("decode_tokens_per_s"),
        at_least=row.get("decode_tokens_per_s_at_least"),
        accepted_per_pass=float(row.get("accepted_per_pass_assumed", 1.0)),
        context_tokens=int(row.get("context_tokens", CALIBRATION_CONTEXT)),
    ) for row in load_calibration()["rows"]]


def _fit_rows() -> list[CalibrationRow]:
    return [r for r in calibration_rows() if r.preset and r.published]


def fit(*, wafer: Wafer | None = None, assumed: TimingConstants | None = None
        ) -> TimingConstants:
    """The fitted constants (the assumptions are taken from ``assumed``)."""
    wafer, assumed = wafer or Wafer(), assumed or TimingConstants()
    rows = _fit_rows()
    shapes = [load_preset(r.preset or "") for r in rows]
    observed = np.array([1.0 / (r.published or 1.0) for r in rows])  # [R] s per token
    # Speculation: effective time per token = pass time / accepted.
    spec = np.array([(1 + assumed.verify_overhead * (r.accepted_per_pass - 1))
                     / r.accepted_per_pass for r in rows])
    zero = replace(assumed, layer_s=0.0, hop_s=0.0, fixed_s=0.0)
    base = np.array([WaferModel(wafer=wafer, constants=zero).token_s(s, r.context_tokens)
                     for s, r in zip(shapes, rows, strict=True)])  # KV reads, hop transfers
    hops = np.array([WaferModel(wafer=wafer).wafers(s) - 1 for s in shapes], dtype=float)
    best: tuple[float, float, np.ndarray] | None = None
    for exponent in np.round(np.arange(0, MAX_WIDTH_EXPONENT + 1e-9, 0.01), 2):
        unit = WaferModel(wafer=wafer, constants=replace(zero, layer_s=1.0,
                                                         width_exponent=float(exponent)))
        layers = np.array([unit.token_s(s, r.context_tokens) for s, r in
                           zip(shapes, rows, strict=True)]) - base
        # relative error: spec * (X @ [a, h, f] + base) / observed - 1
        x = (spec / observed)[:, None] * np.stack([layers, hops, np.ones_like(hops)], axis=1)
        y = 1 - spec * base / observed
        for free in itertools.chain.from_iterable(
                itertools.combinations(range(3), k) for k in (1, 2, 3)):
            sol, *_ = np.linalg.lstsq(x[:, free], y, rcond=None)
            if (sol < 0).any():
                continue
            theta = np.zeros(3)
            theta[list(free)] = sol
            sse = float(((x @ theta - y) ** 2).sum())
            if best is None or sse < best[0] - 1e-15:
                best = (sse, float(exponent), theta)
    assert best is not None, "no non-negative fit"
    _, exponent, (layer_s, hop_s, fixed_s) = best
    return replace(assumed, layer_s=float(layer_s), width_exponent=exponent,
                   hop_s=float(hop_s), fixed_s=float(fixed_s))


@dataclass(frozen=True, kw_only=True)
class ReportRow:
    row: CalibrationRow
    predicted: float | None  # tokens/s; None when the architecture is unknown
    wafers: int | None

    @property
    def error(self) -> float | None:
        """(predicted - published) / published."""
        if self.predicted is None or not self.row.published:
            return None
        return self.predicted / self.row.published - 1


def report(model: WaferModel | None = None) -> list[ReportRow]:
    model = model or WaferModel()
    out = []
    for row in calibration_rows():
        if row.preset is None:
            out.append(ReportRow(row=row, predicted=None, wafers=None))
            continue
        shape = load_preset(row.preset)
        out.append(ReportRow(row=row, wafers=model.wafers(shape),
                             predicted=model.decode_tokens_per_s(shape, row.context_tokens,
                                                                 row.accepted_per_pass)))
    return out


def format_report(rows: list[ReportRow], constants: TimingConstants) -> str:
    head = f"{'model':<48} {'date':<8} {'A':>4} {'wafers':>6} {'published':>10} " \
           f"{'predicted':>10} {'error':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        published = (f"{r.row.published:.0f}" if r.row.published
                     else f">= {r.row.at_least:.0f}" if r.row.at_least else "-")
        predicted = f"{r.predicted:.0f}" if r.predicted is not None else "n/a"
        error = f"{r.error:+.1%}" if r.error is not None else "-"
        wafers = str(r.wafers) if r.wafers is not None else "-"
        lines.append(f"{r.row.model[:48]:<48} {r.row.date:<8} {r.row.accepted_per_pass:>4.1f} "
                     f"{wafers:>6} {published:>10} {predicted:>10} {error:>7}")
    c = constants
    lines += ["", f"fitted:  layer_s = {c.layer_s * 1e6:.3f} µs at 2e8 active params, "
              f"width_exponent = {c.width_exponent:.2f}, hop_s = {c.hop_s * 1e6:.3f} µs, "
              f"fixed_s = {c.fixed_s * 1e6:.1f} µs",
              f"assumed: verify_overhead = {c.verify_overhead}, prefill_utilization = "
              f"{c.prefill_utilization}, kv_read_share = {c.kv_read_share}; rows at "
              f"{CALIBRATION_CONTEXT} tokens of context; A = accepted tokens per pass"]
    return "\n".join(lines)
