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
from indexer.store import UNDATED, ChunkFilter, IndexStore, Snapshot, Within
from search_api.matching import (
    DEFAULT_RULES,
    Facet,
    MatchRules,
    date_order,
    facet_counts,
    first_of_each,
    recency_factors,
    recency_order,
    reference_day,
)
from search_api.models import (
    Article,
    Evidence,
    Explain,
    FacetValue,
    Filters,
    Highlight,
    Passage,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SimilarArticle,
    SimilarArticles,
    Stats,
)
from search_api.ranking import (
    ParsedQuery,
    article_weight,
    best_sentences,
    convex_fusion,
    lexical_weight,
    parse_query,
    query_terms,
)
from search_api.timing import StageTimes

NO_MATCH_NOTE = "no passage matches this query well"
# Hybrid search adds the words' signal from this many best lexical matches: a fixed depth,
# so every page of a query ranks its matching set the same way.
LEXICAL_DEPTH = 500
# Lexical mode matches passages holding a query word among this many best by bm25; past it,
# the count is a lower bound.
LEXICAL_MATCH_DEPTH = 2_000


def _chunk_filter(filters: Filters, query: ParsedQuery) -> ChunkFilter:
    """The request's filters and its query's phrases and exclusions, as one condition."""
    return ChunkFilter(
        sources=tuple(filters.source) if filters.source is not None else None,
        article_ids=tuple(filters.article_id) if filters.article_id is not None else None,
        published_from=filters.date_from.isoformat() if filters.date_from else None,
        published_to=filters.date_to.isoformat() if filters.date_to else None,
        phrases=query.phrases,
        excluded=query.excluded,
    )


