"""The context builder: exact to the budget, in the trained layout, private, and stable."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server.context.assemble import ContextBuilder
from lsp_server.context.chunks import FileLines, SplitRule, probe_split_rule
from lsp_server.context.files import WorkspaceFiles
from lsp_server.context.history_entry import HistoryEntry
from lsp_server.context.index import WorkspaceIndex
from lsp_server.context.languages import LanguageRegistry
from lsp_server.context.layout import (
    SEGMENT_KINDS,
    Context,
    ContextOptions,
    ContextRefused,
    CursorFile,
    shared_prefix,
)
from lsp_server.context.privacy import ExclusionRules
from lsp_server.context.ranking import RankingCache
from lsp_server.context.tokens import TokenCounter
from lsp_server.context.trees import DocumentTree
from lsp_server.history import EditHistory

SECRET = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
AWS_KEY = "AKIAIOSFODNN7EXAMPLQ"

UTIL = textwrap.dedent('''\
    """Helpers."""


    def compute_total(items, tax=0.2):
        """The total of the items' prices, with tax."""
        subtotal = sum(item.price for item in items)
        return subtotal * (1 + tax)
    ''')
MAIN = textwrap.dedent('''\
    from pkg.util import compute_total


    def checkout(cart):
        total = compute_total(cart.items)
        return total
    ''')


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_dir(default_model_dir())


@pytest.fixture(scope="module")
def counter(tokenizer: Tokenizer) -> TokenCounter:
    return TokenCounter.from_tokenizer(tokenizer)


@pytest.fixture(scope="module")
def registry() -> LanguageRegistry:
    return LanguageRegistry()


Workspace = tuple[WorkspaceIndex, WorkspaceFiles]


def workspace(root: Path, files: dict[str, str], registry: LanguageRegistry) -> Workspace:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    ws_files = WorkspaceFiles(root, ExclusionRules.create())
    index = WorkspaceIndex(root, files=ws_files, registry=registry)
    index.build()
    return index, ws_files


def make_builder(tokenizer: Tokenizer, counter: TokenCounter, registry: LanguageRegistry,
                 ws: Workspace | None = None) -> ContextBuilder:
    index, files = ws if ws is not None else (None, None)
    return ContextBuilder(counter=counter, special_ids=tokenizer.special_ids, registry=registry,
                          index=index, ranking=RankingCache() if index is not None else None,
                          files=files)


def cursor(registry: LanguageRegistry, path: str, text: str, offset: int) -> CursorFile:
    spec = registry.for_path(path)
    tree = DocumentTree(spec, text, registry.parser(spec)) if spec is not None else None
    return CursorFile(path=path, text=text, offset=offset, tree=tree, spec=spec)


def check_layout(ctx: Context, tokenizer: Tokenizer, options: ContextOptions) -> None:
    """Exact, in order, and every segment's text is what its tokens say."""
    special = tokenizer.special_ids
    assert ctx.total_tokens == len(ctx.tokens) <= options.budget
    assert list(ctx.tokens) == [t for s in ctx.segments for t in s.tokens]
    assert ctx.tokens[-1] == special["<|fim_middle|>"]
    kinds = [s.kind for s in ctx.segments]
    fixed = [k for k in kinds if not k.startswith("current")]
    assert fixed == sorted(fixed, key=SEGMENT_KINDS.index)
    current = kinds[len(fixed):]
    assert current == (["current_suffix", "current_prefix"] if options.fim_order == "spm"
                       else ["current_prefix", "current_suffix"])
    markers = {special[m] for m in ("<|file_sep|>", "<|edit_history|>", "<|fim_prefix|>",
                                    "<|fim_suffix|>", "<|fim_middle|>")}
    first = {"repository": "<|file_sep|>", "recent_file": "<|file_sep|>",
             "scopes": "<|file_sep|>", "definitions": "<|file_sep|>",
             "repository_fill": "<|file_sep|>",
             "history": "<|edit_history|>",
             "current_prefix": "<|fim_prefix|>", "current_suffix": "<|fim_suffix|>"}
    for seg in ctx.segments:
        assert seg.tokens[0] == special[first[seg.kind]]
        body = [t for t in seg.tokens if t not in markers]
        assert len(body) == len(seg.tokens) - 1 - (seg.tokens[-1] == special["<|fim_middle|>"])
        assert tokenizer.decode(body) == seg.text


def context_text(ctx: Context) -> str:
    return "\n".join(s.text for s in ctx.segments)


# -- layout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["spm", "psm"])
def test_layout_in_order(tokenizer, counter, registry, tmp_path, order) -> None:
    ws = workspace(tmp_path, {"pkg/util.py": UTIL, "main.py": MAIN,
                                 "pkg/__init__.py": ""}, registry)
    builder = make_builder(tokenizer, counter, registry, ws)
    offset = MAIN.index("total = ") + len("total = ")
    options = ContextOptions(budget=4096, fim_order=order, heal=False)
    history = [HistoryEntry(path="pkg/util.py", diff="--- a/pkg/util.py\n+++ b/pkg/util.py\n"
                            "@@ -1 +1 @@\n-x\n+y\n", seq=0, closed=True)]
    ctx = builder.build(cursor(registry, "main.py", MAIN, offset), options, history=history)
    check_layout(ctx, tokenizer, options)
    kinds = [s.kind for s in ctx.segments]
    assert "history" in kinds and "repository" in kinds
    prefix = next(s for s in ctx.segments if s.kind == "current_prefix")
    suffix = next(s for s in ctx.segments if s.kind == "current_suffix")
    assert prefix.text == MAIN[:offset] and suffix.text == MAIN[offset:]
    special = tokenizer.special_ids
    if order == "spm":
        tail = [special["<|fim_suffix|>"], *tokenizer.encode(MAIN[offset:]),
                special["<|fim_prefix|>"], *tokenizer.encode(MAIN[:offset]),
                special["<|fim_middle|>"]]
    else:
        tail = [special["<|fim_prefix|>"], *tokenizer.encode(MAIN[:offset]),
                special["<|fim_suffix|>"], *tokenizer.encode(MAIN[offset:]),
                special["<|fim_middle|>"]]
    assert list(ctx.tokens[-len(tail):]) == tail


def test_budget_too_small_for_the_markers(tokenizer, counter, registry) -> None:
    builder = make_builder(tokenizer, counter, registry)
    current = cursor(registry, "a.py", "x = 1\n", 3)
    with pytest.raises(ValueError):
        builder.build(current, ContextOptions(budget=2))
    ctx = builder.build(current, ContextOptions(budget=3))
    assert ctx.total_tokens == 3


def test_special_token_strings_in_code_stay_text(tokenizer, counter, registry) -> None:
    text = 'END = "<|endoftext|>"\nMID = "<|fim_middle|>"\n'
    builder = make_builder(tokenizer, counter, registry)
    ctx = builder.build(cursor(registry, "a.py", text, len(text)),
                        ContextOptions(budget=512, heal=False))
    assert ctx.tokens.count(tokenizer.special_ids["<|fim_middle|>"]) == 1
    assert tokenizer.special_ids["<|endoftext|>"] not in ctx.tokens


def test_healing_drops_a_word_piece(tokenizer, counter, registry) -> None:
    text = "import os\n\nprint(os.path.jo\n"
    offset = text.index(".jo") + 3
    builder = make_builder(tokenizer, counter, registry)
    ctx = builder.build(cursor(registry, "a.py", text, offset), ContextOptions(budget=256))
    prefix = next(s for s in ctx.segments if s.kind == "current_prefix")
    assert ctx.heal and prefix.text + ctx.heal == text[:offset]


# -- what goes in ---------------------------------------------------------------------------

def test_definition_from_an_imported_file(tokenizer, counter, registry, tmp_path) -> None:
    filler = "".join(f"\n\ndef helper_{i}(x):\n    return x + {i}\n" for i in range(300))
    files = {"pkg/__init__.py": "", "pkg/util.py": UTIL + filler, "main.py": MAIN}
    for i in range(5):  # other files that define a compute_total too
        files[f"other/mod{i}.py"] = f"def compute_total(a):\n    return {i}\n"
    ws = workspace(tmp_path, files, registry)
    builder = make_builder(tokenizer, counter, registry, ws)
    offset = MAIN.index("return total")
    options = ContextOptions(budget=2048)
    ctx = builder.build(cursor(registry, "main.py", MAIN, offset), options)
    check_layout(ctx, tokenizer, options)
    (definition,) = [s for s in ctx.segments if s.kind == "definitions"]
    assert definition.path == "pkg/util.py"
    assert definition.text == "pkg/util.py\n" + UTIL[UTIL.index("def compute_total"):]


def test_headers_of_scopes_cut_off_above_the_prefix_are_shown(tokenizer, counter, registry
                                                               ) -> None:
    body = "".join(f"        total_{i} = self.value * {i}\n" for i in range(400))
    text = ("import os\n\n\nclass Ledger(Base):\n    def __init__(self):\n        pass\n\n"
            f"    def settle(self, account, *, strict=False):\n{body}        return total\n")
    offset = text.index("        return total")
    builder = make_builder(tokenizer, counter, registry)
    options = ContextOptions(budget=600)
    ctx = builder.build(cursor(registry, "ledger.py", text, offset), options)
    check_layout(ctx, tokenizer, options)
    prefix = next(s for s in ctx.segments if s.kind == "current_prefix")
    assert "class Ledger" not in prefix.text  # the budget cut it off...
    (scopes,) = [s for s in ctx.segments if s.kind == "scopes"]
    assert scopes.text == ("ledger.py\nclass Ledger(Base):\n"
                           "    def settle(self, account, *, strict=False):\n")
    # ...and with room for the whole file there is nothing to repeat.
    whole = builder.build(cursor(registry, "ledger.py", text, offset),
                          ContextOptions(budget=20000))
    assert not [s for s in whole.segments if s.kind == "scopes"]


def test_a_file_too_large_shows_its_definition_headers(tokenizer, counter, registry,
                                                        tmp_path) -> None:
    filler = "".join(f"\n\ndef helper_{i}(x):\n    return x + {i}\n" for i in range(300))
    ws = workspace(tmp_path, {"pkg/__init__.py": "", "pkg/util.py": UTIL + filler,
                              "main.py": MAIN}, registry)
    builder = make_builder(tokenizer, counter, registry, ws)
    ctx = builder.build(cursor(registry, "main.py", MAIN, 10), ContextOptions(budget=4096))
    (util,) = [s for s in ctx.segments if s.kind == "repository" and s.path == "pkg/util.py"]
    lines = util.text.splitlines()
    assert lines[0] == "pkg/util.py" and lines[1] == "def compute_total(items, tax=0.2):"
    assert all(line.startswith("def ") for line in lines[1:]) and len(lines) > 10


def test_excluded_and_ignored_files_never_appear(tokenizer, counter, registry,
                                                 tmp_path) -> None:
    files = {
        ".env": f"API_KEY={SECRET}\n",
        ".gitignore": "private_notes.py\n",
        "private_notes.py": "def compute_total(x):\n    return 'PRIVATE-NOTES'\n",
        "pkg/__init__.py": "", "pkg/util.py": UTIL, "main.py": MAIN,
    }
    ws = workspace(tmp_path, files, registry)
    builder = make_builder(tokenizer, counter, registry, ws)
    recent = [(".env", files[".env"]), ("private_notes.py", files["private_notes.py"]),
              ("pkg/util.py", UTIL)]
    history = [HistoryEntry(path=".env", diff=f"--- a/.env\n+++ b/.env\n@@ -1 +1 @@\n-x\n"
                            f"+API_KEY={SECRET}\n", seq=0, closed=True),
               HistoryEntry(path="private_notes.py", diff="--- a/private_notes.py\n+++ "
                            "b/private_notes.py\n@@ -1 +1 @@\n-x\n+PRIVATE-NOTES\n", seq=1,
                            closed=True)]
    offset = MAIN.index("return total")
    for remote in (False, True):
        options = ContextOptions(budget=8192, remote=remote)
        ctx = builder.build(cursor(registry, "main.py", MAIN, offset), options,
                            history=history, recent=recent)
        check_layout(ctx, tokenizer, options)
        text = context_text(ctx)
        assert SECRET not in text and "PRIVATE-NOTES" not in text
        assert not {s.path for s in ctx.segments} & {".env", "private_notes.py"}
        assert "def compute_total(items" in text


def test_remote_redacts_and_refuses(tokenizer, counter, registry, tmp_path) -> None:
    config = f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nTOKEN = "{SECRET}"\n'
    current_text = MAIN + f'\nSTRIPE_KEY = "{SECRET}"\n'
    ws = workspace(tmp_path, {"settings.py": config, "main.py": current_text,
                                 "pkg/__init__.py": "", "pkg/util.py": UTIL,
                                 ".env": "X=1\n"}, registry)
    builder = make_builder(tokenizer, counter, registry, ws)
    current = cursor(registry, "main.py", current_text, MAIN.index("return total"))
    recent = [("settings.py", config)]
    local = builder.build(current, ContextOptions(budget=8192), recent=recent)
    assert SECRET in context_text(local) and local.redactions == 0
    remote = builder.build(current, ContextOptions(budget=8192, remote=True), recent=recent)
    assert SECRET not in context_text(remote) and AWS_KEY not in context_text(remote)
    assert remote.redactions >= 3 and "REDACTED" in context_text(remote)
    env = cursor(registry, ".env", "X=1\n", 1)
    builder.build(env, ContextOptions(budget=512))  # local: the user's own file
    with pytest.raises(ContextRefused):
        builder.build(env, ContextOptions(budget=512, remote=True))


def test_remote_redacts_a_key_across_chunks(tokenizer, counter, registry) -> None:
    body = "".join(f"MIIEow{i:04d}AgEAAoIBAQC7vbqajDw4o6gJy8UtmIbkcpnkO3Kwc4qsEnSZp/Tx\n"
                   for i in range(80))
    key = f'KEY = """-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----"""\n'
    text = big_module(20) + key + big_module(20)
    builder = make_builder(tokenizer, counter, registry)
    current = cursor(registry, "keys.py", text, len(text) - 10)
    options = ContextOptions(budget=20_000, remote=True)
    ctx = builder.build(current, options)
    check_layout(ctx, tokenizer, options)
    assert "MIIEow" not in context_text(ctx) and ctx.redactions >= 1
    local = builder.build(current, ContextOptions(budget=20_000))
    assert "MIIEow0042" in context_text(local)


# -- exactness of the chunked current file --------------------------------------------------

def big_module(n_functions: int) -> str:
    parts = ['"""A generated module."""\n\nimport math\n\n\nclass Shape:\n    """A shape."""\n']
    for i in range(n_functions):
        parts.append(f"\n    def area_{i}(self, r):\n        \"\"\"Area number {i}.\"\"\"\n"
                     f"        value = math.pi * r ** {i % 5 + 1}\n"
                     f"        if value > {i}:\n            return value\n\n"
                     f"        return -value  # {i}\n")
    parts.append("\n\ndef main():\n    return Shape()\n")
    return "".join(parts)


def test_split_rule_of_the_embedded_tokenizer(counter) -> None:
    assert probe_split_rule(counter) is SplitRule.SPACE


@pytest.mark.parametrize("budget", [64, 700, 5000, 40_000])
def test_prefix_and_suffix_ids_are_those_of_their_text(tokenizer, counter, registry,
                                                       budget) -> None:
    text = big_module(400)
    builder = make_builder(tokenizer, counter, registry)
    offset = text.index("value = math.pi * r ** 3") + 10
    options = ContextOptions(budget=budget, heal=False)
    ctx = builder.build(cursor(registry, "shape.py", text, offset), options)
    check_layout(ctx, tokenizer, options)
    prefix = next(s for s in ctx.segments if s.kind == "current_prefix")
    suffix = next(s for s in ctx.segments if s.kind == "current_suffix")
    assert text[:offset].endswith(prefix.text) and text[offset:].startswith(suffix.text)
    assert list(prefix.tokens[1:-1]) == tokenizer.encode(prefix.text)
    assert list(suffix.tokens[1:]) == tokenizer.encode(suffix.text)
    if budget >= 5000:  # room for whole lines: the cuts are at line starts
        assert prefix.text.startswith(("class", "    def", '"""'))
        assert suffix.text.endswith("\n")


def test_chunks_ignore_a_broken_parse(counter, registry) -> None:
    text = big_module(200)
    spec = registry.for_path("a.py")
    tree = DocumentTree(spec, text, registry.parser(spec))
    before = FileLines.build(tree.source, None, SplitRule.SPACE)
    at = text.index("value = math.pi * r ** 2")
    tree.apply_edit(at, "", "x = f(")  # an unclosed call: the rest no longer parses
    after = FileLines.build(tree.source, None, SplitRule.SPACE)
    shift = len("x = f(")
    far_before = {int(b) for b in before.bounds if b > at + 4000}
    far_after = {int(b) - shift for b in after.bounds if b > at + 4000 + shift}
    assert far_before == far_after


# -- budget ---------------------------------------------------------------------------------

SNIPPETS = [UTIL, MAIN, big_module(3), "x = 1\n", "", "def f(:\n  broken(\n",
            "\n\n\n", "é = 'ünïcode ✓'\n" * 5, "a" * 3000 + "\n", "\t\tindented\n" * 30,
            'S = "<|file_sep|><|fim_prefix|>"\n']


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_budget_is_never_exceeded(tokenizer, counter, registry, data) -> None:
    n_files = data.draw(st.integers(0, 6), label="files")
    files = {f"m{i}.py": data.draw(st.sampled_from(SNIPPETS)) for i in range(n_files)}
    files["main.py"] = MAIN
    current_text = data.draw(st.sampled_from(SNIPPETS + [big_module(60)]), label="current")
    offset = data.draw(st.integers(0, len(current_text)), label="offset")
    budget = data.draw(st.one_of(st.integers(16, 600), st.integers(16, 200_000)),
                       label="budget")
    order = data.draw(st.sampled_from(["spm", "psm"]))
    remote = data.draw(st.booleans())
    history = EditHistory(burst_gap_s=0.5)
    for k in range(data.draw(st.integers(0, 4))):
        history.record(f"m{k}.py", UTIL, k, "", "z" * (k + 1), k * 10.0)
    history.close_open(1e9)
    recent = [(rel, text) for rel, text in list(files.items())[:2]]
    with tempfile.TemporaryDirectory() as root:
        ws = workspace(Path(root), files, registry)
        builder = make_builder(tokenizer, counter, registry, ws)
        options = ContextOptions(budget=budget, fim_order=order, remote=remote)
        current = cursor(registry, "cur.py", current_text, offset)
        for _ in range(data.draw(st.integers(1, 4), label="edits")):
            ctx = builder.build(current, options, history=history.entries(), recent=recent)
            assert ctx.total_tokens <= budget
            check_layout(ctx, tokenizer, options)
            # the same builder again, after an edit somewhere and a cursor move
            text = current.text
            at = data.draw(st.integers(0, len(text)), label="at")
            text = text[:at] + data.draw(st.sampled_from(["x", "\n", "(", "    y = 2\n"])) \
                + text[at:]
            current = cursor(registry, "cur.py", text, data.draw(st.integers(0, len(text))))


# -- stability ------------------------------------------------------------------------------

@pytest.mark.parametrize("budget", [8192, 65_536])
def test_typing_inside_a_function_keeps_the_prefix(tokenizer, counter, registry, tmp_path,
                                                   budget) -> None:
    files = {f"lib/m{i}.py": big_module(5 + i) for i in range(12)}
    files.update({"pkg/__init__.py": "", "pkg/util.py": UTIL, "main.py": MAIN})
    ws = workspace(tmp_path, files, registry)
    builder = make_builder(tokenizer, counter, registry, ws)
    text = big_module(1100)  # ~10k lines
    spec = registry.for_path("shape.py")
    tree = DocumentTree(spec, text, registry.parser(spec))
    pos = text.index("value = math.pi * r ** 4", len(text) // 2)
    history = EditHistory()
    options = ContextOptions(budget=budget)
    previous = None
    shares = []
    for i, ch in enumerate("total = compute_total(items)\n        " * 3):
        history.record("shape.py", text, pos, "", ch, i * 0.1)
        tree.apply_edit(pos, "", ch)
        text = text[:pos] + ch + text[pos:]
        pos += 1
        ctx = builder.build(CursorFile(path="shape.py", text=text, offset=pos, tree=tree,
                                       spec=spec), options, history=history.entries(),
                            recent=[("pkg/util.py", UTIL)])
        assert ctx.total_tokens <= budget
        if previous is not None:
            shares.append(shared_prefix(previous.tokens, ctx.tokens) / len(previous.tokens))
        previous = ctx
    assert min(shares) > 0.95, shares


def test_shared_prefix() -> None:
    import numpy as np

    a = list(range(10_000))
    assert shared_prefix(a, a) == 10_000
    assert shared_prefix(a, a[:5000]) == 5000
    b = a.copy()
    b[7777] = -1
    assert shared_prefix(a, b) == 7777
    assert shared_prefix(tuple(a), tuple(b)) == 7777
    assert shared_prefix(np.array(a), np.array(b)) == 7777
    assert shared_prefix([], a) == 0
