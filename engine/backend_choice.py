"""Which compute backend runs a model, and why.

``--backend numpy`` runs a Hugging Face folder on the numpy reference. ``--backend ggml``
runs a GGUF file as it is, or a folder converted once to GGUF at ``--quant`` (cached, see
engine/ggml/gguf_cache.py). ``--backend auto`` (the default):

- a GGUF file runs on ggml (numpy cannot read one);
- without the ``ggml`` extra, numpy;
- a folder whose float32 weights would not fit comfortably in memory (over a quarter of
  it) runs on ggml, where they are read quantized;
- otherwise both are measured on this machine (a one-token pass and a 17-token pass on
  a short prompt, the two shapes decoding is made of) and the faster wins. The
  measurement is remembered per checkpoint, quantization and thread count, so it is
  paid once.

The reason is reported in ``info`` (``backend_reason``), so a user can see why.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.backend import BACKENDS, Backend
from engine.tokenizer import Tokenizer, load_tokenizer

log = logging.getLogger("sparkedit.engine")

QUANTS = ("f32", "bf16", "q8_0", "q4_k_m")
DEFAULT_QUANT = "q8_0"
CHOICES = ("auto", *BACKENDS)
MEASURE_PROMPT = 64  # tokens of the measurement's prompt
MEASURE_REPEATS = 5


class ModelLoadError(Exception):
    """The model cannot be loaded; the message is one line naming the file and why."""


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What the user asked for."""

    path: Path  # a Hugging Face folder or a .gguf file
    backend: str = "auto"
    quant: str | None = None  # None: q8_0 for a folder; a GGUF file is used as it is
    threads: int | None = None  # None: every core
    context: int | None = None  # ggml: KV cells to allocate (None: the model's, capped)

    def __post_init__(self) -> None:
        if self.backend not in CHOICES:
            raise ValueError(f"--backend must be one of {', '.join(CHOICES)}")
        if self.quant is not None and self.quant not in QUANTS:
            raise ValueError(f"--quant must be one of {', '.join(QUANTS)}")

    @property
    def is_gguf(self) -> bool:
        return self.path.suffix.lower() == ".gguf"


@dataclass(frozen=True)
class LoadedModel:
    backend: Backend
    tokenizer: Tokenizer
    reason: str  # why this backend: shown in `info` as backend_reason


def ggml_available() -> bool:
    from engine.ggml import binding_available

    return binding_available()


def _numpy_weight_bytes(folder: Path) -> int:
    """float32 bytes of a folder's weights, from the safetensors headers alone."""
    from engine.weights import checkpoint_parameter_count

    return 4 * checkpoint_parameter_count(folder)


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 << 30


def _to_stderr(line: str) -> None:
    print(f"sparkedit: {line}", file=sys.stderr, flush=True)


def _check_kind(spec: ModelSpec) -> None:
    """The path is a GGUF file for ggml or a folder with a config.json, else one line."""
    path = spec.path
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file or folder")
    if spec.is_gguf:
        if spec.backend == "numpy":
            raise ModelLoadError(f"{path}: the numpy backend reads Hugging Face folders; "
                                 "run a GGUF file with --backend ggml (or auto)")
        return
    if not path.is_dir():
        raise ModelLoadError(f"{path}: not a model folder or a .gguf file")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path}: no config.json (a Hugging Face model folder holds "
                             "config.json, safetensors weights and tokenizer.json)")


