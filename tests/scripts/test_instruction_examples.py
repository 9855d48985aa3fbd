"""Instruction examples in eight languages: the server's layout, and checks that hold."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer as HFTokenizer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "scripts"))
sys.path.insert(0, str(HERE))

import instruction_examples as ie  # noqa: E402
import training_data as td  # noqa: E402
from edit_syntax import default_syntax  # noqa: E402
from test_edit_examples import MODEL_DIR, SAMPLES  # noqa: E402

from engine.tokenizer import Tokenizer  # noqa: E402
from lsp_server.context.tokens import TokenCounter  # noqa: E402
from lsp_server.edit_gates import check_instruction_edit  # noqa: E402
from lsp_server.edits import build_edit_prompt, selection_region  # noqa: E402

FILES = [td.SourceFile(path, text, "MIT", language=language)
         for language, (path, text) in SAMPLES.items()]


@pytest.fixture(scope="module")
def examples() -> list[ie.InstructionExample]:
    found = []
    for f in FILES:
        for kind in ie.kinds_for(f.language):
            for seed in range(12):
                example = ie.instruction_example(random.Random(seed), f, 4000, kind)
                if example is not None:
                    found.append(example)
    return found


def _mutated(text: str) -> str | None:
    """`text` with its last digit changed (a wrong rewrite that still parses)."""
    matches = list(re.finditer(r"\d", text))
    if not matches:
        return None
    match = matches[-1]
    digit = "7" if match.group() != "7" else "8"
    return text[:match.start()] + digit + text[match.end():]


def test_every_language_has_three_kinds_or_more(examples: list[ie.InstructionExample]) -> None:
    found: dict[str, set[str]] = {}
    for ex in examples:
        found.setdefault(ex.language, set()).add(ex.kind)
    assert set(found) == set(SAMPLES)
    for language, kinds in found.items():
        assert len(kinds) >= 3, (language, kinds)
        assert kinds == set(ie.kinds_for(language)), language
    assert found["python"] == {"docstring", "type_hints", "rename", "fstring",
                               "extract_constant", "wrap"}


def test_examples_pass_their_checks_and_the_servers_gate(
        examples: list[ie.InstructionExample]) -> None:
    syntax = default_syntax()
    satisfied = 0
    for ex in examples:
        e = ex.example
        assert ex.check(e.rewrite), (ex.language, ex.kind)
        reason = check_instruction_edit(text=e.text, start=e.region.start, end=e.region.end,
                                        new_region=e.rewrite, parser=syntax.parser(e.language))
        assert reason is None
        assert syntax.parses(e.language, e.applied())
        assert (e.rewrite == e.region_text) == ex.satisfied
        satisfied += ex.satisfied
    assert satisfied >= 10, "documented, typed and f-string functions give no-change examples"


def test_wrong_rewrites_fail_the_checks(examples: list[ie.InstructionExample]) -> None:
    for ex in examples:
        e = ex.example
        if not ex.satisfied:
            assert not ex.check(e.region_text), "no change where one was asked for"
        assert not ex.check(e.rewrite[:len(e.rewrite) // 2]), "half of it"
        wrong = _mutated(e.rewrite)
        if wrong is not None:
            assert not ex.check(wrong), (ex.language, ex.kind, wrong)


def test_region_is_the_selection_in_whole_lines(examples: list[ie.InstructionExample]) -> None:
    for ex in examples:
        e = ex.example
        assert e.history == () and e.instruction
        start = e.text.rfind("\n", 0, e.region.cursor) + 1
        assert e.region.start == start and not e.text[start:e.region.cursor].strip()
        assert e.region == selection_region(e.text, e.region.cursor, e.region.end)


def test_pieces_encode_to_the_servers_prompt(examples: list[ie.InstructionExample]) -> None:
    tokenizer = Tokenizer.from_dir(MODEL_DIR)
    encoder = td.Encoder(HFTokenizer.from_file(str(MODEL_DIR / "tokenizer.json")))
    counter = TokenCounter.from_tokenizer(tokenizer)
    for ex in examples[::3]:
        e = ex.example
        prompt = build_edit_prompt(counter=counter, special_ids=dict(tokenizer.special_ids),
                                   path=e.path, text=e.text, region=e.region, history=[],
                                   instruction=e.instruction, budget=1_000_000)
        assert ex.pieces()[:2] == ["<|instruction|>", e.instruction + "\n"]
        assert encoder.encode(ex.pieces()) == prompt.tokens


def _args(before: str, start: int, end: int, **extra: str | int) -> dict[str, str | int]:
    return {"start": start, "tail": len(before) - end, **extra}


PY = '''\
def area(width, height=2):
    size = width * height
    print("area %s" % size)
    return size
'''


@pytest.mark.parametrize("kind, after, args, expected", [
    ("docstring", PY.replace("):\n", '):\n    """Return the area."""\n', 1),
     {"name": "area", "line": 0}, True),
    ("docstring", PY.replace("):\n", '):\n    """Area."""\n', 1).replace("* height", "+ height"),
     {"name": "area", "line": 0}, False),
    ("type_hints", PY.replace("height=2", "height: int = 2"), {"name": "area", "line": 0}, True),
    ("type_hints", PY.replace("height=2", "height: str = 2"), {"name": "area", "line": 0},
     False),
    ("rename", PY.replace("size", "total"), {"old": "size", "new": "total"}, True),
    ("rename", PY.replace("size =", "total ="), {"old": "size", "new": "total"}, False),
    ("fstring", PY.replace('"area %s" % size', 'f"area {size}"'), {}, True),
    ("fstring", PY.replace('"area %s" % size', 'f"area: {size}"'), {}, False),
    ("extract_constant", "DEFAULT_HEIGHT = 2\n\n\n" + PY.replace("=2", "=DEFAULT_HEIGHT"),
     {"literal": "2", "name": "DEFAULT_HEIGHT"}, True),
    ("extract_constant", "DEFAULT_HEIGHT = 3\n\n\n" + PY.replace("=2", "=DEFAULT_HEIGHT"),
     {"literal": "2", "name": "DEFAULT_HEIGHT"}, False),
    ("wrap", PY.replace('    print("area %s" % size)\n',
                        '    try:\n        print("area %s" % size)\n'
                        '    except Exception as exc:\n        raise RuntimeError() from exc\n'),
     {}, True),
    ("wrap", PY.replace('    print("area %s" % size)\n', '    try:\n        pass\n'
                        '    except Exception:\n        raise\n'), {}, False),
])
def test_check_instruction_python(kind: str, after: str, args: dict, expected: bool) -> None:
    assert ie.check_instruction(kind, "python", PY, after, _args(PY, 0, len(PY), **args)) \
        is expected


JS = '''\
function area(width, height = 2) {
  const size = width * height;
  return size;
}
'''


@pytest.mark.parametrize("language, kind, after, args, expected", [
    ("javascript", "docstring", "/** Returns the area. */\n" + JS,
     {"name": "area", "line": 0}, True),
    ("javascript", "docstring", "// area\n" + JS, {"name": "area", "line": 0}, False),
    ("typescript", "type_hints", JS.replace("height = 2", "height: number = 2"),
     {"name": "area", "line": 0}, True),
    ("typescript", "type_hints", JS.replace("height = 2", "height: number = 3"),
     {"name": "area", "line": 0}, False),
    ("typescript", "type_hints", JS.replace("height = 2", "height: string = 2"),
     {"name": "area", "line": 0}, False),
    ("go", "docstring", "// Area returns the area.\nfunc Area() int {\n\treturn 2\n}\n",
     {"name": "Area", "line": 0}, True),
    ("go", "docstring", "// Returns the area.\nfunc Area() int {\n\treturn 2\n}\n",
     {"name": "Area", "line": 0}, False),
    ("javascript", "wrap", JS.replace("  return size;\n", "  try {\n    return size;\n"
                                      "  } catch (err) {\n    throw err;\n  }\n"), {}, True),
    ("javascript", "wrap", JS.replace("  return size;\n", "  try {\n    return size;\n  }\n"),
     {}, False),
])
def test_check_instruction_other_languages(language: str, kind: str, after: str, args: dict,
                                           expected: bool) -> None:
    before = "func Area() int {\n\treturn 2\n}\n" if language == "go" else JS
    assert ie.check_instruction(kind, language, before, after,
                                _args(before, 0, len(before), **args)) is expected


def test_a_satisfied_selection_passes_only_unchanged() -> None:
    args = _args(PY, 0, len(PY), name="area", line=0, satisfied=1)
    assert ie.check_instruction("docstring", "python", PY, PY, args)
    assert not ie.check_instruction("docstring", "python", PY,
                                    PY.replace("):\n", '):\n    """Area."""\n', 1), args)


def test_python_that_tree_sitter_accepts_and_ast_refuses_gives_no_error() -> None:
    """Python 2 in a real package: a failed try, never an exception that ends a run."""
    source = "def total(a=1, b=2):\n    print 'adding'\n    return a + b\n"
    old = td.SourceFile("pkg/old.py", source, "MIT", "python", "pkg", "train")
    for seed in range(40):
        example = ie.instruction_example(random.Random(seed), old, 2400, "type_hints")
        assert example is None or example.check(example.rewrite)
