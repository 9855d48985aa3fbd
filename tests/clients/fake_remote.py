"""tests/remote/fake_server.py (the Cerebras protocol on 127.0.0.1) for the client tests,
which live in another folder: loaded by path, once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FAKE_SERVER = Path(__file__).resolve().parents[1] / "remote" / "fake_server.py"


def load_fake_server() -> ModuleType:
    if "fake_server" in sys.modules:
        return sys.modules["fake_server"]
    spec = importlib.util.spec_from_file_location("fake_server", FAKE_SERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_server"] = module
    spec.loader.exec_module(module)
    return module
