"""docs/security.md names, for each point, the test that checks it: every such test exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_threat_model_names_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    named = 0
    for cell in re.findall(r"`(tests/[\w/]+\.py)((?:::\w+)?)`((?:, `::\w+`)*)", text):
        path, first, more = cell
        source = (ROOT / path).read_text()
        for name in [first, *re.findall(r"::\w+", more)]:
            if name:
                named += 1
                assert f"def {name[2:]}(" in source, f"{path}{name} is gone"
    assert named >= 12
