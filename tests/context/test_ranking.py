"""ranking.py: a personalised PageRank over files linked by references to definitions."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from pathlib import Path

import pytest

from lsp_server.context.files import WorkspaceFiles
from lsp_server.context.index import FileEntry, WorkspaceIndex
from lsp_server.context.languages import LanguageRegistry
from lsp_server.context.privacy import ExclusionRules
from lsp_server.context.ranking import RankingCache, rank_files


def make_index(root: Path, sources: dict[str, str]) -> WorkspaceIndex:
    for rel, text in sources.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    files = WorkspaceFiles(root, ExclusionRules.create())
    index = WorkspaceIndex(root, files=files, registry=LanguageRegistry())
    index.build()
    return index


def defs(*names: str) -> str:
    return "".join(f"def {name}():\n    pass\n\n" for name in names)


def calls(*names: str) -> str:
    return "def caller():\n" + "".join(f"    {name}()\n" for name in names)


@pytest.fixture
def index(tmp_path: Path) -> WorkspaceIndex:
    return make_index(
        tmp_path,
        {
            "a.py": calls("load_data", "load_data", "load_data", "parse_config", "render"),
            "util.py": defs("parse_config", "unused_helper", "load_data"),
            "other.py": defs("unrelated_function"),
            "view.py": defs("render"),
        },
    )


def test_referenced_file_ranks_above_unreferenced(index: WorkspaceIndex) -> None:
    ranked = rank_files(index, focus_files=["a.py"])
    order = [r.rel for r in ranked]
    assert order.index("util.py") < order.index("other.py")
    assert ranked[0].rel == "a.py"  # the walk restarts there
    assert math.isclose(sum(r.score for r in ranked), 1.0)
    by_rel = {r.rel: r for r in ranked}
    # util.py's names by the rank flowing into them; unreferenced ones last, in source order
    assert by_rel["util.py"].names == ("load_data", "parse_config", "unused_helper")


def test_focus_names_boost_their_file(index: WorkspaceIndex) -> None:
    plain = {r.rel: r.score for r in rank_files(index, focus_files=["a.py"])}
    boosted = {
        r.rel: r.score for r in rank_files(index, focus_files=["a.py"], focus_names={"render"})
    }
    assert plain["view.py"] < plain["util.py"]
    assert boosted["view.py"] > boosted["util.py"]
    assert boosted["view.py"] > plain["view.py"]


def test_order_is_deterministic(index: WorkspaceIndex) -> None:
    first = rank_files(index)
    assert first == rank_files(index)
    # Files nothing links are tied, and ordered by path.
    tied = [r.rel for r in first if r.rel in ("other.py", "a.py")]
    assert tied == sorted(tied)
    scores = [r.score for r in first]
    assert scores == sorted(scores, reverse=True)


def test_cache_hits_return_the_same_object(index: WorkspaceIndex, tmp_path: Path) -> None:
    cache = RankingCache(size=2)
    first = cache.rank(index, focus_files=["a.py"], focus_names={"render"})
    assert cache.rank(index, focus_files=["a.py"], focus_names={"render"}) is first
    other = cache.rank(index, focus_files=["util.py"])
    assert other is not first
    assert cache.rank(index, focus_files=["a.py"], focus_names={"render"}) is first
    assert first == rank_files(index, focus_files=["a.py"], focus_names={"render"})

    (tmp_path / "other.py").write_text(defs("render"), encoding="utf-8")
    index.update_file(tmp_path / "other.py")
    updated = cache.rank(index, focus_files=["a.py"], focus_names={"render"})
    assert updated is not first
    assert updated == rank_files(index, focus_files=["a.py"], focus_names={"render"})


def test_empty_index(tmp_path: Path) -> None:
    index = make_index(tmp_path, {})
    assert rank_files(index) == []
    assert RankingCache().rank(index, focus_files=["x.py"]) == []


def reference_rank(
    entries: list[FileEntry], focus_files: list[str], focus_names: set[str]
) -> dict[str, float]:
    """The same walk over explicitly expanded edges, written independently."""
    rels = [e.rel for e in entries]
    definers: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        for tag in entry.definitions:
            definers[tag.name].add(entry.rel)
    edges: dict[tuple[str, str], float] = defaultdict(float)
    for entry in entries:
        for name, count in entry.references:
            for target in definers.get(name, ()):
                if target == entry.rel:
                    continue
                weight = math.sqrt(count)
                weight *= 10 if name in focus_names else 1
                weight *= 0.1 if name.startswith("_") or len(definers[name]) > 5 else 1
                edges[entry.rel, target] += weight
    out: dict[str, float] = defaultdict(float)
    for (source, _), weight in edges.items():
        out[source] += weight
    focus = [rel for rel in focus_files if rel in rels] or rels
    restart = {rel: (1 / len(focus) if rel in focus else 0.0) for rel in rels}
    rank = dict(restart)
    for _ in range(30):
        new = dict.fromkeys(rels, 0.0)
        for (source, target), weight in edges.items():
            new[target] += 0.85 * rank[source] * weight / out[source]
        lost = sum(rank[rel] for rel in rels if out[rel] == 0)
        for rel in rels:
            new[rel] += (0.85 * lost + 0.15) * restart[rel]
        rank = new
    total = sum(rank.values())
    return {rel: score / total for rel, score in rank.items()}


def test_matches_an_expanded_edge_pagerank(tmp_path: Path) -> None:
    rng = random.Random(7)
    pool = [f"name{i}" for i in range(25)] + ["_private", "_hidden"]
    sources = {}
    for i in range(30):
        defined = rng.sample(pool, 3)
        if i < 7:
            defined.append("common")  # defined in more than five files
        referenced = [rng.choice([*pool, "common", "missing"]) for _ in range(rng.randint(0, 12))]
        sources[f"m{i:02}.py"] = defs(*defined) + (calls(*referenced) if referenced else "")
    index = make_index(tmp_path, sources)
    entries = index.entries()
    for focus_files, focus_names in [
        ([], set()),
        (["m03.py"], set()),
        (["m03.py", "m11.py"], {"name4", "common"}),
    ]:
        expected = reference_rank(entries, focus_files, focus_names)
        ranked = rank_files(index, focus_files=focus_files, focus_names=focus_names)
        assert {r.rel for r in ranked} == set(expected)
        for r in ranked:
            assert math.isclose(r.score, expected[r.rel], rel_tol=1e-9, abs_tol=1e-12), r.rel
