"""Context engine benchmark over a large real codebase (the Python standard library).

Measures, in one run:
- cold index: time and resident memory added by building the workspace index;
- per-keystroke syntax-tree update on a 10,000-line file (incremental `tree.edit` plus
  re-parse), against a fresh parse of the same text (the baseline);
- context build per keystroke at 8k, 32k and 128k-token budgets while typing inside one
  function, warm (index built, token cache filled), against the first, cold build;
- the token prefix shared by consecutive keystrokes' contexts (what the engine's prefix
  cache can reuse);
- how full each context is (tokens over the budget), against the same build with the
  trailing repository segment off (the baseline: what the fixed allotments alone use), in
  the big file and in a real module that leaves most of the budget to the repository
  (asyncio/tasks.py).

Typing is replayed through `Workspace.changed` exactly as the language server applies a
didChange, so history, trees and the context builder all do their real work.

Prints a table and writes JSON (default bench_results/context.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import sysconfig
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.models import default_model_dir
from engine.tokenizer import Tokenizer
from lsp_server.context.assemble import ContextOptions, shared_prefix
from lsp_server.documents import AppliedEdit, Document
from lsp_server.workspace import Workspace, WorkspaceSettings

REPO = Path(__file__).resolve().parent.parent
BUDGETS = (8192, 32768, 131072)
SMALL_MODULE = "asyncio/tasks.py"  # a module much smaller than the budget: most is repository
# What is typed inside a function of the big file, one character per keystroke.
TYPED = "        result = self._normalize(value, strict=True)\n        if result is None:\n"


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], pct: float) -> float:
    return float(np.percentile(np.asarray(values), pct)) if values else float("nan")


def big_file(stdlib: Path, lines: int) -> str:
    """About `lines` lines of real Python: stdlib modules concatenated, cut before the last
    top-level definition that starts within the first `lines` lines."""
    parts, total = [], 0
    for name in ("_pydecimal.py", "typing.py", "inspect.py", "argparse.py", "tarfile.py"):
        text = (stdlib / name).read_text(encoding="utf-8")
        parts.append(text)
        total += text.count("\n")
        if total >= lines:
            break
    kept = "".join(parts).splitlines(keepends=True)
    cut = max(i for i, line in enumerate(kept[:lines + 1])
              if line.startswith(("def ", "class ")))
    return "".join(kept[:cut])


def typing_point(text: str, at: float = 0.66) -> int:
    """An offset at the start of a line inside a method, about `at` into the file."""
    anchor = text.index("\n    def ", int(len(text) * at))
    body = text.index(":\n", anchor) + 2
    return text.index("\n", body) + 1  # after the method's first body line


def type_into(workspace: Workspace, doc: Document, offset: int, typed: str):
    """Yield (document, cursor offset, seconds spent in Workspace.changed) per keystroke."""
    for ch in typed:
        before = doc
        text = before.text[:offset] + ch + before.text[offset:]
        doc = Document(uri=before.uri, text=text, version=(before.version or 0) + 1,
                       language_id=before.language_id)
        started = time.perf_counter()
        workspace.changed(before, doc, [AppliedEdit(start=offset, removed="", inserted=ch)])
        elapsed = time.perf_counter() - started
        offset += 1
        yield doc, offset, elapsed


def bench_trees(workspace: Workspace, doc: Document, offset: int) -> dict:
    tree = workspace.tree(doc.uri)
    assert tree is not None, "the big file must have a syntax tree"
    update_ms, fresh_ms, changed_ms = [], [], []
    parser = workspace.registry.parser(tree.spec)
    typed_doc, cursor = doc, offset
    for typed_doc, cursor, elapsed in type_into(workspace, doc, offset, TYPED * 3):  # noqa: B007
        changed_ms.append(elapsed * 1000)
    offset = cursor
    # Tree update alone, and a fresh parse of the same text as the baseline.
    for i in range(300):
        ch = "x" if i % 7 else "\n"
        started = time.perf_counter()
        tree.apply_edit(offset, "", ch)
        update_ms.append((time.perf_counter() - started) * 1000)
        offset += 1
        if i % 10 == 0:
            started = time.perf_counter()
            parser.parse(tree.source)
            fresh_ms.append((time.perf_counter() - started) * 1000)
    assert tree.matches_fresh_parse(), "incremental tree must equal a fresh parse"
    return {
        "file_lines": typed_doc.text.count("\n"),
        "tree_update_p50_ms": percentile(update_ms, 50),
        "tree_update_p95_ms": percentile(update_ms, 95),
        "fresh_parse_p50_ms": percentile(fresh_ms, 50),
        "didchange_p50_ms": percentile(changed_ms, 50),
        "didchange_p95_ms": percentile(changed_ms, 95),
    }


def bench_budget(workspace: Workspace, doc: Document, offset: int, budget: int,
                 keystrokes: int) -> dict:
    options = ContextOptions(budget=budget)
    workspace.opened(doc)  # each budget types the same keystrokes into the same text
    baseline = workspace.context(doc, offset, replace(options, fill=False)).total_tokens
    started = time.perf_counter()
    first = workspace.context(doc, offset, options)
    cold_ms = (time.perf_counter() - started) * 1000
    build_ms, shared, previous = [], [], list(first.tokens)
    fills = [len(previous) / budget]
    kinds: dict[str, int] = {}
    for n, (typed_doc, cursor, _) in enumerate(type_into(workspace, doc, offset, TYPED)):
        if n >= keystrokes:
            break
        started = time.perf_counter()
        context = workspace.context(typed_doc, cursor, options)
        build_ms.append((time.perf_counter() - started) * 1000)
        tokens = list(context.tokens)
        assert len(tokens) <= budget, "a context must never exceed its budget"
        shared.append(shared_prefix(previous, tokens) / max(1, len(tokens)))
        fills.append(len(tokens) / budget)
        previous = tokens
        kinds = {}
        for segment in context.segments:
            kinds[segment.kind] = kinds.get(segment.kind, 0) + len(segment.tokens)
    workspace.closed(doc.uri)
    return {
        "file": Path(doc.uri).name,
        "budget": budget,
        "total_tokens": len(previous),
        "total_tokens_without_fill": baseline,
        "fill_min": min(fills),
        "fill_mean": statistics.fmean(fills),
        "cold_ms": cold_ms,
        "warm_p50_ms": percentile(build_ms, 50),
        "warm_p95_ms": percentile(build_ms, 95),
        "shared_prefix_p50": percentile(shared, 50),
        "shared_prefix_mean": statistics.fmean(shared) if shared else float("nan"),
        "shared_prefix_min": min(shared) if shared else float("nan"),
        "tokens_by_kind": kinds,
        "keystrokes": len(build_ms),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=sysconfig.get_paths()["stdlib"],
                        help="codebase to index (default: this Python's standard library)")
    parser.add_argument("--lines", type=int, default=10_000, help="size of the typed-in file")
    parser.add_argument("--keystrokes", type=int, default=80)
    parser.add_argument("--exclude", action="append", default=["site-packages/"],
                        help="gitignore-style pattern left out of the index (repeatable)")
    parser.add_argument("--out", default=str(REPO / "bench_results" / "context.json"))
    args = parser.parse_args()
    root = Path(args.root).resolve()

    tokenizer = Tokenizer.from_dir(default_model_dir())
    rss_before = rss_bytes()
    workspace = Workspace(tokenizer=tokenizer, settings=WorkspaceSettings(
        root=root, exclude=tuple(args.exclude)))
    started = time.perf_counter()
    workspace.build_index()
    index_s = time.perf_counter() - started
    index_rss = rss_bytes() - rss_before
    stats = workspace.index.stats() if workspace.index else {}

    text = big_file(root, args.lines)
    doc = Document(uri=(REPO / "bench_results" / "big_module.py").as_uri(), text=text,
                   version=0, language_id="python")
    workspace.opened(doc)
    offset = typing_point(text)
    trees = bench_trees(workspace, doc, offset)
    doc = Document(uri=doc.uri, text=workspace.tree(doc.uri).text, version=1,
                   language_id="python")
    budgets = [bench_budget(workspace, doc, offset, b, args.keystrokes) for b in BUDGETS]
    module = root / SMALL_MODULE
    if module.is_file():
        text = module.read_text(encoding="utf-8")
        doc = Document(uri=module.as_uri(), text=text, version=0, language_id="python")
        offset = typing_point(text, 0.25)
        budgets += [bench_budget(workspace, doc, offset, b, args.keystrokes) for b in BUDGETS]

    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": sys.version.split()[0]},
        "codebase": {"root": str(root), **stats},
        "index": {"cold_s": index_s, "rss_added_mb": index_rss / 2**20},
        "trees": trees,
        "budgets": budgets,
    }
    print(f"\nContext engine on {root} ({stats.get('files')} files indexed)\n")
    print("| cold index | RSS added | tree update p50 / p95 | fresh parse p50 | "
          "update / fresh | whole didChange p50 / p95 |")
    print("|---|---|---|---|---|---|")
    print(f"| {index_s:.1f} s | {index_rss / 2**20:.0f} MB | "
          f"{trees['tree_update_p50_ms']:.2f} / {trees['tree_update_p95_ms']:.2f} ms | "
          f"{trees['fresh_parse_p50_ms']:.1f} ms | "
          f"{trees['tree_update_p50_ms'] / trees['fresh_parse_p50_ms']:.3f} | "
          f"{trees['didchange_p50_ms']:.2f} / {trees['didchange_p95_ms']:.2f} ms |")
    print(f"\n(typed into a {trees['file_lines']}-line file)\n")
    print("| typed into | budget | tokens without fill | tokens | full (min while typing) | "
          "cold build | warm p50 / p95 | warm / cold | shared prefix p50 / mean / min |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b in budgets:
        print(f"| {b['file']} | {b['budget']} | {b['total_tokens_without_fill']} "
              f"({b['total_tokens_without_fill'] / b['budget']:.1%}) | {b['total_tokens']} | "
              f"{b['fill_min']:.1%} | {b['cold_ms']:.1f} ms | "
              f"{b['warm_p50_ms']:.1f} / {b['warm_p95_ms']:.1f} ms | "
              f"{b['warm_p50_ms'] / b['cold_ms']:.3f} | "
              f"{b['shared_prefix_p50']:.1%} / {b['shared_prefix_mean']:.1%} / "
              f"{b['shared_prefix_min']:.1%} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
