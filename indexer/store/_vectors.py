"""``vectors.faiss``: one normalized vector per chunk row, searched by inner product.

Vector ids are chunk rows (0..n-1): every index type adds the vectors in row order.
Indexes are read memory-mapped (``IO_FLAG_MMAP_IFC`` maps the codes, graph and lists of every
type used here), so server processes opening the same snapshot share its pages.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.store._manifest import IndexType, VectorIndexSpec, ivf_lists

# Up to this many rows passing a filter are scored exactly rather than searched in the index.
EXACT_FILTER_LIMIT = 20_000
# k-means trains the inverted lists on this many vectors per list (FAISS wants at least 39);
# its cost grows with sample size times lists, so fewer keeps a 10M build within minutes.
TRAINING_PER_LIST = 32
TRAINING_SEED = 1234
# A filtered graph or list search widens its beam by the filter's selectivity, up to this.
FILTER_WIDENING_LIMIT = 64
# An approximate index (graph or lists) has no range search that finds every vector above a
# bar, so it is asked for this many nearest neighbours and the matches among them are kept;
# when all of them clear the bar, the matching set may go deeper (a lower bound).
APPROXIMATE_MATCH_DEPTH = 2_000


@dataclass(frozen=True)
class Within:
    """The rows within a bar of a query and their scores (unordered); ``exhaustive`` is False
    when a depth bound may have cut the set short."""

    rows: np.ndarray  # int64
    scores: np.ndarray  # float32
    exhaustive: bool


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One query gains nothing from OpenMP threads and, on a busy machine, loses several times
    its time waiting for them (flat over 50k rows: 3 ms on one thread, 20 ms on two). The
    setting belongs to the calling thread, so it is restored for whatever runs there next."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _spec(index: VectorIndexSpec | IndexType) -> VectorIndexSpec:
    spec = index if isinstance(index, VectorIndexSpec) else VectorIndexSpec(index)
    return spec.resolved()


def ivf_factory(spec: VectorIndexSpec, count: int) -> str:
    """The FAISS factory string an ``ivf`` spec builds for ``count`` vectors."""
    nlist = spec.int_param("nlist") or ivf_lists(count)
    refine = str(spec.param("refine"))
    # An HNSW graph over the list centroids assigns vectors to lists ~8x faster than a scan.
    codes = str(spec.param("codes"))
    if codes.startswith("PQ") and not codes.endswith("np"):
        # No polysemous training: it only serves Hamming-filtered search, which is never
        # used, and takes tens of seconds on every build (FAISS's "np" suffix skips it).
        codes += "np"
    ivf = f"IVF{nlist}_HNSW32,{codes}"
    return ivf + (f",Refine({refine})" if refine else "")


def build_index(vectors: np.ndarray, index: VectorIndexSpec | IndexType) -> Any:
    """A FAISS index over ``vectors`` (ids 0..n-1) as ``index`` describes."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count, dimension = vectors.shape
    built = empty_index(index, dimension, count)
    if not built.is_trained:
        size = training_size(built, count)
        rows = np.random.default_rng(TRAINING_SEED).choice(count, size, replace=False)
        built.train(vectors[np.sort(rows)])
    if count:
        built.add(vectors)
    return built


