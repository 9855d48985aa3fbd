"""`sparkedit simulate`: how fast a production model would decode on Cerebras wafers.

Reads a Hugging Face config.json (``--config``) or a shipped preset (``--preset``; both
repeatable) and prints what engine/targets/wafer_model.py predicts at one context length:
wafers, whether the weights and the KV cache fit, decode speed, time to first token.
``--calibration-report`` compares the model with the published speeds, each row also predicted
by a fit that never saw it; ``--plot`` draws tokens/s against context length, or with
``--calibration-report`` predicted against published speeds (matplotlib, the `plot` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.targets.model_config import (
    ConfigError,
    ModelShape,
    load_preset,
    parse_config,
    preset_names,
)
from engine.targets.wafer_model import Prediction, WaferModel
from engine.targets.wafer_report import Report, build_report, format_report, report_json
from lsp_server.usage import UsageError

PLOT_CONTEXTS = [1 << k for k in range(10, 19)]  # 1k .. 256k tokens


def _read_config(path: str) -> ModelShape:
    file = Path(path)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"--config {path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path}: cannot read it ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"--config {path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    try:
        return parse_config(raw, name=file.parent.name if file.name == "config.json"
                            else file.stem)
    except ConfigError as exc:
        raise UsageError(f"--config {path}: {exc}") from exc


def _shapes(args: argparse.Namespace) -> list[ModelShape]:
    shapes = [_read_config(path) for path in args.config]
    for name in args.preset:
        try:
            shapes.append(load_preset(name))
        except KeyError as exc:
            raise UsageError(exc.args[0]) from exc
    if not shapes:
        raise UsageError("give --config CONFIG.json or --preset NAME (see --list-presets)")
    return shapes


def _check_fits(shapes: list[ModelShape], model: WaferModel) -> None:
    for shape in shapes:
        wafers = model.wafers(shape)
        if wafers > model.wafer.max_wafers:
            raise UsageError(
                f"{shape.name}: its weights need {wafers} wafers; the largest CS-3 cluster "
                f"has {model.wafer.max_wafers}, so it fits on no number of wafers")


def _check(args: argparse.Namespace) -> None:
    if args.context_tokens < 1:
        raise UsageError("--context-tokens must be at least 1")
    if args.output_tokens < 0:
        raise UsageError("--output-tokens must be 0 or more")
    if not args.accepted_per_pass >= 1:
        raise UsageError("--accepted-per-pass must be at least 1")


# ---------------------------------------------------------------------------- text


def _size(n: float, unit: str = "B") -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.1f} {prefix}{unit}"
    return f"{n:.0f} {unit}"


def _count(n: float) -> str:
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


ROWS: list[tuple[str, Callable[[Prediction], str]]] = [
    ("parameters (total)", lambda p: _count(p.total_params)),
    ("parameters (active)", lambda p: _count(p.active_params)),
    ("weights", lambda p: _size(p.weight_bytes)),
    ("wafers (weights)", lambda p: f"{p.wafers} x {_size(p.usable_bytes_per_wafer)}"),
    ("KV cache per token", lambda p: f"{p.kv_bytes_per_token:,} B"),
    ("KV cache per sequence", lambda p: _size(p.kv_bytes_per_sequence)),
    ("fits with its KV cache", lambda p: "yes" if p.fits else
     f"no ({p.wafers_with_kv} wafers would)"),
    ("concurrent sequences", lambda p: f"{p.max_concurrent_sequences:,}"),
    ("time per token", lambda p: f"{p.token_s * 1e6:.0f} µs"),
    ("decode", lambda p: f"{p.decode_tokens_per_s:,.0f} tokens/s"),
    ("prefill", lambda p: _time(p.prefill_s)),
    ("time to first token", lambda p: _time(p.ttft_s)),
    ("total for the output", lambda p: _time(p.total_s)),
]


def format_table(predictions: list[Prediction]) -> str:
    first = predictions[0]
    head = (f"{first.context_tokens:,} tokens of context, {first.output_tokens} output tokens, "
            f"{first.accepted_per_pass:g} accepted per pass")
    columns = [[p.model] + [cell(p) for _, cell in ROWS] for p in predictions]
    labels = [""] + [label for label, _ in ROWS]
    widths = [max(len(c) for c in col) for col in columns]
    label_width = max(len(label) for label in labels)
    lines = [head]
    for i, label in enumerate(labels):
        cells = "  ".join(col[i].rjust(w) for col, w in zip(columns, widths, strict=True))
        lines.append(f"{label:<{label_width}}  {cells}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- plot


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError("--plot needs matplotlib: pip install 'sparkedit[plot]'") from exc
    return plt


def _save(fig: Any, plt: Any, path: str) -> None:
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise UsageError(f"--plot {path}: {exc}") from exc
    finally:
        plt.close(fig)


def plot(shapes: list[ModelShape], model: WaferModel, accepted: float, path: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for shape in shapes:
        points = [model.predict(shape, context_tokens=n, accepted_per_pass=accepted)
                  for n in PLOT_CONTEXTS]
        line = ax.plot([p.context_tokens for p in points],
                       [p.decode_tokens_per_s for p in points], marker="o", label=shape.name)
        misses = [p for p in points if not p.fits]
        if misses:  # contexts whose KV cache does not fit beside the weights
            ax.scatter([p.context_tokens for p in misses],
                       [p.decode_tokens_per_s for p in misses], marker="x", s=80,
                       color=line[0].get_color(), zorder=3)
    ax.set_xscale("log", base=2)
    ax.set_xticks(PLOT_CONTEXTS, [f"{n // 1024}k" for n in PLOT_CONTEXTS])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("context length (tokens); x: the KV cache does not fit")
    ax.set_ylabel("decode tokens/s, one user")
    ax.set_title(f"Simulated WSE-3 decode speed ({accepted:g} accepted per pass)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, plt, path)


def plot_calibration(report: Report, path: str) -> None:
    """Predicted against published tokens/s on log axes: the shipped fit, the left-out fits,
    and the flagged rows; the diagonal band is the x1.25 target."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    fitted = report.fitted
    published = [r.row.published for r in fitted]
    ax.scatter(published, [r.predicted for r in fitted], marker="o", color="tab:blue",
               label="fitted on all rows")
    ax.scatter(published, [r.left_out for r in fitted], marker="x", s=60, color="tab:red",
               label="left out of the fit")
    for i, r in enumerate(sorted(fitted, key=lambda r: r.row.published or 0)):
        ax.plot([r.row.published] * 2, [r.predicted, r.left_out], color="grey", lw=0.6)
        ax.annotate(r.row.model, (r.row.published, r.left_out), fontsize=7,  # staggered
                    xytext=(5, (-9, 3, 12)[i % 3]), textcoords="offset points")
    flagged = [r for r in report.rows if r.left_out is None and r.predicted and r.row.published]
    ax.scatter([r.row.published for r in flagged], [r.predicted for r in flagged],
               marker="s", facecolors="none", edgecolors="tab:grey", label="flagged (not fitted)")
    lo, hi = 300, 4000
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.fill_between([lo, hi], [lo / 1.25, hi / 1.25], [lo * 1.25, hi * 1.25], color="green",
                    alpha=0.08, label="within x1.25")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [300, 500, 1000, 2000, 3000, 4000]
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.set_yticks(ticks, [f"{t:,}" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.yaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("published decode tokens/s (one user)")
    ax.set_ylabel("predicted decode tokens/s")
    s = report.summary()
    ax.set_title(f"WSE-3 timing model: left-out mean x{s['loo_mean']:.2f}, "
                 f"worst x{s['loo_worst']:.2f}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, plt, path)


# ---------------------------------------------------------------------------- command


def _presets_listing() -> list[dict[str, Any]]:
    out = []
    for name in preset_names():
        shape = load_preset(name)
        out.append({"name": name, "family": shape.family, "layers": shape.num_layers,
                    "total_params": shape.total_params, "active_params": shape.active_params})
    return out


def run_simulate(args: argparse.Namespace) -> int:
    model = WaferModel()
    if args.list_presets:
        listing = _presets_listing()
        if args.json:
            print(json.dumps(listing))
            return 0
        for p in listing:
            print(f"{p['name']:<24} {p['family']:<10} {p['layers']:>4} layers  "
                  f"{_count(p['total_params']):>7} params, {_count(p['active_params'])} active")
        return 0
    if args.calibration_report:
        calibration = build_report(model)
        if args.plot:
            plot_calibration(calibration, args.plot)
            print(f"sparkedit simulate: wrote {args.plot}", file=sys.stderr)
        print(json.dumps(report_json(calibration)) if args.json else format_report(calibration))
        return 0
    _check(args)
    shapes = _shapes(args)
    _check_fits(shapes, model)
    predictions = [model.predict(s, context_tokens=args.context_tokens,
                                 output_tokens=args.output_tokens,
                                 accepted_per_pass=args.accepted_per_pass) for s in shapes]
    if args.plot:
        plot(shapes, model, args.accepted_per_pass, args.plot)
        print(f"sparkedit simulate: wrote {args.plot}", file=sys.stderr)
    if args.json:
        answers = [p.to_json() for p in predictions]
        print(json.dumps(answers[0] if len(answers) == 1 else answers))
    else:
        print(format_table(predictions))
    return 0
