"""Session-wide set-up shared by every test folder."""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Converted GGUF files and backend measurements go to a folder of this test session
    # (engines started by the tests inherit it), never to the user's ~/.cache.
    if "SPARKEDIT_CACHE_DIR" not in os.environ:
        os.environ["SPARKEDIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="sparkedit-test-cache-")