def load(spec: ModelSpec, *, progress: Callable[[str], None] | None = _to_stderr
         ) -> LoadedModel:
    """Load ``spec`` on the chosen backend. Raises ModelLoadError with one clear line.
    ``progress`` hears about a first-time conversion (a bar per 5 %, on stderr by default)."""
    _check_kind(spec)
    path = spec.path
    if spec.is_gguf:
        if spec.quant is not None:
            log.info("--quant %s ignored: a GGUF file is used as it is", spec.quant)
        return _load_ggml(spec, path, "a GGUF file runs on ggml")
    if spec.backend == "numpy":
        return _load_numpy(path, "asked for (--backend numpy)")
    if spec.backend == "ggml":
        return _load_ggml(spec, _converted(spec, progress), "asked for (--backend ggml)")
    if not ggml_available():
        return _load_numpy(path, "the ggml extra is not installed (pip install "
                                 "'sparkedit[ggml]')")
    try:
        f32_bytes = _numpy_weight_bytes(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc
    if f32_bytes > _memory_bytes() // 4:
        return _load_ggml(spec, _converted(spec, progress),
                          f"float32 weights would take {f32_bytes / 2**30:.1f} GiB, over a "
                          "quarter of this machine's memory")
    return _measured_choice(spec, progress)


def preflight(spec: ModelSpec) -> None:
    """Check, without loading weights, that ``spec`` can be loaded: the file or folder is
    there and readable, llama.cpp knows a GGUF's architecture and weight types, and it fits
    in memory. Raises ModelLoadError with one line naming the file. A server checks a new
    model setting with this before it gives up the engine it has."""
    _check_kind(spec)
    path = spec.path
    if spec.is_gguf:
        _require_ggml()
        from engine.ggml.gguf_file import GgufError, check_memory, read_facts
        from engine.ggml.model import DEFAULT_MAX_CONTEXT

        try:
            facts = read_facts(path)
            n_ctx = min(spec.context or DEFAULT_MAX_CONTEXT, facts.context_length)
            check_memory(path, facts, n_ctx * facts.kv_bytes_per_token(2))
        except GgufError as exc:
            raise ModelLoadError(str(exc)) from exc
        return
    if spec.backend == "ggml":
        _require_ggml()
    from engine.model import load_config

    try:
        load_config(path)
        _numpy_weight_bytes(path)
        load_tokenizer(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc


def _load_numpy(folder: Path, reason: str) -> LoadedModel:
    from engine.model import load_model

    try:
        return LoadedModel(load_model(folder), load_tokenizer(folder), f"numpy: {reason}")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{folder}: {exc}") from exc


def _converted(spec: ModelSpec, progress: Callable[[str], None] | None) -> Path:
    from engine.ggml.gguf_cache import converted_gguf

    _require_ggml()
    try:
        return converted_gguf(spec.path, spec.quant or DEFAULT_QUANT, progress=progress)
    except ValueError as exc:  # ConversionError: names the folder
        raise ModelLoadError(str(exc)) from exc


def _require_ggml() -> None:
    from engine.ggml import require_binding

    try:
        require_binding()
    except ImportError as exc:
        raise ModelLoadError(str(exc)) from exc


def _load_ggml(spec: ModelSpec, gguf: Path, reason: str) -> LoadedModel:
    _require_ggml()
    from engine.ggml.model import GgmlModel

    try:
        model = GgmlModel.load(gguf, threads=spec.threads, context=spec.context)
    except ValueError as exc:  # GgufError: names the file
        raise ModelLoadError(str(exc)) from exc
    # A tokenizer.json beside the weights (a converted folder, or a GGUF file placed with
    # one) is the checkpoint's own; without one, llama.cpp's vocabulary in the file.
    source = spec.path if spec.path.is_dir() else gguf
    return LoadedModel(model, load_tokenizer(source, gguf_model=model),
                       f"ggml ({model.weights}): {reason}")


# ---------------------------------------------------------------------------- measuring


def pass_costs(model: Backend, *, repeats: int = MEASURE_REPEATS) -> tuple[float, float]:
    """Median seconds of a one-token and of a 17-token pass after a short prompt."""
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, model.vocab_size, MEASURE_PROMPT).tolist()
    cache = model.new_cache()
    model.forward(prompt, cache, last_n=1)
    costs: dict[int, list[float]] = {1: [], 17: []}
    for _ in range(repeats):
        for n in costs:
            tokens = rng.integers(0, model.vocab_size, n).tolist()
            start = time.perf_counter()
            model.forward(tokens, cache, last_n=n)
            costs[n].append(time.perf_counter() - start)
            cache.truncate(MEASURE_PROMPT)
    return float(np.median(costs[1])), float(np.median(costs[17]))


def _measured_choice(spec: ModelSpec, progress: Callable[[str], None] | None) -> LoadedModel:
    from engine.ggml.gguf_cache import remember, remembered

    gguf = _converted(spec, progress)
    key = f"backend-choice-{spec.threads or os.cpu_count()}"
    costs = remembered(gguf, key)
    measured: dict[str, LoadedModel] = {}
    if costs is None:
        measured = {"ggml": _load_ggml(spec, gguf, "measured"),
                    "numpy": _load_numpy(spec.path, "measured")}
        costs = {name: pass_costs(m.backend) for name, m in measured.items()}
        remember(gguf, key, costs)
    winner = min(costs, key=lambda name: sum(costs[name]))
    g1, g17 = (1e3 * x for x in costs["ggml"])
    n1, n17 = (1e3 * x for x in costs["numpy"])
    why = (f"measured faster here (1- and 17-token passes: ggml {g1:.2f} / {g17:.2f} ms, "
           f"numpy {n1:.2f} / {n17:.2f} ms)")
    if winner in measured:
        chosen = measured[winner]
        weights = f" ({chosen.backend.weights})" if winner == "ggml" else ""
        return LoadedModel(chosen.backend, chosen.tokenizer, f"{winner}{weights}: {why}")
    if winner == "ggml":
        return _load_ggml(spec, gguf, why)
    return _load_numpy(spec.path, why)
