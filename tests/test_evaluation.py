"""Quality metrics and benchmark loaders (pure, no model)."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import pytest
from conftest import SHARED, dated_bbc_files, shared

from indexer.dates import published_date
from indexer.errors import UsageError
from indexer.parse import decode_source, parse_articles
from search_api.beir import (
    document_id,
    load_beir_queries,
    ndcg_at,
    recall_at,
    reciprocal_rank,
    write_beir_seeds,
)
from search_api.evaluation import (
    ARCHIVE_DAYS,
    ARCHIVE_NEWEST,
    LabelledQuery,
    MatchingSet,
    archive_date,
    choose_bar,
    cross_validate,
    dated_text,
    judge,
    judge_set,
    load_queries,
    matching_set,
    mean_age_days,
    recency_outcome,
    summarize,
    summarize_bar,
)
from search_api.models import SearchRequest, SearchResponse, SearchResult
from search_api.searcher import Searcher

SCIFACT = SHARED / "corpora" / "scifact"


def result(rank: int, text: str, published: str | None = None) -> SearchResult:
    return SearchResult(
        rank=rank, score=1.0, chunk_id=str(rank), article_id="a", title="t", text=text,
        source="s.txt", kind="paragraph", position=0, start=0, end=len(text), published=published,
    )  # fmt: skip


def test_judging_finds_the_first_relevant_passage_and_the_share_of_labels_found() -> None:
    query = LabelledQuery("flood", ("evacuated 50,000", "Sebou River"))
    results = [result(1, "dam water"), result(2, "Morocco evacuated 50,000 people"), result(3, "x")]
    outcome = judge(query, results)
    assert outcome.first_relevant_rank == 2
    assert outcome.found_by_cutoff == {1: 0.0, 5: 0.5, 10: 0.5}
    report = summarize("hybrid", [outcome, judge(LabelledQuery("q", ("absent",)), results)])
    assert report.mrr_at_10 == 0.25 and report.recall[5] == 0.25 and report.missed == ["q"]


def test_the_seed_query_set_loads(seed_queries: Path) -> None:
    queries = load_queries(seed_queries)
    assert len(queries) == 20 and queries[0].query == "flood evacuations"


@pytest.mark.parametrize("line", ['{"query": "", "relevant": ["x"]}', '{"query": "q", "relevant": []}',
                                  '{"query": "q", "relevant": "x"}', '{"query": "q"}', "not json"])  # fmt: skip
def test_a_bad_query_line_is_named(tmp_path: Path, line: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "fine", "relevant": ["x"]}\n' + line + "\n")
    with pytest.raises(UsageError, match="line 2"):
        load_queries(path)


def test_ndcg_recall_and_reciprocal_rank() -> None:
    relevant = {"d1": 1, "d2": 1}
    assert ndcg_at(["d1", "d2", "x"], relevant) == pytest.approx(1.0)
    assert ndcg_at(["x", "d1"], relevant) == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )
    assert ndcg_at(["x"], relevant) == 0.0
    assert recall_at(["x", "d2"], relevant, 100) == 0.5
    assert reciprocal_rank(["x", "x2", "d2"], relevant) == pytest.approx(1 / 3)


def test_the_scifact_test_split_loads_with_its_judgements() -> None:
    queries = load_beir_queries(shared(SCIFACT), "test")
    assert len(queries) == 300
    assert sum(len(q.relevant) for q in queries) == 339


def test_beir_documents_become_one_article_seed_files(tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    docs = [{"_id": "42", "title": "A  Title", "text": "First sentence. Second one.", "metadata": {}},
            {"_id": "7", "title": "", "text": "No title here.", "metadata": {}}]  # fmt: skip
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    assert write_beir_seeds(folder, tmp_path / "seeds") == 2
    seeds = tmp_path / "seeds"
    [article] = parse_articles(decode_source((seeds / "42.txt").read_bytes()))
    assert article.title == "A Title" and [p.text for p in article.paragraphs] == [
        "First sentence. Second one."
    ]
    assert parse_articles(decode_source((seeds / "7.txt").read_bytes()))[0].title == "Document 7"
    assert document_id("sub/42.txt") == "42"


def test_a_matching_set_is_judged_on_every_passage_it_holds() -> None:
    query = LabelledQuery("flood", ("evacuated 50,000", "Sebou River", "never written"))
    texts = [
        "dam water",
        "evacuated 50,000 people",
        "x",
        "the Sebou River rose",
        "evacuated 50,000",
    ]
    judged = judge_set(query, [result(i, t) for i, t in enumerate(texts, start=1)], total=5)
    assert (judged.labels, judged.labels_found, judged.relevant_passages) == (3, 2, 3)
    assert judged.first_relevant_rank == 2 and judged.seen == judged.total == 5


def matching(labels_found: int, relevant: int, seen: int, rank: int | None = 1) -> MatchingSet:
    return MatchingSet("q", seen, seen, 2, labels_found, relevant, rank)


def test_a_bar_report_averages_over_queries_and_skips_empty_sets_for_precision() -> None:
    sets = [matching(2, 1, 4), matching(1, 1, 1, rank=2), matching(0, 0, 0, rank=None)]
    report = summarize_bar(0.3, sets, off_topic_totals=[0, 3, 0, 0])
    assert report.label_recall == 0.5  # (1 + 0.5 + 0) / 3
    assert report.passage_precision == 0.625  # (1/4 + 1/1) / 2: the empty set has none
    assert (report.mean_total, report.median_total) == (1.7, 1)
    assert report.mrr_at_10 == 0.5 and report.off_topic_empty == 0.75 and report.cut_short == 0


def test_the_bar_chosen_is_the_highest_keeping_the_share_of_the_lowest_bars_recall() -> None:
    # Twenty queries; each bar finds fewer labels. 0.3 keeps 0.95 of 0.2's recall, 0.35 not.
    by_bar = {
        0.2: [matching(2, 2, 50)] * 20,
        0.3: [matching(2, 2, 20)] * 19 + [matching(0, 0, 0)],
        0.35: [matching(2, 2, 10)] * 17 + [matching(0, 0, 0)] * 3,
    }
    assert choose_bar(by_bar, 0.95) == 0.3
    assert choose_bar(by_bar, 0.8) == 0.35 and choose_bar(by_bar, 1.0) == 0.2
    folds = cross_validate(by_bar, 0.95, folds=5)
    assert [f.fold for f in folds] == [0, 1, 2, 3, 4]
    assert all(f.held_out.queries == 4 for f in folds)
    # Query 19, the one 0.3 loses, is held out in fold 4: the other folds train on it, see
    # 0.3 keep 15 of 16 (< 0.95) and fall back to 0.2; fold 4 trains without it.
    assert [f.bar for f in folds] == [0.2, 0.2, 0.2, 0.2, 0.3]
    assert folds[4].held_out.label_recall == 0.75  # queries 4, 9, 14 and 19 at 0.3
    with pytest.raises(UsageError, match="at least 5 queries"):
        cross_validate({0.3: [matching(1, 1, 1)] * 4}, 0.95)


def test_paging_collects_the_whole_matching_set_once(stand_in_searcher: Searcher) -> None:
    request = SearchRequest(query="army deployed to the south of the country", k=3)
    results, total = matching_set(stand_in_searcher.search, request)
    assert total > 6 and len(results) == total
    assert len({r.chunk_id for r in results}) == total
    assert [r.rank for r in results] == list(range(1, total + 1))


def test_paging_stops_at_the_services_offset_limit() -> None:
    asked: list[int] = []

    def endless(request: SearchRequest) -> SearchResponse:
        asked.append(request.offset)
        page = [result(request.offset + i + 1, "x") for i in range(request.k)]
        return SearchResponse(query=request.query, mode=request.mode, took_ms=0.0, snapshot="s",
                              total=5000, total_articles=1, total_is_lower_bound=False,
                              results=page)  # fmt: skip

    results, total = matching_set(endless, SearchRequest(query="q", k=100))
    assert asked == list(range(0, 1000, 100)) and len(results) == 1000 and total == 5000


def test_the_age_of_a_ranking_counts_dated_results_only() -> None:
    newest = datetime.date(2026, 2, 2)
    results = [result(1, "a", "2026-01-23"), result(2, "b"), result(3, "c", "2026-02-02")]
    assert mean_age_days(results, newest) == 5.0
    assert mean_age_days([result(1, "undated")], newest) is None
    query = LabelledQuery("q", ("b",))
    outcome = recency_outcome(query, results, results[::-1], newest)
    assert outcome.rr_default == 0.5 and outcome.rr_recency == 0.5 and outcome.age_change == 0


def test_archive_dates_cover_two_years_on_distinct_days_with_a_few_undated() -> None:
    dates = [archive_date(i) for i in range(ARCHIVE_DAYS)]
    dated = [d for d in dates if d is not None]
    assert dates[0] == ARCHIVE_NEWEST and max(dated) == ARCHIVE_NEWEST
    assert (ARCHIVE_NEWEST - min(dated)).days == ARCHIVE_DAYS - 1
    assert len(set(dated)) == len(dated)
    assert 0.05 < dates.count(None) / len(dates) < 0.1


def test_a_dateline_becomes_the_first_body_paragraph_the_parser_dates() -> None:
    text = "Headline here\n\nFirst paragraph.\n\nSecond one.\n\nThird one.\n"
    for iso in (False, True):
        dated = dated_text(text, datetime.date(2026, 2, 2), paragraphs=2, iso=iso)
        [article] = parse_articles(dated)
        assert article.title == "Headline here"
        assert [p.text for p in article.paragraphs][1:] == ["First paragraph.", "Second one."]
        assert published_date(article) == datetime.date(2026, 2, 2)
    assert "Published: 2 February 2026" in dated_text(text, datetime.date(2026, 2, 2))
    assert parse_articles(dated_text(text, None))[0].paragraphs[0].text == "First paragraph."


def test_the_dated_archive_writes_bbc_articles_with_their_dates(tmp_path: Path) -> None:
    files = dated_bbc_files(tmp_path / "seeds", 24, paragraphs=2)
    assert len(files) == 24 and {f.name.split("-")[0] for f in files} == {
        "business", "entertainment", "politics", "sport", "tech",
    }  # fmt: skip
    for index, path in enumerate(files):
        [article] = parse_articles(decode_source(path.read_bytes()))
        assert published_date(article) == archive_date(index)
        assert len(article.paragraphs) == 2 + (archive_date(index) is not None)
