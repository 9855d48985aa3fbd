"""The wafer model's calibration: the published rows and what they record, the fit and the
constants it ships, leave-one-out predictions (exact on data the model could have made, within
the README's bound on the published rows), the baseline, and the speculation sensitivity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.targets.wafer_calibration import (
    BASELINE,
    CANDIDATES,
    SPECULATION_SWEEP,
    calibration_rows,
    choose,
    design,
    fit,
    fittable_rows,
    score,
)
from engine.targets.wafer_model import TimingConstants, WaferModel
from engine.targets.wafer_report import build_report, format_report, report_json

# The bound README quotes ("Wafer timing model"); the target is x1.25 / x1.4.
LOO_MEAN_BOUND, LOO_WORST_BOUND = 1.30, 1.90


def test_every_row_records_its_source_precision_and_speculation() -> None:
    rows = calibration_rows()
    for r in rows:
        assert r.source and r.date and r.kind and r.precision, r.model
        if r.speculates:
            assert r.accepted_per_pass > 1 and r.acceptance_note, r.model
        else:
            assert r.accepted_per_pass == 1
    fittable = fittable_rows()
    assert len(fittable) >= 10
    flagged = [r for r in rows if r.flag]
    assert flagged and all(r.flag.split(":")[0] in ("superseded", "disputed") for r in flagged)
    assert not any(r.fittable for r in flagged)
    assert any(r.preset is None and r.at_least for r in rows)  # reported, never fitted
    # a row whose published weights are not 16-bit is placed at its own precision
    kimi = next(r for r in fittable if r.expert_bits)
    assert WaferModel().wafers(kimi.shape) < WaferModel().wafers(replace(kimi, expert_bits=None
                                                                         ).shape)


def test_the_fit_reproduces_the_shipped_constants() -> None:
    fitted, shipped = fit(), TimingConstants()
    for name in ("layer_s", "fixed_s", "hop_s"):
        assert getattr(fitted, name) == pytest.approx(getattr(shipped, name), rel=1e-3, abs=1e-9)


def test_leave_one_out_recovers_constants_from_data_the_model_made() -> None:
    """Rows whose speeds the model itself predicts (with a known speculation) are predicted
    exactly from fits that never saw them, whatever the candidate that can express them."""
    truth = replace(TimingConstants(), layer_s=7e-6, fixed_s=1.5e-4, hop_s=0.0)
    model = WaferModel(constants=truth)
    rows = [replace(r, published=model.decode_tokens_per_s(r.shape, r.context_tokens,
                                                             r.accepted_per_pass))
            for r in fittable_rows()]
    d = design(rows)
    scores = score(d, ("layer_s", "fixed_s"))
    assert scores.theta["layer_s"] == pytest.approx(7e-6, rel=1e-6)
    assert scores.theta["fixed_s"] == pytest.approx(1.5e-4, rel=1e-6)
    summary = scores.summary(d)
    assert summary["loo_worst"] == pytest.approx(1.0, abs=1e-6)
    assert score(d, BASELINE).summary(d)["loo_mean"] > 1.01  # it cannot express fixed_s
    assert choose(d).constants == ("layer_s", "fixed_s")


def test_a_left_out_prediction_is_a_fit_without_that_row() -> None:
    rows = fittable_rows()
    d = design(rows)
    shipped = choose(d)
    i = 3
    without = design(rows[:i] + rows[i + 1:])
    theta = np.array([score(without, shipped.constants).theta[n]
                      for n in ("layer_s", "fixed_s", "hop_s")])
    alone = design([rows[i]])
    expected = 1 / (alone.spec * (alone.base + alone.features @ theta))
    assert shipped.left_out[i] == pytest.approx(float(expected[0]), rel=1e-9)


def test_the_published_rows_stay_within_the_documented_bound() -> None:
    report = build_report()
    summary = report.summary()
    assert summary["loo_mean"] <= LOO_MEAN_BOUND and summary["loo_worst"] <= LOO_WORST_BOUND
    baseline = next(s for c, s in report.candidates if c.constants == BASELINE)
    assert summary["loo_mean"] < baseline["loo_mean"]  # every shipped constant earns its place
    assert {c.constants for c, _ in report.candidates} == set(CANDIDATES)
    for r in report.rows:
        if r.row.fittable:
            assert r.left_out is not None and r.error is not None
        elif r.row.preset is None:
            assert r.predicted is None and r.error is None


def test_the_speculation_sweep_refits_every_speculating_row() -> None:
    report = build_report()
    assert [s.accepted for s in report.sweep] == list(SPECULATION_SWEEP)
    speculating = [i for i, r in enumerate(report.sweep[0].design.rows) if r.speculates]
    assert speculating
    plain = report.sweep[0].design
    assert all(plain.spec[i] == 1.0 for i in speculating)
    assert all(s.design.spec[speculating[0]] < 1 for s in report.sweep[1:])
    layer = [s.scores.theta["layer_s"] for s in report.sweep]
    assert layer == sorted(layer)  # more assumed acceptance, more time per pass


def test_the_report_text_and_json() -> None:
    report = build_report()
    text = format_report(report)
    assert "left out" in text and "(baseline)" in text and "<- shipped" in text
    assert "superseded" in text and "disputed" in text and "speculation sensitivity" in text
    data = report_json(report)
    assert data["target"] == {"loo_mean": 1.25, "loo_worst": 1.4, "met": report.target_met}
    assert len(data["rows"]) == len(calibration_rows())
    assert all(row["source"] for row in data["rows"])
    assert len(data["speculation_sensitivity"]) == len(SPECULATION_SWEEP)
