"""The build's quality gate: MRR@10 of the default mode on a labelled query file, for the
candidate snapshot against the live one, both scored by the current code."""

from __future__ import annotations

from pathlib import Path

from indexer.build import Gate, GateVerdict
from indexer.embed import Embedder
from indexer.store import IndexStore
from search_api.evaluation import LabelledQuery, judge, load_queries, summarize
from search_api.models import DEFAULT_MODE, SearchRequest
from search_api.searcher import Searcher

DEFAULT_TOLERANCE = 0.02


def mrr_gate(
    queries_file: Path, embedder: Embedder, tolerance: float, no_match_threshold: float
) -> Gate:
    """A gate refusing a snapshot whose MRR@10 falls more than ``tolerance`` (absolute) below
    the live snapshot's. Reads the query file now, so a bad one is named before any build."""
    queries = load_queries(queries_file)

    def mrr(store: IndexStore, snapshot_id: str) -> float:
        searcher = Searcher(store.open_snapshot(snapshot_id), embedder, no_match_threshold)
        try:
            return _mrr(searcher, queries)
        finally:
            searcher.close()

    def gate(store: IndexStore, candidate_id: str, live_id: str | None) -> GateVerdict:
        candidate = mrr(store, candidate_id)
        if live_id is None:
            message = f"gate: MRR@10 {candidate:.3f}; no live snapshot to compare with"
            return GateVerdict(True, message, candidate)
        live = mrr(store, live_id)
        passed = candidate >= live - tolerance
        message = (
            f"gate: MRR@10 {candidate:.3f} against the live snapshot's {live:.3f} "
            f"(tolerance {tolerance})"
        ) + ("" if passed else f"; not published, {live_id} stays live")
        return GateVerdict(passed, message, candidate, live)

    return gate


def _mrr(searcher: Searcher, queries: list[LabelledQuery]) -> float:
    outcomes = [
        judge(q, searcher.search(SearchRequest(query=q.query, k=10, mode=DEFAULT_MODE)).results)
        for q in queries
    ]
    return summarize(DEFAULT_MODE, outcomes).mrr_at_10
