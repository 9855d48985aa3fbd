"""Shared fixtures: the engine's mechanics are tested on the small untrained placeholder,
whose behaviour does not change when the shipped default model is retrained."""

from __future__ import annotations

import pytest

from engine.model import Transformer, load_model
from engine.models import untrained_model_dir
from engine.tokenizer import Tokenizer


@pytest.fixture(scope="session")
def model() -> Transformer:
    return load_model(untrained_model_dir())


@pytest.fixture(scope="session")
def tok() -> Tokenizer:
    return Tokenizer.from_dir(untrained_model_dir())
