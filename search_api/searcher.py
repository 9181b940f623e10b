"""Answer queries from one snapshot: dense (FAISS), lexical (FTS5 bm25) or hybrid (both,
fused by score with a query-adaptive weight)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from indexer.embed import Embedder
from indexer.errors import ModelMismatchError
from indexer.settings import DEFAULT_NO_MATCH_THRESHOLD
from indexer.store import ChunkFilter, IndexStore, Snapshot
from search_api.models import (
    Article,
    Explain,
    Filters,
    Highlight,
    Mode,
    Passage,
    SearchRequest,
    SearchResponse,
    SearchResult,
    Stats,
)
from search_api.ranking import collapse_by, convex_fusion, lexical_weight, query_terms

NO_MATCH_NOTE = "no passage matches this query well"
RESULT_COLUMNS = ("article_id", "title", "text", "source", "kind", "position", "start", "end")
MIN_CANDIDATES = 100


def _chunk_filter(filters: Filters) -> ChunkFilter:
    return ChunkFilter(
        sources=tuple(filters.source) if filters.source is not None else None,
        article_ids=tuple(filters.article_id) if filters.article_id is not None else None,
    )


class Searcher:
    """Searches one immutable snapshot. Thread-safe; cheap to replace on a new snapshot."""

    def __init__(
        self,
        snapshot: Snapshot,
        embedder: Embedder,
        no_match_threshold: float = DEFAULT_NO_MATCH_THRESHOLD,
    ) -> None:
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
        self._no_match_threshold = no_match_threshold

    @classmethod
    def open_live(
        cls,
        store: IndexStore,
        embedder: Embedder,
        no_match_threshold: float = DEFAULT_NO_MATCH_THRESHOLD,
    ) -> Searcher:
        snapshot = store.open_snapshot()
        try:
            return cls(snapshot, embedder, no_match_threshold)
        except ModelMismatchError:
            snapshot.close()
            raise

    def close(self) -> None:
        self.snapshot.close()

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

    def article(self, article_id: str) -> Article | None:
        """The article's headline, source and passages in reading order, or None."""
        chunks = self.snapshot.article(article_id)
        if not chunks:
            return None
        passages = [
            Passage(chunk_id=c.id, kind=c.kind, position=c.position, text=c.text,
                    start=c.start, end=c.end)
            for c in chunks
        ]  # fmt: skip
        first = chunks[0]
        return Article(
            article_id=article_id, title=first.title, source=first.source, passages=passages
        )

    def search(self, request: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        depth = max(MIN_CANDIDATES, 5 * (request.k + request.offset))
        chunk_filter = _chunk_filter(request.filters)
        lists = self._rank(request.query, request.mode, depth, chunk_filter)
        if request.min_score is None and not self._matches_well(request.query, lists, chunk_filter):
            return SearchResponse(
                query=request.query, mode=request.mode, snapshot=self.snapshot.id,
                took_ms=round((time.perf_counter() - started) * 1000, 3), note=NO_MATCH_NOTE,
                results=[],
            )  # fmt: skip
        # Rounded once here, so min_score compares the very scores the caller sees.
        ranked = [(row, round(score, 6)) for row, score in lists.fused]
        if request.min_score is not None:
            ranked = [(row, score) for row, score in ranked if score >= request.min_score]
        if request.collapse:
            ranked = collapse_by(ranked, self.snapshot.article_ids([row for row, _ in ranked]))
        ranked = ranked[request.offset : request.offset + request.k]
        chunks = self.snapshot.rows([row for row, _ in ranked])
        spans = (
            self.snapshot.highlight_spans(
                query_terms(request.query), {row: chunk.text for row, chunk in chunks.items()}
            )
            if request.highlight
            else {}
        )
        results = [
            SearchResult.model_validate(
                {
                    "rank": rank,
                    "score": score,
                    "chunk_id": chunks[row].id,
                    "highlights": [Highlight(start=s, end=e) for s, e in spans.get(row, [])],
                    "explain": lists.explain(row, score) if request.explain else None,
                    **{column: getattr(chunks[row], column) for column in RESULT_COLUMNS},
                }
            )
            for rank, (row, score) in enumerate(ranked, start=request.offset + 1)
        ]
        return SearchResponse(
            query=request.query,
            mode=request.mode,
            took_ms=round((time.perf_counter() - started) * 1000, 3),
            snapshot=self.snapshot.id,
            results=results,
        )

    def _matches_well(self, query: str, lists: _Lists, chunk_filter: ChunkFilter) -> bool:
        """Whether any passage is close enough in meaning to the query to be worth showing.

        Rank fusion cannot tell an off-topic query from a good one, so the decision rests on
        an absolute signal, the best passage's cosine, in every mode. An unfiltered dense list
        already starts with it; otherwise it takes one more nearest-neighbour search."""
        if self._no_match_threshold <= 0:
            return True
        if lists.dense and not chunk_filter.active:
            best = lists.dense[:1]
        else:
            best = self.snapshot.nearest(self._embedder.encode_query(query), 1)
        return bool(best) and best[0][1] >= self._no_match_threshold

    def _rank(self, query: str, mode: Mode, depth: int, chunk_filter: ChunkFilter) -> _Lists:
        if mode == "lexical":
            lexical = self.snapshot.lexical(query_terms(query), depth, chunk_filter)
            return _Lists(fused=lexical, lexical=lexical)
        allowed = self.snapshot.rows_passing(chunk_filter)
        vector = self._embedder.encode_query(query)
        dense = self.snapshot.nearest(vector, depth, allowed)
        if mode == "dense":
            return _Lists(fused=dense, dense=dense)
        terms = query_terms(query)
        lexical = self.snapshot.lexical(terms, depth, chunk_filter)
        cosines = dict(dense)
        # Passages only the lexical list found are scored exactly, so every candidate is fused
        # on the same two signals.
        cosines.update(
            self.snapshot.similarities(vector, [r for r, _ in lexical if r not in cosines])
        )
        fused = convex_fusion(cosines, lexical, lexical_weight(terms))
        return _Lists(fused=fused, dense=dense, lexical=lexical, cosines=cosines)


@dataclass
class _Lists:
    """The ranked list a search returns, and the single lists it came from (for explain)."""

    fused: list[tuple[int, float]]
    dense: list[tuple[int, float]] = field(default_factory=list)
    lexical: list[tuple[int, float]] = field(default_factory=list)
    cosines: dict[int, float] = field(default_factory=dict)  # hybrid: every candidate's cosine

    def explain(self, row: int, fused_score: float) -> Explain:
        dense = {r: (rank, score) for rank, (r, score) in enumerate(self.dense, start=1)}
        lexical = {r: (rank, score) for rank, (r, score) in enumerate(self.lexical, start=1)}
        dense_rank, dense_score = dense.get(row, (None, self.cosines.get(row)))
        lexical_rank, lexical_score = lexical.get(row, (None, None))
        return Explain(
            dense_score=_rounded(dense_score), dense_rank=dense_rank,
            lexical_score=_rounded(lexical_score), lexical_rank=lexical_rank,
            article_boost=0.0, fused_score=fused_score,
        )  # fmt: skip


def _rounded(score: float | None) -> float | None:
    return None if score is None else round(score, 6)
