"""Answer queries from one snapshot: dense (FAISS), lexical (FTS5 bm25) or hybrid (both,
fused by score with a query-adaptive weight)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from indexer.chunk import Chunk
from indexer.embed import QueryEncoder
from indexer.errors import ModelMismatchError
from indexer.parse import Span
from indexer.settings import DEFAULT_NO_MATCH_THRESHOLD
from indexer.store import ChunkFilter, IndexStore, Snapshot
from search_api.models import (
    Article,
    Evidence,
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
from search_api.ranking import (
    article_boosts,
    article_weight,
    best_sentences,
    collapse_by,
    convex_fusion,
    lexical_weight,
    query_terms,
)

NO_MATCH_NOTE = "no passage matches this query well"
RESULT_COLUMNS = (
    "article_id", "title", "text", "source", "kind", "position", "start", "end", "published"
)  # fmt: skip
MIN_CANDIDATES = 100


def _chunk_filter(filters: Filters) -> ChunkFilter:
    return ChunkFilter(
        sources=tuple(filters.source) if filters.source is not None else None,
        article_ids=tuple(filters.article_id) if filters.article_id is not None else None,
        published_from=filters.date_from.isoformat() if filters.date_from else None,
        published_to=filters.date_to.isoformat() if filters.date_to else None,
    )


class Searcher:
    """Searches one immutable snapshot. Thread-safe; cheap to replace on a new snapshot."""

    def __init__(
        self,
        snapshot: Snapshot,
        embedder: QueryEncoder,
        no_match_threshold: float = DEFAULT_NO_MATCH_THRESHOLD,
        time_limit_seconds: float | None = None,
    ) -> None:
        """Use ``Searcher.open``, which also closes the snapshot should this refuse it."""
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
        self._time_limit = time_limit_seconds or None

    @classmethod
    def open(
        cls,
        store: IndexStore,
        encoder: QueryEncoder,
        snapshot_id: str | None = None,
        *,
        no_match_threshold: float = DEFAULT_NO_MATCH_THRESHOLD,
        time_limit: float | None = None,
    ) -> Searcher:
        """The one way to open a Searcher: over ``snapshot_id`` (the live one by default),
        encoding queries with ``encoder``; ``time_limit`` seconds per search (None or 0: no
        limit). The snapshot is closed again if anything here fails."""
        snapshot = store.open_snapshot(snapshot_id)
        try:
            return cls(snapshot, encoder, no_match_threshold, time_limit)
        except BaseException:
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
            article_id=article_id, title=first.title, source=first.source,
            published=first.published, passages=passages,
        )  # fmt: skip

    def search(self, request: SearchRequest) -> SearchResponse:
        """Answer a request; ``QueryTimeoutError`` when it runs past the time limit."""
        inverted = request.filters.inverted_dates()
        if inverted is not None:
            return self._empty(request, inverted)
        with self.snapshot.time_limit(self._time_limit):
            return self._search(request)

    def _empty(self, request: SearchRequest, note: str) -> SearchResponse:
        return SearchResponse(
            query=request.query, mode=request.mode, took_ms=0.0, snapshot=self.snapshot.id,
            note=note, results=[],
        )  # fmt: skip

    def _search(self, request: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        depth = max(MIN_CANDIDATES, 5 * (request.k + request.offset))
        chunk_filter = _chunk_filter(request.filters)
        # Every mode needs the query's vector: for "no good match" and for evidence sentences.
        vector = self._embedder.encode_query(request.query)
        self.snapshot.check_time()  # encoding may have waited behind a burst
        lists = self._rank(request.query, vector, request.mode, depth, chunk_filter)
        self.snapshot.check_time()
        note = None
        if request.min_score is None and not self._matches_well(vector, lists, chunk_filter):
            note, lists.fused = NO_MATCH_NOTE, []
        # Rounded once here, so min_score compares the very scores the caller sees.
        ranked = [(row, round(score, 6)) for row, score in lists.fused]
        if request.min_score is not None:
            ranked = [(row, score) for row, score in ranked if score >= request.min_score]
        groups = (
            self.snapshot.duplicate_groups([row for row, _ in ranked]) if request.dedupe else {}
        )
        if request.dedupe:
            ranked = collapse_by(ranked, {row: groups.get(row, -1 - row) for row, _ in ranked})
        if request.collapse:
            ranked = collapse_by(ranked, self.snapshot.article_ids([row for row, _ in ranked]))
        ranked = ranked[request.offset : request.offset + request.k]
        shown = [row for row, _ in ranked]
        chunks = self.snapshot.rows(shown)
        spans = (
            self.snapshot.highlight_spans(
                query_terms(request.query), {row: chunks[row].text for row in shown}
            )
            if request.highlight
            else {}
        )
        evidence = self._evidence(vector, chunks)
        duplicates = self._duplicates(
            {row: groups[row] for row in shown if row in groups}, chunk_filter
        )
        results = [
            SearchResult.model_validate(
                {
                    "rank": rank,
                    "score": score,
                    "chunk_id": chunks[row].id,
                    "highlights": [Highlight(start=s, end=e) for s, e in spans.get(row, [])],
                    "evidence": [Evidence(start=s, end=e) for s, e in evidence[row]],
                    "duplicates": len(duplicates.get(row, [])),
                    "duplicate_sources": sorted({source for source in duplicates.get(row, [])}),
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
            note=note,
            results=results,
        )

    def _evidence(self, vector: np.ndarray, chunks: dict[int, Chunk]) -> dict[int, list[Span]]:
        """Each row's best-answering sentence (or two); a one-sentence passage is its own."""
        scored = self.snapshot.sentence_scores(vector, list(chunks))
        return {
            row: best_sentences(scored[row]) if row in scored else [Span(0, len(chunk.text))]
            for row, chunk in chunks.items()
        }

    def _duplicates(
        self, groups: dict[int, int], chunk_filter: ChunkFilter
    ) -> dict[int, list[str]]:
        """The sources of each shown row's hidden duplicates that pass the filter."""
        members = self.snapshot.group_members(sorted(set(groups.values())), chunk_filter)
        return {
            row: [source for member, source in members.get(group, []) if member != row]
            for row, group in groups.items()
        }

    def _matches_well(self, vector: np.ndarray, lists: _Lists, chunk_filter: ChunkFilter) -> bool:
        """Whether any passage is close enough in meaning to the query to be worth showing.

        Rank fusion cannot tell an off-topic query from a good one, so the decision rests on
        an absolute signal, the best passage's cosine, in every mode. An unfiltered dense list
        already starts with it; otherwise it takes one more nearest-neighbour search."""
        if self._no_match_threshold <= 0:
            return True
        if lists.dense and not chunk_filter.active:
            best = lists.dense[:1]
        else:
            best = self.snapshot.nearest(vector, 1)
        return bool(best) and best[0][1] >= self._no_match_threshold

    def _rank(
        self, query: str, vector: np.ndarray, mode: Mode, depth: int, chunk_filter: ChunkFilter
    ) -> _Lists:
        if mode == "lexical":
            lexical = self.snapshot.lexical(query_terms(query), depth, chunk_filter)
            return _Lists(fused=lexical, lexical=lexical)
        allowed = self.snapshot.rows_passing(chunk_filter)
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
        boosts = self._article_boosts(lexical, cosines, article_weight(terms))
        fused = convex_fusion(cosines, lexical, lexical_weight(terms), boosts)
        return _Lists(fused, dense, lexical, cosines, boosts)

    def _article_boosts(
        self, lexical: list[tuple[int, float]], cosines: dict[int, float], weight: float
    ) -> dict[int, float]:
        if weight <= 0 or not lexical:
            return {}
        article_of = self.snapshot.article_ids(list(cosines))
        return article_boosts(lexical, article_of, cosines, weight)


@dataclass
class _Lists:
    """The ranked list a search returns, and the single lists it came from (for explain)."""

    fused: list[tuple[int, float]]
    dense: list[tuple[int, float]] = field(default_factory=list)
    lexical: list[tuple[int, float]] = field(default_factory=list)
    cosines: dict[int, float] = field(default_factory=dict)  # hybrid: every candidate's cosine
    boosts: dict[int, float] = field(default_factory=dict)  # hybrid: article boost by row

    def explain(self, row: int, fused_score: float) -> Explain:
        dense = {r: (rank, score) for rank, (r, score) in enumerate(self.dense, start=1)}
        lexical = {r: (rank, score) for rank, (r, score) in enumerate(self.lexical, start=1)}
        dense_rank, dense_score = dense.get(row, (None, self.cosines.get(row)))
        lexical_rank, lexical_score = lexical.get(row, (None, None))
        return Explain(
            dense_score=_rounded(dense_score), dense_rank=dense_rank,
            lexical_score=_rounded(lexical_score), lexical_rank=lexical_rank,
            article_boost=round(self.boosts.get(row, 0.0), 6), fused_score=fused_score,
        )  # fmt: skip


def _rounded(score: float | None) -> float | None:
    return None if score is None else round(score, 6)
