"""Retrieval quality metrics over labelled query sets (pure functions, no model).

Beside the ranking metrics: the matching set's figures at a per-passage bar and the
cross-validated choice of that bar, the age of a ranking's top results, and the dated archive
(BBC articles given datelines) that the time features are measured and tested on.
"""

from __future__ import annotations

import datetime
import json
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import ValidationError

from indexer.errors import UsageError
from search_api.client import SearchFunction
from search_api.models import MAX_OFFSET, SearchRequest, SearchResult

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


# The matching set: every passage clearing the per-passage bar, paged through in full.


@dataclass(frozen=True)
class MatchingSet:
    """What one query's matching set at one bar holds, judged against its labels."""

    query: str
    total: int  # as the service reports it
    seen: int  # results paged through: ``total`` unless the paging limit cut the set short
    labels: int
    labels_found: int  # relevant strings contained in some passage of the set
    relevant_passages: int  # passages of the set containing a relevant string
    first_relevant_rank: int | None  # within the default ranking's top 10


def matching_set(search: SearchFunction, request: SearchRequest) -> tuple[list[SearchResult], int]:
    """Every result of ``request``'s matching set in its order, paged ``request.k`` at a time
    from offset 0 until ``total`` or the service's paging limit; and ``total``."""
    results: list[SearchResult] = []
    offset, total = 0, 0
    while offset <= MAX_OFFSET:
        response = search(request.model_copy(update={"offset": offset}))
        results += response.results
        total = response.total
        offset += request.k
        if offset >= total or not response.results:
            break
    return results, total


def judge_set(query: LabelledQuery, results: Sequence[SearchResult], total: int) -> MatchingSet:
    """Judge a matching set (``results`` in the default order) against the query's labels."""
    hits = [[label in result.text for label in query.relevant] for result in results]
    return MatchingSet(
        query=query.query,
        total=total,
        seen=len(results),
        labels=len(query.relevant),
        labels_found=sum(any(row[i] for row in hits) for i in range(len(query.relevant))),
        relevant_passages=sum(any(row) for row in hits),
        first_relevant_rank=judge(query, list(results[:10])).first_relevant_rank,
    )


@dataclass(frozen=True)
class BarReport:
    """The matching sets' figures at one per-passage bar, over a list of queries.

    ``label_recall``: the share of a query's relevant strings found in some passage of its
    set, averaged over queries. ``passage_precision``: the share of a set's passages holding a
    relevant string, averaged over the queries whose set is not empty; a lower bound, since
    the labels name only some of the relevant passages."""

    bar: float
    queries: int
    label_recall: float
    passage_precision: float | None
    mean_total: float
    median_total: float
    mrr_at_10: float
    cut_short: int  # sets larger than the paging limit lets through: judged on what was seen
    off_topic_empty: float | None = None  # share of off-topic queries whose set is empty


def summarize_bar(
    bar: float, sets: Sequence[MatchingSet], off_topic_totals: Sequence[int] = ()
) -> BarReport:
    if not sets:
        raise ValueError("no matching sets to summarize")
    precisions = [s.relevant_passages / s.seen for s in sets if s.seen]
    ranks = [s.first_relevant_rank for s in sets]
    return BarReport(
        bar=bar,
        queries=len(sets),
        label_recall=round(statistics.fmean(s.labels_found / s.labels for s in sets), 4),
        passage_precision=round(statistics.fmean(precisions), 4) if precisions else None,
        mean_total=round(statistics.fmean(s.total for s in sets), 1),
        median_total=statistics.median(s.total for s in sets),
        mrr_at_10=round(statistics.fmean(1 / rank if rank else 0.0 for rank in ranks), 4),
        cut_short=sum(s.seen < s.total for s in sets),
        off_topic_empty=(
            round(sum(t == 0 for t in off_topic_totals) / len(off_topic_totals), 4)
            if off_topic_totals
            else None
        ),
    )


def choose_bar(by_bar: Mapping[float, Sequence[MatchingSet]], retained_recall: float) -> float:
    """The highest bar whose label recall keeps ``retained_recall`` of the recall at the
    lowest bar swept: it trims the set as far as it goes without losing labelled passages
    (the lowest bar's recall is the reference, since some labels no passage holds whole)."""
    recall = {bar: summarize_bar(bar, sets).label_recall for bar, sets in by_bar.items()}
    floor = retained_recall * recall[min(recall)]
    return max(bar for bar, value in recall.items() if value >= floor)


@dataclass(frozen=True)
class FoldResult:
    """One fold of the cross-validation: the bar chosen on the other folds' queries, and
    the figures it gives on this fold's held-out queries."""

    fold: int
    bar: float
    held_out: BarReport


