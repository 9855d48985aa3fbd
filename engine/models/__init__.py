"""Model folders shipped inside the engine package."""

from __future__ import annotations

from pathlib import Path


def default_model_dir() -> Path:
    """The embedded model: `sparkedit-coder-v2` (eight languages, context 4096), trained
    by scripts/train_tiny_model.py.

    Callers must not assume it is trained or untrained (read ``ModelConfig.untrained``).
    """
    return Path(__file__).resolve().parent / "sparkedit-coder-v2"


def v1_model_dir() -> Path:
    """The first trained model (`sparkedit-coder-3m`, Python only): the evaluation's
    baseline and a smaller alternative."""
    return Path(__file__).resolve().parent / "sparkedit-coder-3m"


def untrained_model_dir() -> Path:
    """The untrained placeholder (random weights, real tokenizer): small and fast, kept for
    tests of the engine's mechanics and as the untrained baseline of the evaluation."""
    return Path(__file__).resolve().parent / "tiny-untrained"
