"""Model folders shipped inside the engine package."""

from __future__ import annotations

from pathlib import Path


def default_model_dir() -> Path:
    """The embedded model: for now the untrained placeholder.

    A trained model will replace it; callers must not assume it is untrained
    (read ``ModelConfig.untrained`` instead).
    """
    return Path(__file__).resolve().parent / "tiny-untrained"


def untrained_model_dir() -> Path:
    """The untrained placeholder (random weights, real tokenizer): small and fast, kept for
    tests of the engine's mechanics and as the untrained baseline of the evaluation."""
    return Path(__file__).resolve().parent / "tiny-untrained"
