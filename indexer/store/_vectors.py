"""``vectors.faiss``: one normalized vector per chunk row, searched by inner product."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from indexer.store._manifest import IndexType

HNSW_NEIGHBOURS = 32
HNSW_SEARCH_DEPTH = 128
# Up to this many rows passing a filter are scored exactly rather than searched in the index.
EXACT_FILTER_LIMIT = 20_000


def write_vectors(path: Path, vectors: np.ndarray, index_type: IndexType) -> None:
    dimension = int(vectors.shape[1])
    if index_type == "flat":
        index = faiss.IndexFlatIP(dimension)
    else:
        index = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(path))


class VectorIndex:
    """A snapshot's FAISS index, loaded for search."""

    def __init__(self, path: Path, index_type: IndexType) -> None:
        self._index = faiss.read_index(str(path))
        self._type = index_type
        if index_type == "hnsw":
            faiss.ParameterSpace().set_index_parameter(self._index, "efSearch", HNSW_SEARCH_DEPTH)

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
            # Score a filtered subset exactly: graph search (HNSW) finds few of a small subset.
            ids = np.asarray(allowed, dtype=np.int64)
            scores = self._index.reconstruct_batch(ids) @ vector[0]
            best = np.argsort(-scores, kind="stable")[:depth]
            return [(int(ids[i]), float(scores[i])) for i in best]
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if self._type == "hnsw":
                search_depth = max(HNSW_SEARCH_DEPTH, 2 * depth)
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=search_depth)
            else:
                params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(vector, depth, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