def empty_index(index: VectorIndexSpec | IndexType, dimension: int, count: int) -> Any:
    """An index for ``count`` vectors with nothing added yet (an ``ivf`` one still untrained),
    for builds that add their vectors in batches."""
    spec = _spec(index)
    if spec.type == "flat":
        return faiss.IndexFlatIP(dimension)
    if spec.type == "hnsw":
        graph = faiss.IndexHNSWFlat(dimension, spec.int_param("m"), faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = spec.int_param("ef_construction")
        return graph
    return faiss.index_factory(dimension, ivf_factory(spec, count), faiss.METRIC_INNER_PRODUCT)


def training_size(index: Any, count: int) -> int:
    """How many of ``count`` vectors an untrained ``index`` trains on."""
    nlist = int(faiss.extract_index_ivf(index).nlist)
    return min(count, max(nlist * TRAINING_PER_LIST, 10_000))


def write_vectors(path: Path, vectors: np.ndarray, index: VectorIndexSpec | IndexType) -> None:
    faiss.write_index(build_index(vectors, index), str(path))


class VectorIndex:
    """A snapshot's FAISS index, memory-mapped for search with the spec's search parameters."""

    def __init__(self, path: Path, index: VectorIndexSpec | IndexType) -> None:
        self.spec = _spec(index)
        # Snapshots are immutable, so a read-only mapping of the file is the index itself.
        self._index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        self._ivf: Any = None
        if self.spec.type == "hnsw":
            self._index.hnsw.efSearch = self.spec.int_param("ef_search")
        elif self.spec.type == "ivf":
            self._ivf = faiss.extract_index_ivf(self._index)
            self._ivf.nprobe = self.spec.int_param("nprobe")
            # The centroid graph must look at least as wide as the lists it is asked for.
            centroids = faiss.downcast_index(self._ivf.quantizer)
            centroids.hnsw.efSearch = max(64, 2 * self._ivf.nprobe)
            if isinstance(self._index, faiss.IndexRefine):
                self._index.k_factor = float(self.spec.param("k_factor"))
            else:
                # Exact scoring of filtered subsets reconstructs rows by id (8 bytes a row).
                self._ivf.make_direct_map()

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def nearest(
        self, vector: np.ndarray, depth: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``depth`` rows closest to ``vector`` (shape 1 x dimension), best first, among
        ``allowed`` rows when given."""
        depth = min(depth, len(self))
        if depth == 0 or (allowed is not None and not allowed):
            return []
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            # Score a filtered subset exactly: a graph or list search finds few of a small subset.
            ids = np.asarray(allowed, dtype=np.int64)
            scores = self._index.reconstruct_batch(ids) @ vector[0]
            best = np.argsort(-scores, kind="stable")[:depth]
            return [(int(ids[i]), float(scores[i])) for i in best]
        params = None if allowed is None else self._filtered(allowed, depth)
        with _one_thread():
            scores, ids = self._index.search(vector, depth, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def within(
        self, vector: np.ndarray, bar: float, allowed: Sequence[int] | None = None
    ) -> Within:
        """Every row (among ``allowed`` when given) whose inner product with ``vector`` is at
        least ``bar``: all of them from exact search, and from an approximate index those
        among its ``APPROXIMATE_MATCH_DEPTH`` nearest (not ``exhaustive`` when all of those
        clear the bar)."""
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            ids = np.asarray(allowed, dtype=np.int64)
            scores = self._index.reconstruct_batch(ids) @ vector[0] if len(ids) else ids * 0.0
            keep = scores >= bar
            return Within(ids[keep], scores[keep].astype(np.float32), exhaustive=True)
        params = None if allowed is None else self._filtered(allowed, APPROXIMATE_MATCH_DEPTH)
        with _one_thread():
            if self.spec.type == "flat":
                # FAISS keeps scores strictly above the radius; the bar itself matches.
                radius = float(np.nextafter(np.float32(bar), np.float32(-np.inf)))
                _, scores, ids = self._index.range_search(vector, radius, params=params)
                exhaustive = True
            else:
                depth = min(APPROXIMATE_MATCH_DEPTH, len(self))
                found, neighbours = self._index.search(vector, depth, params=params)
                scores, ids = found[0], neighbours[0]
                # The set is seen to end where the search reached below the bar (or every row);
                # if all it returned clear the bar, the depth or the lists visited cut it.
                returned = scores[ids >= 0]
                exhaustive = len(returned) == len(self) or bool(
                    len(returned) and returned[-1] < bar
                )
        keep = (ids >= 0) & (scores >= bar)
        return Within(ids[keep].astype(np.int64), scores[keep], exhaustive)

    def similarities(self, vector: np.ndarray, rows: Sequence[int]) -> dict[int, float]:
        """The inner product of ``vector`` with each row's stored vector."""
        if not rows:
            return {}
        ids = np.asarray(rows, dtype=np.int64)
        scores = self._index.reconstruct_batch(ids) @ vector[0]
        return {int(row): float(score) for row, score in zip(ids, scores, strict=True)}

    def _filtered(self, allowed: Sequence[int], depth: int) -> Any:
        """Search parameters keeping only ``allowed`` rows, with the beam (efSearch, nprobe)
        widened by the filter's selectivity so about as many allowed rows are visited as an
        unfiltered search visits rows."""
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        widening = min(FILTER_WIDENING_LIMIT, math.ceil(len(self) / len(allowed)))
        if self.spec.type == "hnsw":
            ef_search = max(self.spec.int_param("ef_search") * widening, 2 * depth)
            return faiss.SearchParametersHNSW(sel=selector, efSearch=ef_search)
        if self.spec.type == "flat":
            return faiss.SearchParameters(sel=selector)
        nprobe = min(self._ivf.nlist, self.spec.int_param("nprobe") * widening)
        lists = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        if not isinstance(self._index, faiss.IndexRefine):
            return lists
        # FAISS's Python layer keeps the selector and nested parameters alive with their owner.
        return faiss.IndexRefineSearchParameters(
            k_factor=float(self.spec.param("k_factor")), base_index_params=lists
        )
