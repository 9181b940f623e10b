"""The build's quality gate: MRR@10 of the default mode on a labelled query file, for the
candidate snapshot against the live one.

The live snapshot is scored anew by the current code where it can be. After a model change it
cannot (its vectors live in another space), so the gate compares with the figure recorded when
that snapshot was itself gated, if it was gated with the same query file; where no comparable
figure exists, the candidate publishes and the verdict says so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from indexer.build import GATE_TOLERANCE, Gate, GateVerdict
from indexer.embed import QueryEncoder
from indexer.errors import ModelMismatchError, SnapshotError
from indexer.store import GateRecord, IndexStore
from search_api.evaluation import LabelledQuery, judge, load_queries, summarize
from search_api.matching import DEFAULT_RULES, MatchRules
from search_api.models import DEFAULT_MODE, SearchRequest
from search_api.searcher import Searcher


def mrr_gate(
    queries_file: Path,
    encoder: QueryEncoder,
    tolerance: float = GATE_TOLERANCE,
    rules: MatchRules = DEFAULT_RULES,
    time_limit: float | None = None,
) -> Gate:
    """A gate refusing a snapshot whose MRR@10 falls more than ``tolerance`` (absolute) below
    the live snapshot's. Reads the query file now, so a bad one is named before any build."""
    queries = load_queries(queries_file)
    queries_sha256 = hashlib.sha256(queries_file.read_bytes()).hexdigest()

    def mrr(store: IndexStore, snapshot_id: str) -> float:
        searcher = Searcher.open(
            store, encoder, snapshot_id, rules=rules,
            time_limit=time_limit,
        )  # fmt: skip
        try:
            return _mrr(searcher, queries)
        finally:
            searcher.close()

    def live_figure(store: IndexStore, live_id: str) -> tuple[float | None, str]:
        """The live snapshot's MRR@10 and where it came from; None when nothing compares."""
        try:
            return mrr(store, live_id), "the live snapshot's"
        except (ModelMismatchError, SnapshotError) as error:
            why = str(error)
        try:
            recorded = store.gate_record(live_id)
        except SnapshotError as error:
            return None, f"{why}; its gate record is unusable ({error})"
        if recorded is None:
            return None, f"{why}; it was never gated"
        if recorded.queries_sha256 != queries_sha256:
            return None, f"{why}; it was gated with another query file"
        return recorded.mrr_at_10, "the figure recorded when the live snapshot was gated,"

    def gate(store: IndexStore, candidate_id: str, live_id: str | None) -> GateVerdict:
        candidate = mrr(store, candidate_id)
        record = GateRecord(queries_sha256, round(candidate, 6), tolerance, encoder.fingerprint)
        store.record_gate(candidate_id, record)
        if live_id is None:
            message = f"gate: MRR@10 {candidate:.3f}; no live snapshot to compare with"
            return GateVerdict(True, message, candidate)
        live, source = live_figure(store, live_id)
        if live is None:
            message = (
                f"gate: MRR@10 {candidate:.3f}; published without a comparison: "
                f"the live snapshot {live_id} cannot be scored ({source})"
            )
            return GateVerdict(True, message, candidate)
        passed = candidate >= live - tolerance
        message = (
            f"gate: MRR@10 {candidate:.3f} against {source} {live:.3f} (tolerance {tolerance})"
        ) + ("" if passed else f"; not published, {live_id} stays live")
        return GateVerdict(passed, message, candidate, live)

    return gate


def _mrr(searcher: Searcher, queries: list[LabelledQuery]) -> float:
    outcomes = [
        judge(q, searcher.search(SearchRequest(query=q.query, k=10, mode=DEFAULT_MODE)).results)
        for q in queries
    ]
    return summarize(DEFAULT_MODE, outcomes).mrr_at_10