class Searcher:
    """Searches one immutable snapshot. Thread-safe; cheap to replace on a new snapshot."""

    def __init__(
        self,
        snapshot: Snapshot,
        embedder: QueryEncoder,
        rules: MatchRules = DEFAULT_RULES,
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
        self._rules = rules
        self._time_limit = time_limit_seconds or None

    @classmethod
    def open(
        cls,
        store: IndexStore,
        encoder: QueryEncoder,
        snapshot_id: str | None = None,
        *,
        rules: MatchRules = DEFAULT_RULES,
        time_limit: float | None = None,
    ) -> Searcher:
        """The one way to open a Searcher: over ``snapshot_id`` (the live one by default),
        encoding queries with ``encoder``, matching by ``rules``; ``time_limit`` seconds per
        search (None or 0: no limit). The snapshot is closed again if anything here fails."""
        snapshot = store.open_snapshot(snapshot_id)
        try:
            return cls(snapshot, encoder, rules, time_limit)
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

    def similar(self, article_id: str, k: int) -> SimilarArticles | None:
        """The ``k`` articles closest to this one by article vector, best first, then every
        duplicate of it (not counted in ``k``); None when there is no such article."""
        columns = self.snapshot.columns
        code = columns.article_code(article_id)
        if code is None:
            return None
        vector = self.snapshot.article_vector(code)
        duplicates = [int(d) for d in columns.duplicate_articles(code)]
        skip = {code, *duplicates}
        found = self.snapshot.nearest_articles(vector, k + len(skip))
        closest = [(a, score) for a, score in found if a not in skip][:k]
        closest += [(d, float(self.snapshot.article_vector(d)[0] @ vector[0])) for d in duplicates]
        ties = {a: self._closest_passage(vector, a) for a, _ in closest}
        chunks = self.snapshot.rows(list(ties.values()))
        articles = []
        for a, score in closest:
            tie = chunks[ties[a]]
            similar = SimilarArticle(
                article_id=columns.article_ids[a], title=tie.title, source=tie.source,
                published=tie.published, score=round(score, 6), duplicate=a in skip,
                chunk_id=tie.id, text=tie.text,
            )  # fmt: skip
            articles.append(similar)
        return SimilarArticles(article_id=article_id, articles=articles)

    def _closest_passage(self, vector: np.ndarray, article: int) -> int:
        """The row of ``article`` whose passage vector is closest to ``vector``."""
        rows: list[int] = self.snapshot.columns.article_rows(article).tolist()
        cosines = self.snapshot.similarities(vector, rows)
        return max(rows, key=lambda row: (cosines[row], -row))

    def search(self, request: SearchRequest, times: StageTimes | None = None) -> SearchResponse:
        """Answer a request, adding each stage's time to ``times`` when given;
        ``QueryTimeoutError`` when it runs past the time limit."""
        inverted = request.filters.inverted_dates()
        if inverted is not None:
            return self._empty(request, inverted)
        with self.snapshot.time_limit(self._time_limit):
            return self._search(request, times or StageTimes())

    def _empty(self, request: SearchRequest, note: str) -> SearchResponse:
        return SearchResponse(
            query=request.query, mode=request.mode, took_ms=0.0, snapshot=self.snapshot.id,
            note=note, total=0, total_articles=0, total_is_lower_bound=False,
            facets={facet: [] for facet in request.facets} if request.facets else None,
            results=[],
        )  # fmt: skip

    def _search(self, request: SearchRequest, times: StageTimes) -> SearchResponse:
        started = time.perf_counter()
        query = parse_query(request.query)
        chunk_filter = _chunk_filter(request.filters, query)
        terms = query_terms(query.text)
        with times.stage("encode"):
            # Every mode needs the query's vector: for the matching bar and for evidence.
            vector = self._embedder.encode_query(query.text)
        self.snapshot.check_time()  # encoding may have waited behind a burst
        with times.stage("dense"):
            allowed = self.snapshot.rows_passing(chunk_filter)
        matches = self._match(request, vector, terms, chunk_filter, allowed, times)
        self.snapshot.check_time()
        with times.stage("fuse"):
            page = self._page(request, matches)
        with times.stage("fetch"):
            chunks = self.snapshot.highlighted_rows(page.rows, terms if request.highlight else [])
            duplicates = self._duplicates(page.rows, allowed) if request.dedupe else {}
        with times.stage("evidence"):
            evidence = self._evidence(vector, {row: chunk for row, (chunk, _) in chunks.items()})
            # Lexical mode ranks by no cosine; explain still reports the shown passages' own.
            lexical_cosines = (
                self.snapshot.similarities(vector, page.rows)
                if request.explain and matches.cosines is None
                else {}
            )
        with times.stage("serialize"):
            ranked = zip(page.rows, page.scores, page.factors, strict=True)
            results = [
                _result(
                    rank,
                    score,
                    *chunks[row],
                    evidence[row],
                    duplicates.get(row, []),
                    matches.explain(row, score, factor, lexical_cosines.get(row))
                    if request.explain
                    else None,
                )
                for rank, (row, score, factor) in enumerate(ranked, start=request.offset + 1)
            ]
            return SearchResponse.model_construct(
                query=request.query, mode=request.mode,
                took_ms=round((time.perf_counter() - started) * 1000, 3),
                snapshot=self.snapshot.id, note=None if page.total else NO_MATCH_NOTE,
                total=page.total, total_articles=page.total_articles,
                total_is_lower_bound=not matches.exhaustive, facets=page.facets, results=results,
            )  # fmt: skip

    def _page(self, request: SearchRequest, matches: _Matches) -> _Page:
        """The results in the order asked, counted and faceted; the rows of the page shown."""
        columns = self.snapshot.columns
        rows, scores = self._representatives(request, matches)
        factors = self._recency(request, matches, rows)
        order = self._order(request, rows, scores, factors)
        rows, scores = rows[order], scores[order]
        shown = slice(request.offset, request.offset + request.k)
        shown_rows = [int(row) for row in rows[shown]]
        # Undated passages get no recency factor (they are ranked as if it were 1).
        shown_factors: list[float | None] = (
            [None] * len(shown_rows)
            if factors is None
            else [
                None if columns.day[row] == UNDATED else float(factor)
                for row, factor in zip(shown_rows, factors[order][shown], strict=True)
            ]
        )
        facets = (
            {facet: _facet_values(facet_counts(facet, rows, columns)) for facet in request.facets}
            if request.facets
            else None
        )
        return _Page(
            shown_rows, [float(score) for score in scores[shown]], shown_factors, len(rows),
            len(np.unique(columns.article[rows])), facets,
        )  # fmt: skip

    def _representatives(
        self, request: SearchRequest, matches: _Matches
    ) -> tuple[np.ndarray, np.ndarray]:
        """The results in relevance order: each near-duplicate group's (with ``dedupe``) and
        each article's (with ``collapse``) most relevant passage, whatever the sort."""
        rows, scores = matches.rows, matches.scores
        columns = self.snapshot.columns
        for wanted, keys in ((request.dedupe, columns.group), (request.collapse, columns.article)):
            if wanted and len(rows):
                kept = first_of_each(np.arange(len(rows)), keys[rows])
                rows, scores = rows[kept], scores[kept]
        return rows, scores

    def _recency(
        self, request: SearchRequest, matches: _Matches, rows: np.ndarray
    ) -> np.ndarray | None:
        """Each result's recency factor, when the request asks for a recency preference."""
        half_life = request.recency_half_life_days
        if half_life is None:
            return None
        days = self.snapshot.columns.day
        date_to = request.filters.date_to.toordinal() if request.filters.date_to else None
        reference = reference_day(days[matches.rows], date_to)
        if reference is None:
            return np.ones(len(rows))
        return recency_factors(days[rows], reference, half_life, self._rules.recency_weight)

    def _order(
        self,
        request: SearchRequest,
        rows: np.ndarray,
        scores: np.ndarray,
        factors: np.ndarray | None,
    ) -> np.ndarray:
        """Positions of the relevance-ordered results in the order the request asks for."""
        if request.sort == "date":
            return date_order(self.snapshot.columns.day[rows])
        if factors is not None:
            return recency_order(scores, factors)
        return np.arange(len(rows))

    def _evidence(self, vector: np.ndarray, chunks: dict[int, Chunk]) -> dict[int, list[Span]]:
        """Each row's best-answering sentence (or two); a one-sentence passage is its own."""
        scored = self.snapshot.sentence_scores(vector, list(chunks))
        return {
            row: best_sentences(scored[row]) if row in scored else [Span(0, len(chunk.text))]
            for row, chunk in chunks.items()
        }

    def _duplicates(self, rows: list[int], allowed: list[int] | None) -> dict[int, list[str]]:
        """The sources of each shown row's hidden duplicates among the ``allowed`` rows (None:
        all)."""
        groups = {row: int(self.snapshot.columns.group[row]) for row in rows}
        members = self.snapshot.group_members(
            sorted(set(groups.values())), None if allowed is None else np.asarray(allowed)
        )
        return {
            row: [source for member, source in members.get(group, []) if member != row]
            for row, group in groups.items()
        }

    def _match(
        self,
        request: SearchRequest,
        vector: np.ndarray,
        terms: list[str],
        chunk_filter: ChunkFilter,
        allowed: list[int] | None,
        times: StageTimes,
    ) -> _Matches:
        """Every passage matching the request, most relevant first.

        When the query has a good match in the archive (its best passage's cosine clears
        the "no good match" threshold), a passage passing the filters matches when its cosine
        clears the bar, or, in hybrid mode, when it is among the best lexical matches and its
        fused score clears the words' bar (a passage holding the query's words strongly
        matches with a lower cosine). Lexical mode matches every passage holding a query
        word. An explicit ``min_score`` replaces the check and both bars with one bar on the
        score the results show. ``terms``: the query's words for bm25; its phrases and
        exclusions are conditions of ``chunk_filter``, ``allowed`` the rows passing it (None:
        every row)."""
        gated = request.min_score is None
        if request.mode == "lexical":
            with times.stage("dense"):
                if gated and not self._has_match(vector, chunk_filter):
                    return _Matches.empty()
            with times.stage("lexical"):
                lexical = self.snapshot.lexical(terms, LEXICAL_MATCH_DEPTH, chunk_filter)
            return _Matches.ranked(
                lexical, len(lexical) < LEXICAL_MATCH_DEPTH, request.min_score, lexical
            )
        bar = self._rules.match_threshold if request.min_score is None else request.min_score
        with times.stage("dense"):
            within = self.snapshot.within(vector, bar, allowed)
            if gated and not self._has_match(vector, chunk_filter, within):
                return _Matches.empty()
        if request.mode == "dense":
            order = np.lexsort((within.rows, -within.scores))
            rows, cosines = within.rows[order], within.scores[order].astype(np.float64)
            return _Matches.of(rows, cosines, within.exhaustive, bar, cosines)
        with times.stage("lexical"):
            lexical = self.snapshot.lexical(terms, LEXICAL_DEPTH, chunk_filter)
        with times.stage("fuse"):
            return self._fused(request, vector, terms, within, lexical, bar)

    def _fused(
        self,
        request: SearchRequest,
        vector: np.ndarray,
        terms: list[str],
        within: Within,
        lexical: list[tuple[int, float]],
        bar: float,
    ) -> _Matches:
        """Hybrid mode's matching set: the rows ``within`` the bar and the best word matches,
        scored by fusion, kept when close in meaning or strong in words."""
        extra = np.setdiff1d(np.asarray([row for row, _ in lexical], dtype=np.int64), within.rows)
        extra_cosines = self.snapshot.similarities(vector, extra.tolist())
        fused = convex_fusion(
            np.concatenate([within.rows, extra]),
            np.concatenate([within.scores, [extra_cosines[int(r)] for r in extra]]).astype(
                np.float64
            ),
            lexical, lexical_weight(terms), self.snapshot.columns.article, article_weight(terms),
        )  # fmt: skip
        # Close in meaning, or one of the best word matches scoring at least the words' bar.
        # The list's depth is part of that definition, so it never makes the count a bound.
        words_bar = self._rules.word_match_threshold if request.min_score is None else bar
        keep = (fused.cosines >= bar) | (np.round(fused.scores, 6) >= words_bar)
        return _Matches.of(fused.rows, fused.scores, within.exhaustive, None, fused.cosines,
                           lexical, fused.article_boosts, keep)  # fmt: skip

    def _has_match(
        self, vector: np.ndarray, chunk_filter: ChunkFilter, within: Within | None = None
    ) -> bool:
        """Whether the query has a good match in the archive: its best passage's cosine
        clears the "no good match" threshold. Rank fusion cannot tell an off-topic query from
        a good one, so this rests on an absolute signal, the best cosine, in every mode.

        Filters play no part: they narrow a query that has matches, and a facet's count then
        holds when its value is chosen as a filter. The unfiltered rows within the bar
        already hold the best one when the bar is no higher than the threshold."""
        threshold = self._rules.no_match_threshold
        if threshold <= 0:
            return True
        if within is not None and not chunk_filter.active:
            if len(within.scores) and float(within.scores.max()) >= threshold:
                return True
            if self._rules.match_threshold <= threshold:
                return False
        best = self.snapshot.nearest(vector, 1)
        return bool(best) and best[0][1] >= threshold


@dataclass(frozen=True)
class _Matches:
    """The matching passages in relevance order with their scores (rounded once, so the bar
    and ``min_score`` compare the very scores the caller sees), and what explain reports."""

    rows: np.ndarray  # int64
    scores: np.ndarray  # float64
    exhaustive: bool
    cosines: np.ndarray | None = None  # aligned with rows; None in lexical mode
    lexical: list[tuple[int, float]] = field(default_factory=list)
    article_boosts: np.ndarray | None = None  # aligned with rows; hybrid only

    @classmethod
    def of(
        cls,
        rows: np.ndarray,
        scores: np.ndarray,
        exhaustive: bool,
        bar: float | None,
        cosines: np.ndarray | None = None,
        lexical: list[tuple[int, float]] | None = None,
        article_boosts: np.ndarray | None = None,
        keep: np.ndarray | None = None,
    ) -> _Matches:
        """Those of ``rows`` (in relevance order) that ``keep`` marks, or whose rounded score
        is at least ``bar`` (None: all)."""
        rounded = np.round(scores, 6)
        if keep is None:
            keep = rounded >= bar if bar is not None else np.ones(len(rows), dtype=bool)
        return cls(
            rows[keep], rounded[keep], exhaustive,
            cosines[keep] if cosines is not None else None, lexical or [],
            article_boosts[keep] if article_boosts is not None else None,
        )  # fmt: skip

    @classmethod
    def ranked(
        cls,
        ranked: list[tuple[int, float]],
        exhaustive: bool,
        bar: float | None,
        lexical: list[tuple[int, float]],
    ) -> _Matches:
        rows = np.asarray([row for row, _ in ranked], dtype=np.int64)
        return cls.of(rows, np.asarray([score for _, score in ranked]), exhaustive, bar,
                      lexical=lexical)  # fmt: skip

    @classmethod
    def empty(cls) -> _Matches:
        return cls.ranked([], True, None, [])

    def explain(
        self, row: int, score: float, recency_factor: float | None, cosine: float | None
    ) -> Explain:
        """``cosine``: the row's, where this mode ranked by none (lexical)."""
        at = int(np.flatnonzero(self.rows == row)[0])
        dense_rank = None
        if self.cosines is not None:
            cosine = float(self.cosines[at])
            dense_rank = 1 + int(np.sum(self.cosines > cosine))
            dense_rank += int(np.sum((self.cosines == cosine) & (self.rows < row)))
        lexical = {r: (rank, s) for rank, (r, s) in enumerate(self.lexical, start=1)}
        lexical_rank, lexical_score = lexical.get(row, (None, None))
        boost = float(self.article_boosts[at]) if self.article_boosts is not None else 0.0
        return Explain(
            dense_score=_rounded(cosine), dense_rank=dense_rank,
            lexical_score=_rounded(lexical_score), lexical_rank=lexical_rank,
            article_boost=round(boost, 6), fused_score=score,
            recency_factor=None if recency_factor is None else round(recency_factor, 6),
        )  # fmt: skip


def _facet_values(counts: list[tuple[str, int]]) -> list[FacetValue]:
    return [FacetValue(value=value, count=count) for value, count in counts]


def _rounded(score: float | None) -> float | None:
    return None if score is None else round(score, 6)


@dataclass(frozen=True)
class _Page:
    """The page of results a request shows, and what it reports of the whole matching set."""

    rows: list[int]
    scores: list[float]
    factors: list[float | None]  # recency factors; None for undated rows or no preference
    total: int
    total_articles: int
    facets: dict[Facet, list[FacetValue]] | None


def _result(
    rank: int,
    score: float,
    chunk: Chunk,
    highlights: list[Span],
    evidence: list[Span],
    duplicate_sources: list[str],
    explain: Explain | None,
) -> SearchResult:
    """One result, built without validation: every value comes from the snapshot or the
    searcher, already of its field's type (the response model still defines the schema)."""
    return SearchResult.model_construct(
        rank=rank, score=score, chunk_id=chunk.id, article_id=chunk.article_id,
        title=chunk.title, text=chunk.text, source=chunk.source, kind=chunk.kind,
        position=chunk.position, start=chunk.start, end=chunk.end, published=chunk.published,
        highlights=[Highlight.model_construct(start=s, end=e) for s, e in highlights],
        evidence=[Evidence.model_construct(start=s, end=e) for s, e in evidence],
        duplicates=len(duplicate_sources), duplicate_sources=sorted(set(duplicate_sources)),
        explain=explain,
    )  # fmt: skip
