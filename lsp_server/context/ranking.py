"""Which files matter for a request: a personalised PageRank over the reference graph.

As in aider's repository map: files are nodes; a file that references a name has an
edge to each other file that defines it, weighted by the square root of the reference
count, times 10 when the name is in focus, times 0.1 when it is private (`_x`) or common
(defined in more than `_COMMON_DEFINERS` files). The random walk restarts at the focus
files (uniformly when there are none). Each file's rank is then shared among its
definitions by the rank flowing into them, which orders its `names`.

The graph depends only on the index generation: `FileGraph` holds it as arrays, so a
change of focus costs one power iteration (about 20 ms for the 2,250 files of the
Python standard library), and `RankingCache` keeps the graph and recent results.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from lsp_server.context.index import FileEntry, WorkspaceIndex

_FOCUS_NAME_BOOST = 10.0
_MINOR_NAME_WEIGHT = 0.1
_COMMON_DEFINERS = 5
_TOLERANCE = 1e-10  # L1 change per iteration below which the walk has converged


@dataclass(frozen=True)
class RankedFile:
    rel: str
    score: float  # the file's share of the walk; all scores sum to 1
    names: tuple[str, ...]  # its definitions, most of the rank flowing into them first


class NameTable:
    """Name ids, and each file's defined and referenced names as id arrays.

    Cache: key the file's path; an entry is reused while the index holds the very same
    (immutable) `FileEntry` object for that path, and recomputed otherwise. Bound: one
    entry per indexed file (paths no longer indexed are dropped at each graph build);
    ids only grow, so the table starts afresh once it holds more than twice the names
    in use. Not thread-safe: one per `RankingCache`.
    """

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self._private = bytearray()  # [table id] 1 for `_name`
        self._name_array = np.zeros(0, dtype=object)
        self._files: dict[str, tuple[FileEntry, _FileNames]] = {}
        self._in_use = 0  # names the files held at the last call, counted per file

    def name_array(self) -> np.ndarray:
        """[table id] the names, as an object array (extended as names are added)."""
        if len(self._name_array) != len(self.names):
            added = np.array(self.names[len(self._name_array) :], dtype=object)
            self._name_array = np.concatenate((self._name_array, added))
        return self._name_array

    def private(self) -> np.ndarray:
        """[table id] whether the name is private (`_x`)."""
        return np.frombuffer(bytes(self._private), dtype=np.bool_)

    def arrays(self, entries: Sequence[FileEntry]) -> list[_FileNames]:
        """Each entry's names as ids, in the order of `entries`."""
        held = self._files
        if len(self.names) > 2 * self._in_use + 10_000:
            self.ids, self.names, self._private, held = {}, [], bytearray(), {}
            self._name_array = np.zeros(0, dtype=object)
        fresh: dict[str, tuple[FileEntry, _FileNames]] = {}
        for entry in entries:
            cached = held.get(entry.rel)
            if cached is None or cached[0] is not entry:
                cached = entry, self._names_of(entry)
            fresh[entry.rel] = cached
        self._files = fresh
        arrays = [names for _, names in fresh.values()]
        self._in_use = sum(len(a.defined) + len(a.referenced) for a in arrays)
        return arrays

    def _id(self, name: str) -> int:
        found = self.ids.get(name)
        if found is None:
            found = self.ids[name] = len(self.names)
            self.names.append(name)
            self._private.append(name.startswith("_"))
        return found

    def _names_of(self, entry: FileEntry) -> _FileNames:
        defined = dict.fromkeys(self._id(tag.name) for tag in entry.definitions)
        return _FileNames(
            defined=np.fromiter(defined, np.int64, len(defined)),
            referenced=np.fromiter(
                (self._id(name) for name, _ in entry.references), np.int64, len(entry.references)
            ),
            counts=np.fromiter(
                (count for _, count in entry.references), np.float64, len(entry.references)
            ),
        )


@dataclass(frozen=True)
class _FileNames:
    defined: np.ndarray  # [d] distinct defined names, in source order
    referenced: np.ndarray  # [r] referenced names
    counts: np.ndarray  # [r] how often each is referenced