def cross_validate(
    by_bar: Mapping[float, Sequence[MatchingSet]], retained_recall: float, folds: int = 5
) -> list[FoldResult]:
    """Choose the bar (``choose_bar``) on all folds but one and judge it on that one, for
    each fold. Query i sits in fold i mod ``folds``: the query files are in no order of
    difficulty, and a fixed split makes every run comparable."""
    count = len(next(iter(by_bar.values())))
    if count < folds:
        raise UsageError(f"cross-validation needs at least {folds} queries, not {count}")
    results = []
    for fold in range(folds):
        held = [i for i in range(count) if i % folds == fold]
        train = [i for i in range(count) if i % folds != fold]
        bar = choose_bar({b: [s[i] for i in train] for b, s in by_bar.items()}, retained_recall)
        results.append(FoldResult(fold, bar, summarize_bar(bar, [by_bar[bar][i] for i in held])))
    return results


# Recency: how old the top results are.


def mean_age_days(results: Sequence[SearchResult], newest: datetime.date) -> float | None:
    """Mean age in days, back from ``newest``, of the dated results; None when none is."""
    ages = [
        (newest - datetime.date.fromisoformat(r.published)).days for r in results if r.published
    ]
    return statistics.fmean(ages) if ages else None


@dataclass(frozen=True)
class RecencyOutcome:
    """One query's top 10 by relevance and with recency: mean age (days) and reciprocal rank."""

    query: str
    age_default: float | None
    age_recency: float | None
    rr_default: float
    rr_recency: float

    @property
    def age_change(self) -> float | None:
        """How many days younger (negative) or older the recency top 10 is on average."""
        if self.age_default is None or self.age_recency is None:
            return None
        return self.age_recency - self.age_default


def recency_outcome(
    query: LabelledQuery,
    default: Sequence[SearchResult],
    recency: Sequence[SearchResult],
    newest: datetime.date,
) -> RecencyOutcome:
    def rr(results: Sequence[SearchResult]) -> float:
        rank = judge(query, list(results[:10])).first_relevant_rank
        return 1 / rank if rank else 0.0

    return RecencyOutcome(
        query.query,
        mean_age_days(default[:10], newest),
        mean_age_days(recency[:10], newest),
        rr(default),
        rr(recency),
    )


# The dated archive: BBC articles given datelines, for the time features' tests and figures.

ARCHIVE_NEWEST = datetime.date(2026, 2, 2)
ARCHIVE_DAYS = 730  # two years back from the newest date
# 211 is prime to 730, so 730 consecutive articles land on 730 distinct days, and the dates
# of one topic's articles (taken in turn with the others) still cover both years.
_DATE_STRIDE = 211
UNDATED_EVERY = 12  # every twelfth article carries no date
ISO_EVERY = 5  # every fifth dateline is an ISO date, the other form the parser reads
BBC_TOPICS = ("business", "entertainment", "politics", "sport", "tech")
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def archive_date(index: int) -> datetime.date | None:
    """The publication date of a dated archive's article number ``index`` (from 0)."""
    if index % UNDATED_EVERY == UNDATED_EVERY - 1:
        return None
    return ARCHIVE_NEWEST - datetime.timedelta(days=index * _DATE_STRIDE % ARCHIVE_DAYS)


def dateline(published: datetime.date, iso: bool = False) -> str:
    """A dateline paragraph indexer.dates reads: "Published: 2 February 2026" or "2026-02-02"."""
    if iso:
        return published.isoformat()
    return f"Published: {published.day} {published:%B} {published.year}"


def dated_text(
    text: str, published: datetime.date | None, paragraphs: int | None = None, iso: bool = False
) -> str:
    """A one-article seed text (headline on the first line, paragraphs between blank lines)
    with its dateline as the first body paragraph, and only the first ``paragraphs`` body
    paragraphs when given (the dateline not counted); unchanged in form when undated."""
    headline, _, body = text.strip().partition("\n")
    kept = [p for p in _BLANK_LINES.split(body.strip()) if p][:paragraphs]
    if published is not None:
        kept.insert(0, dateline(published, iso))
    return "\n\n".join([headline.strip(), *kept]) + "\n"


def articles_in_turn(bbc: Path, count: int) -> list[Path]:
    """The first ``count`` BBC articles, taking the five topics in turn."""
    per_topic = [sorted((bbc / topic).glob("*.txt")) for topic in BBC_TOPICS]
    picked = [
        files[i] for i in range(max(map(len, per_topic))) for files in per_topic if i < len(files)
    ]
    return picked[:count]


def write_dated_archive(
    bbc: Path, directory: Path, count: int, paragraphs: int | None = None
) -> list[Path]:
    """Write ``count`` BBC articles (topics in turn) into ``directory`` as ``topic-NNN.txt``,
    article i dated ``archive_date(i)``; returns the files written. An undecodable byte
    (one BBC file has one) becomes U+FFFD rather than losing the article."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for index, source in enumerate(articles_in_turn(bbc, count)):
        text = source.read_bytes().decode("utf-8", errors="replace")
        target = directory / f"{source.parent.name}-{source.name}"
        iso = index % ISO_EVERY == ISO_EVERY - 1
        target.write_text(dated_text(text, archive_date(index), paragraphs, iso), encoding="utf-8")
        written.append(target)
    return written
