"""Retrieval quality metrics over labelled query sets (pure functions, no model)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import ValidationError

from indexer.errors import UsageError
from search_api.models import SearchRequest, SearchResult

CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class LabelledQuery:
    """A passage is relevant when its text contains one of the ``relevant`` strings."""

    query: str
    relevant: tuple[str, ...]


@dataclass(frozen=True)
class QueryOutcome:
    query: str
    first_relevant_rank: int | None  # 1-based, within the returned results
    found_by_cutoff: dict[int, float]  # share of relevant strings matched in the top k


@dataclass
class Report:
    mode: str
    queries: int
    mrr_at_10: float
    recall: dict[int, float]
    missed: list[str] = field(default_factory=list)
    no_match: int = 0  # queries the service answered with "no good match" (an empty list)
    off_topic: int = 0  # off-topic queries asked (--off-topic)
    off_topic_no_match: int = 0  # ... answered with "no good match"

    @property
    def no_match_precision(self) -> float | None:
        """Of the lists emptied as "no good match", the share that were off-topic queries."""
        emptied = self.no_match + self.off_topic_no_match
        return round(self.off_topic_no_match / emptied, 4) if emptied else None

    @property
    def no_match_recall(self) -> float | None:
        """Of the off-topic queries, the share answered "no good match"."""
        return round(self.off_topic_no_match / self.off_topic, 4) if self.off_topic else None

    def as_json(self) -> dict[str, object]:
        """Every figure of the report, the derived no-match precision and recall included."""
        return {
            **asdict(self),
            "no_match_precision": self.no_match_precision,
            "no_match_recall": self.no_match_recall,
        }


def load_queries(path: Path) -> list[LabelledQuery]:
    """Read a JSONL query set; ``UsageError`` names the file and its first bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    queries = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                queries.append(_labelled_query(line))
            except ValueError as error:
                raise UsageError(f"{path}, line {number}: {error}") from None
    if not queries:
        raise UsageError(f"{path} holds no queries")
    return queries


def _labelled_query(line: str) -> LabelledQuery:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    if not isinstance(row, dict) or "query" not in row or "relevant" not in row:
        raise ValueError('expected an object with "query" and "relevant"')
    query, relevant = row["query"], row["relevant"]
    try:
        SearchRequest(query=query)  # the same limits the service applies
    except ValidationError as error:
        raise ValueError(f"query: {error.errors()[0]['msg']}") from None
    if not (
        isinstance(relevant, list) and relevant and all(isinstance(r, str) and r for r in relevant)
    ):
        raise ValueError('"relevant" must be a non-empty list of strings')
    return LabelledQuery(query, tuple(relevant))


def judge(query: LabelledQuery, results: list[SearchResult]) -> QueryOutcome:
    matches = [[label in result.text for label in query.relevant] for result in results]
    first = next((rank for rank, hits in enumerate(matches, start=1) if any(hits)), None)
    found = {}
    for cutoff in CUTOFFS:
        top = matches[:cutoff]
        found[cutoff] = sum(any(hits[i] for hits in top) for i in range(len(query.relevant))) / len(
            query.relevant
        )
    return QueryOutcome(query.query, first, found)


def summarize(mode: str, outcomes: list[QueryOutcome]) -> Report:
    count = len(outcomes)
    reciprocal = [
        1 / o.first_relevant_rank if o.first_relevant_rank and o.first_relevant_rank <= 10 else 0.0
        for o in outcomes
    ]
    return Report(
        mode=mode,
        queries=count,
        mrr_at_10=round(sum(reciprocal) / count, 4) if count else 0.0,
        recall={
            k: round(sum(o.found_by_cutoff[k] for o in outcomes) / count, 4) if count else 0.0
            for k in CUTOFFS
        },
        missed=[o.query for o, rr in zip(outcomes, reciprocal, strict=True) if rr == 0.0],
    )
