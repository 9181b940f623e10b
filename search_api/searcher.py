"""Answer queries from one snapshot: dense (FAISS), lexical (FTS5 bm25) or hybrid (RRF)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import faiss
import numpy as np

from indexer.embed import Embedder
from indexer.snapshot import Snapshot
from search_api.models import (
    Filters,
    Highlight,
    Mode,
    SearchRequest,
    SearchResponse,
    SearchResult,
    Stats,
)
from search_api.ranking import (
    HIGHLIGHT_CLOSE,
    HIGHLIGHT_OPEN,
    collapse_by,
    fts_query,
    parse_highlighted,
    reciprocal_rank_fusion,
)

QUERY_CACHE_SIZE = 1024
RESULT_COLUMNS = ("article_id", "title", "text", "source", "kind", "position", "start", "end")
MIN_CANDIDATES = 100
# bm25 column weights (title, text): equal; see README for the weights measured.
BM25_WEIGHTS = "1.0, 1.0"


class ModelMismatchError(RuntimeError):
    """The snapshot was built with another model than the one this service loaded."""


class Searcher:
    """Searches one immutable snapshot. Thread-safe; cheap to replace on a new snapshot."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder) -> None:
        manifest = snapshot.manifest
        if manifest.model_fingerprint != embedder.fingerprint:
            raise ModelMismatchError(
                f"snapshot {snapshot.id} was built with model {manifest.model_name!r} "
                f"(fingerprint {manifest.model_fingerprint[:12]}), but this service loaded "
                f"{embedder.name!r} (fingerprint {embedder.fingerprint[:12]}); rebuild the index "
                "or configure the same model"
            )
        self.snapshot = snapshot
        self._embedder = embedder
        self._query_vector = lru_cache(maxsize=QUERY_CACHE_SIZE)(self._encode)

    @classmethod
    def open_live(cls, index_root: Path, embedder: Embedder) -> Searcher:
        return cls(Snapshot.open_live(index_root), embedder)

    def warm_up(self) -> None:
        """Load the model now rather than on the first query."""
        self._embedder.encode(["warm-up"])

    def stats(self) -> Stats:
        manifest = self.snapshot.manifest
        return Stats(
            snapshot=manifest.snapshot_id,
            built_at=manifest.built_at,
            model=manifest.model_name,
            dimension=manifest.dimension,
            index_type=manifest.index_type,
            files=len(manifest.files),
            articles=manifest.articles,
            chunks=manifest.chunks,
        )

    def search(self, request: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        allowed = self._allowed_rows(request.filters)
        depth = max(MIN_CANDIDATES, 5 * request.k)
        # Rounded once here, so min_score compares the very scores the caller sees.
        ranked = [
            (row, round(score, 6))
            for row, score in self._rank(request.query, request.mode, depth, allowed)
        ]
        if request.min_score is not None:
            ranked = [(row, score) for row, score in ranked if score >= request.min_score]
        if request.collapse:
            ranked = collapse_by(ranked, self._article_ids([row for row, _ in ranked]))
        ranked = ranked[: request.k]
        rows = self._rows([row for row, _ in ranked])
        marked = self._highlights(request.query, list(rows)) if request.highlight else {}
        results = [
            SearchResult.model_validate(
                {
                    "rank": rank,
                    "score": score,
                    "chunk_id": rows[row]["id"],
                    "highlights": marked.get(row, []),
                    **{column: rows[row][column] for column in RESULT_COLUMNS},
                }
            )
            for rank, (row, score) in enumerate(ranked, start=1)
        ]
        return SearchResponse(
            query=request.query,
            mode=request.mode,
            took_ms=round((time.perf_counter() - started) * 1000, 3),
            snapshot=self.snapshot.id,
            results=results,
        )

    def _rank(
        self, query: str, mode: Mode, depth: int, allowed: list[int] | None
    ) -> list[tuple[int, float]]:
        if mode == "dense":
            return self._dense(query, depth, allowed)
        if mode == "lexical":
            return self._lexical(query, depth, allowed)
        dense = [row for row, _ in self._dense(query, depth, allowed)]
        lexical = [row for row, _ in self._lexical(query, depth, allowed)]
        return reciprocal_rank_fusion([dense, lexical])

    def _encode(self, query: str) -> np.ndarray:
        vector = self._embedder.encode([query])
        vector.setflags(write=False)
        return vector

    def _dense(self, query: str, depth: int, allowed: list[int] | None) -> list[tuple[int, float]]:
        index = self.snapshot.index
        depth = min(depth, index.ntotal)
        if depth == 0 or allowed == []:
            return []
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            is_hnsw = self.snapshot.manifest.index_type == "hnsw"
            params = (
                faiss.SearchParametersHNSW(sel=selector)
                if is_hnsw
                else faiss.SearchParameters(sel=selector)
            )
        scores, ids = index.search(self._query_vector(query), depth, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _lexical(
        self, query: str, depth: int, allowed: list[int] | None
    ) -> list[tuple[int, float]]:
        match = fts_query(query)
        if match is None or allowed == []:
            return []
        restrict, parameters = _rows_restriction(allowed)
        found = self.snapshot.query(
            f"SELECT rowid, -bm25(chunks_fts, {BM25_WEIGHTS}) FROM chunks_fts"
            f" WHERE chunks_fts MATCH ? {restrict}"
            f" ORDER BY bm25(chunks_fts, {BM25_WEIGHTS}) LIMIT ?",
            [match, *parameters, depth],
        )
        return [(int(row), float(score)) for row, score in found]

    def _allowed_rows(self, filters: Filters) -> list[int] | None:
        """Row ids passing the filters, or None when there are no filters."""
        conditions, parameters = [], []
        for column, values in (("source", filters.source), ("article_id", filters.article_id)):
            if values is not None:
                conditions.append(f"{column} IN ({','.join('?' * len(values))})")
                parameters += values
        if not conditions:
            return None
        found = self.snapshot.query(
            f"SELECT row FROM chunks WHERE {' AND '.join(conditions)}", parameters
        )
        return [int(r[0]) for r in found]

    def _rows(self, rows: Sequence[int]) -> dict[int, sqlite3.Row]:
        found = self.snapshot.query(
            f"SELECT * FROM chunks WHERE row IN ({','.join('?' * len(rows))})", list(rows)
        )
        return {int(r["row"]): r for r in found}

    def _article_ids(self, rows: Sequence[int]) -> dict[int, str]:
        found = self.snapshot.query(
            f"SELECT row, article_id FROM chunks WHERE row IN ({','.join('?' * len(rows))})",
            list(rows),
        )
        return {int(row): str(article_id) for row, article_id in found}

    def _highlights(self, query: str, rows: list[int]) -> dict[int, list[Highlight]]:
        match = fts_query(query)
        if match is None or not rows:
            return {}
        found = self.snapshot.query(
            f"SELECT rowid, highlight(chunks_fts, 1, '{HIGHLIGHT_OPEN}', '{HIGHLIGHT_CLOSE}')"
            f" FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN ({','.join('?' * len(rows))})",
            [match, *rows],
        )
        return {int(row): parse_highlighted(marked)[1] for row, marked in found}


def _rows_restriction(allowed: list[int] | None) -> tuple[str, list[int]]:
    if allowed is None:
        return "", []
    return f"AND rowid IN ({','.join('?' * len(allowed))})", allowed