class FileGraph:
    """The reference graph of one index generation, kept factored rather than expanded.

    Expanded, there would be an edge per (referencing file, name, other file defining
    it): 730k for the Python standard library, mostly the fan-out of common names. But
    an edge's weight depends only on the reference, so the walk runs over references
    (R) and definitions (P) instead: each name collects the rank its references send,
    and each definition of it receives that sum less what its own file sent. Only the
    "live" ones take part: references with an edge, definitions some other file uses.
    """

    def __init__(
        self, generation: int, entries: Sequence[FileEntry], names: NameTable | None = None
    ) -> None:
        self.generation = generation
        self.rels = [e.rel for e in entries]
        self._file_of = {rel: i for i, rel in enumerate(self.rels)}
        table = NameTable() if names is None else names
        arrays = table.arrays(entries)
        n = len(entries)
        empty = np.zeros(0, dtype=np.int64)

        def concat(parts: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
            return np.concatenate(parts).astype(dtype, copy=False) if parts else empty

        # Definition pairs (a file and a name it defines), file by file in source order.
        def_len = np.fromiter((len(a.defined) for a in arrays), np.int64, n)
        self._pair_file = np.repeat(np.arange(n), def_len)  # [P]
        pair_ids = concat([a.defined for a in arrays])  # [P] table ids
        ref_len = np.fromiter((len(a.referenced) for a in arrays), np.int64, n)
        ref_files = np.repeat(np.arange(n), ref_len)  # [R]
        ref_ids = concat([a.referenced for a in arrays])  # [R] table ids
        ref_count = concat([a.counts for a in arrays], np.float64)  # [R]

        # Number the defined names 0..V-1; references to names nobody defines go.
        self._name_ids = table.ids
        self._local = np.full(len(table.names), -1)  # table id -> [V] id, or -1
        defined = np.zeros(len(table.names), dtype=bool)
        defined[pair_ids] = True
        defined = np.flatnonzero(defined)  # table ids of the defined names, ascending
        self._local[defined] = np.arange(len(defined))
        n_names = len(defined)
        pairs = self._local[pair_ids]  # [P]
        refs = self._local[ref_ids]  # [R]
        known = refs >= 0
        refs, ref_files, ref_count = refs[known], ref_files[known], ref_count[known]
        self._pair_names = table.name_array()[pair_ids]  # [P] str

        definers = np.bincount(pairs, minlength=n_names)  # [V]
        minor = table.private()[defined] | (definers > _COMMON_DEFINERS)  # [V]
        weight = np.sqrt(ref_count) * np.where(minor[refs], _MINOR_NAME_WEIGHT, 1.0)  # [R]

        # Match each definition pair with its own file's reference to the name, if any:
        # that reference has no edge to its own file.
        pair_key = self._pair_file * n_names + pairs  # [P]
        ref_key = ref_files * n_names + refs  # [R]
        own_ref = np.full(len(pair_key), -1)  # [P] index into R, or -1
        if len(ref_key):
            by_key = np.argsort(ref_key)
            at = np.minimum(np.searchsorted(ref_key[by_key], pair_key), len(ref_key) - 1)
            found = ref_key[by_key[at]] == pair_key
            own_ref[found] = by_key[at[found]]
        self_defined = np.zeros(len(ref_key), dtype=np.int64)  # [R]
        self_defined[own_ref[own_ref >= 0]] = 1
        edges = definers[refs] - self_defined  # [R] edges per reference

        live = edges > 0  # [R]
        self._n_names = n_names
        self._ref_file = ref_files[live]  # [r]
        self._ref_name = refs[live]  # [r]
        self._ref_weight = weight[live]  # [r] before focus
        self._ref_edges = edges[live]  # [r]
        has_own = own_ref >= 0  # [P]
        has_own[has_own] = live[own_ref[has_own]]  # only a live reference sends rank
        own_live = np.full(len(own_ref), -1)  # [P] index into the live references, or -1
        own_live[has_own] = (np.cumsum(live) - 1)[own_ref[has_own]]
        senders = np.bincount(self._ref_name, minlength=n_names)  # [V] live references
        used = senders[pairs] - has_own > 0  # [P] some other file references it
        self._used = np.flatnonzero(used)  # [p] index into P
        self._used_file = self._pair_file[used]  # [p]
        self._used_name = pairs[used]  # [p]
        self._used_own_ref = own_live[used]  # [p]

    def _focus_ids(self, focus_names: Collection[str]) -> list[int]:
        ids = (self._name_ids.get(name, -1) for name in focus_names)
        local = (int(self._local[i]) for i in ids if 0 <= i < len(self._local))
        return [i for i in local if i >= 0]

    def rank(
        self,
        focus_files: Sequence[str] = (),
        focus_names: Collection[str] = (),
        damping: float = 0.85,
        iterations: int = 30,
    ) -> list[RankedFile]:
        """Every file with its score, best first (ties by path); see `rank_files`."""
        n = len(self.rels)
        if n == 0:
            return []
        n_names = self._n_names
        weight = self._ref_weight  # [r]
        focus_ids = self._focus_ids(focus_names)
        if focus_ids:
            boost = np.ones(n_names)
            boost[focus_ids] = _FOCUS_NAME_BOOST
            weight = weight * boost[self._ref_name]
        out = np.bincount(self._ref_file, weights=weight * self._ref_edges, minlength=n)  # [N]
        dangling = out == 0  # [N]
        inv_out = np.divide(1.0, out, out=np.zeros(n), where=~dangling)  # [N]
        has_own = self._used_own_ref >= 0
        own_weight = np.where(has_own, weight[np.maximum(self._used_own_ref, 0)], 0.0)  # [p]

        def inflow(rank: np.ndarray) -> np.ndarray:
            """[p] the rank flowing into each used definition."""
            per_weight = rank * inv_out  # [N]
            sent = np.bincount(
                self._ref_name, weights=per_weight[self._ref_file] * weight, minlength=n_names
            )  # [V]
            return sent[self._used_name] - per_weight[self._used_file] * own_weight

        restart = np.zeros(n)  # [N]
        focus = [self._file_of[rel] for rel in focus_files if rel in self._file_of]
        if focus:
            restart[focus] = 1.0
        else:
            restart[:] = 1.0
        restart /= restart.sum()

        rank = restart.copy()  # [N]
        for _ in range(iterations):
            flowing = np.bincount(self._used_file, weights=inflow(rank), minlength=n)
            # Dangling files (no outgoing edges) restart the walk like a teleport does.
            lost = rank[dangling].sum()
            new = damping * flowing + (damping * lost + 1.0 - damping) * restart
            converged = np.abs(new - rank).sum() < _TOLERANCE
            rank = new
            if converged:
                break
        rank /= rank.sum()

        # A file's names by the rank flowing into them; ties (names no other file uses
        # among them) in source order, as lexsort is stable.
        received = np.zeros(len(self._pair_names))  # [P]
        received[self._used] = np.maximum(inflow(rank), 0.0)
        order = np.lexsort((-received, self._pair_file))
        names = self._pair_names[order].tolist()
        bounds = np.searchsorted(self._pair_file[order], np.arange(n + 1)).tolist()

        ranked = np.lexsort((np.arange(n), -rank)).tolist()  # score desc, then rel asc
        scores = rank.tolist()
        return [
            RankedFile(self.rels[i], scores[i], tuple(names[bounds[i] : bounds[i + 1]]))
            for i in ranked
        ]


def rank_files(
    index: WorkspaceIndex,
    *,
    focus_files: Sequence[str] = (),
    focus_names: Collection[str] = (),
    damping: float = 0.85,
    iterations: int = 30,
) -> list[RankedFile]:
    """Every indexed file with its score, best first (ties by path). Builds the graph;
    `RankingCache.rank` reuses it across calls."""
    generation, entries = index.snapshot()
    return FileGraph(generation, entries).rank(focus_files, focus_names, damping, iterations)


_Key = tuple[int, tuple[str, ...], frozenset[str], float, int]


class RankingCache:
    """Recent rankings of one index, the graph of its latest generation, and the
    `NameTable` that makes a new generation's graph cheap (files unchanged since the
    last graph are not looked at again).

    Key: (index generation, focus files in order, focus names as a set, damping,
    iterations). Bound: `size` rankings, least recently used dropped first, and one
    graph. Invalidation: a new index generation replaces the graph and makes every held
    ranking unreachable (they are dropped as new ones arrive). Not thread-safe: use it
    from one thread (the index may be updated from another).
    """

    def __init__(self, size: int = 4) -> None:
        assert size > 0
        self._size = size
        self._names = NameTable()
        self._graph: FileGraph | None = None
        self._results: OrderedDict[_Key, list[RankedFile]] = OrderedDict()

    def rank(
        self,
        index: WorkspaceIndex,
        *,
        focus_files: Sequence[str] = (),
        focus_names: Collection[str] = (),
        damping: float = 0.85,
        iterations: int = 30,
    ) -> list[RankedFile]:
        """Like `rank_files`; the same list object while nothing changed."""
        key = (index.generation, tuple(focus_files), frozenset(focus_names), damping, iterations)
        held = self._results.get(key)
        if held is not None:
            self._results.move_to_end(key)
            return held
        graph = self._graph
        if graph is None or graph.generation != index.generation:
            generation, entries = index.snapshot()
            graph = self._graph = FileGraph(generation, entries, self._names)
            key = (generation, *key[1:])
        result = graph.rank(focus_files, focus_names, damping, iterations)
        self._results[key] = result
        while len(self._results) > self._size:
            self._results.popitem(last=False)
        return result
