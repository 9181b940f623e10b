"""Answer queries from one snapshot: dense (FAISS), lexical (FTS5 bm25) or hybrid (RRF)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from indexer.embed import Embedder
from indexer.snapshot import HNSW_SEARCH_DEPTH, Snapshot
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

# Up to this many rows passing a filter are scored exactly rather than searched in the index.
EXACT_FILTER_LIMIT = 20_000
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

    @classmethod
    def open_live(cls, index_root: Path, embedder: Embedder) -> Searcher:
        return cls(Snapshot.open_live(index_root), embedder)

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
        depth = max(MIN_CANDIDATES, 5 * request.k)
        # Rounded once here, so min_score compares the very scores the caller sees.
        ranked = [
            (row, round(score, 6))
            for row, score in self._rank(request.query, request.mode, depth, request.filters)
        ]
        if request.min_score is not None:
            ranked = [(row, score) for row, score in ranked if score >= request.min_score]
        if request.collapse:
            ranked = collapse_by(ranked, self._article_ids([row for row, _ in ranked]))
        ranked = ranked[: request.k]
        rows = self._rows([row for row, _ in ranked])
        texts = {row: str(found["text"]) for row, found in rows.items()}
        marked = self._highlights(request.query, texts) if request.highlight else {}
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
        self, query: str, mode: Mode, depth: int, filters: Filters
    ) -> list[tuple[int, float]]:
        if mode == "lexical":
            return self._lexical(query, depth, filters)
        dense = self._dense(query, depth, self._allowed_rows(filters))
        if mode == "dense":
            return dense
        lexical = self._lexical(query, depth, filters)
        return reciprocal_rank_fusion([[row for row, _ in dense], [row for row, _ in lexical]])

    def _dense(self, query: str, depth: int, allowed: list[int] | None) -> list[tuple[int, float]]:
        index = self.snapshot.index
        depth = min(depth, index.ntotal)
        if depth == 0 or allowed == []:
            return []
        vector = self._embedder.encode_query(query)
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            # Score a filtered subset exactly: graph search (HNSW) finds few of a small subset.
            ids = np.asarray(allowed, dtype=np.int64)
            scores = index.reconstruct_batch(ids) @ vector[0]
            best = np.argsort(-scores, kind="stable")[:depth]
            return [(int(ids[i]), float(scores[i])) for i in best]
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if self.snapshot.manifest.index_type == "hnsw":
                search_depth = max(HNSW_SEARCH_DEPTH, 2 * depth)
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=search_depth)
            else:
                params = faiss.SearchParameters(sel=selector)
        scores, ids = index.search(vector, depth, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _lexical(self, query: str, depth: int, filters: Filters) -> list[tuple[int, float]]:
        match = fts_query(query)
        if match is None:
            return []
        condition, parameters = _filter_condition(filters)
        found = self.snapshot.query(
            f"SELECT chunks_fts.rowid, -bm25(chunks_fts, {BM25_WEIGHTS}) FROM chunks_fts"
            " JOIN chunks ON chunks.row = chunks_fts.rowid"
            f" WHERE chunks_fts MATCH ? AND {condition}"
            f" ORDER BY bm25(chunks_fts, {BM25_WEIGHTS}) LIMIT ?",
            [match, *parameters, depth],
        )
        return [(int(row), float(score)) for row, score in found]

    def _allowed_rows(self, filters: Filters) -> list[int] | None:
        """Row ids passing the filters, or None when there are no filters."""
        if filters.source is None and filters.article_id is None:
            return None
        condition, parameters = _filter_condition(filters)
        found = self.snapshot.query(f"SELECT row FROM chunks WHERE {condition}", parameters)
        return [int(r[0]) for r in found]

    def _rows(self, rows: Sequence[int], columns: str = "*") -> dict[int, sqlite3.Row]:
        """Chunk rows by row id (``columns`` must include ``row``)."""
        found = self.snapshot.query(
            f"SELECT {columns} FROM chunks WHERE row IN ({','.join('?' * len(rows))})", list(rows)
        )
        return {int(r["row"]): r for r in found}

    def _article_ids(self, rows: Sequence[int]) -> dict[int, str]:
        return {row: str(r["article_id"]) for row, r in self._rows(rows, "row, article_id").items()}

    def _highlights(self, query: str, texts: dict[int, str]) -> dict[int, list[Highlight]]:
        """Offsets of the query's words (as FTS5 stems them) in each row's text."""
        rows = list(texts)
        match = fts_query(query)
        if match is None or not rows:
            return {}
        found = self.snapshot.query(
            f"SELECT rowid, highlight(chunks_fts, 1, '{HIGHLIGHT_OPEN}', '{HIGHLIGHT_CLOSE}')"
            f" FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN ({','.join('?' * len(rows))})",
            [match, *rows],
        )
        highlights = {}
        for row, marked in found:
            text, spans = parse_highlighted(marked)
            # A passage containing the marker characters itself would shift the offsets.
            if text == texts.get(int(row)):
                highlights[int(row)] = spans
        return highlights


def _filter_condition(filters: Filters) -> tuple[str, list[str]]:
    """An SQL condition on the chunks table for the filters (TRUE when there are none)."""
    conditions, parameters = ["1"], []
    for column, values in (("source", filters.source), ("article_id", filters.article_id)):
        if values is not None:
            conditions.append(f"chunks.{column} IN ({','.join('?' * len(values))})")
            parameters += values
    return " AND ".join(conditions), parameters
