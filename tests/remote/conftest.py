"""Fixtures for the remote targets: a fake server per test and the local tokenizer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_server import FakeServer

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_dir(default_model_dir())
