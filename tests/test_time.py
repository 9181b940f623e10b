"""The time features on the real model, over an archive of 300 dated BBC articles: a total that
holds on every page, month/source/kind facets, the date sort and the recency preference.

One build for the module: each article keeps its headline, its dateline and its first three
paragraphs, which keeps the embedding to under a thousand passages."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterator
from datetime import date

import pytest
from conftest import dated_bbc_files

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.settings import DEFAULT_RECENCY_WEIGHT, Settings
from indexer.store import IndexStore
from search_api.evaluation import ARCHIVE_NEWEST, archive_date, matching_set, mean_age_days
from search_api.matching import Facet
from search_api.models import Filters, SearchRequest, SearchResponse, SearchResult
from search_api.searcher import Searcher

ARTICLES = 300
# Queries a news reader might type, each matching passages of many articles and dates.
QUERY = "the economy and interest rates"
TYPICAL = (
    QUERY,
    "election campaign promises on tax",
    "mobile phones and broadband internet",
    "film awards and box office hits",
    "injury before the match",
)
HALF_LIFE = 30.0


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Searcher]:
    root = tmp_path_factory.mktemp("dated-archive")
    dated_bbc_files(root / "seeds", ARTICLES, paragraphs=3)
    settings = Settings(seeds_dir=root / "seeds", index_dir=root / "index")
    build_index(settings, embedder=embedder)
    opened = Searcher.open(IndexStore(settings.index_dir), embedder)
    yield opened
    opened.close()


def everything(searcher: Searcher, **fields: object) -> tuple[list[SearchResult], int]:
    """The whole matching set of one request, in its order, and its total."""
    request = SearchRequest.model_validate({"k": 100, "highlight": False, **fields})
    return matching_set(searcher.search, request)


def day(result: SearchResult) -> date | None:
    return date.fromisoformat(result.published) if result.published else None


def test_the_archive_holds_the_dates_it_was_written_with(archive: Searcher) -> None:
    dated = sum(archive_date(i) is not None for i in range(ARTICLES))
    assert archive.snapshot.dated_articles() == dated == 275
    newest = archive.search(SearchRequest(query=QUERY, sort="date", k=1)).results[0]
    assert newest.published is not None and newest.published <= ARCHIVE_NEWEST.isoformat()


def test_every_page_reports_the_same_total_and_no_result_twice(archive: Searcher) -> None:
    pages = [archive.search(SearchRequest(query=QUERY, k=10, offset=o)) for o in range(0, 50, 10)]
    total = pages[0].total
    assert total > 50, "the query should match more passages than five pages show"
    assert {page.total for page in pages} == {total}
    assert {page.total_articles for page in pages} == {pages[0].total_articles}
    shown = [r.chunk_id for page in pages for r in page.results]
    assert len(shown) == 50 and len(set(shown)) == 50
    assert [r.rank for page in pages for r in page.results] == list(range(1, 51))
    # Paging ends exactly at total: the last page holds the rest, the next one nothing.
    last = total - 1 - (total - 1) % 10
    assert len(archive.search(SearchRequest(query=QUERY, k=10, offset=last)).results) == (
        total - last
    )
    assert archive.search(SearchRequest(query=QUERY, k=10, offset=last + 10)).results == []
    results, _ = everything(archive, query=QUERY)
    assert len(results) == total and len({r.chunk_id for r in results}) == total


def facets(response: SearchResponse, facet: Facet) -> list[tuple[str, int]]:
    assert response.facets is not None
    return [(value.value, value.count) for value in response.facets[facet]]


def test_month_source_and_kind_facets_count_the_whole_matching_set(archive: Searcher) -> None:
    response = archive.search(SearchRequest(query=QUERY, k=10, facets=["month", "source", "kind"]))
    months = facets(response, "month")
    assert sum(count for _, count in months) == response.total
    named = [month for month, _ in months if month != "undated"]
    assert named == sorted(named) and len(named) > 6  # calendar order, over the two years
    assert months[-1][0] == "undated"  # some matching articles carry no date
    results, _ = everything(archive, query=QUERY)
    by_month = {month: sum((r.published or "undated")[:7] == month for r in results)
                for month, _ in months}  # fmt: skip
    assert by_month == dict(months)
    sources = facets(response, "source")
    assert sum(count for _, count in sources) == response.total
    assert sources == sorted(sources, key=lambda pair: (-pair[1], pair[0]))
    assert dict(facets(response, "kind")) == {"paragraph": response.total}


def test_the_date_sort_puts_the_newest_first_and_the_undated_last(archive: Searcher) -> None:
    by_date, total = everything(archive, query=QUERY, sort="date")
    by_relevance, _ = everything(archive, query=QUERY)
    assert total == len(by_date) == len(by_relevance)
    assert {r.chunk_id for r in by_date} == {r.chunk_id for r in by_relevance}
    days = [day(r) for r in by_date]
    dated = [d for d in days if d is not None]
    assert 0 < len(dated) < len(days) and days[: len(dated)] == dated  # undated after dated
    assert dated == sorted(dated, reverse=True)
    assert dated[0] == max(d for r in by_relevance if (d := day(r)) is not None)
    # Within a day (and among the undated), the more relevant passage comes first.
    for first, second in itertools.pairwise(by_date):
        if first.published == second.published:
            assert first.score >= second.score


def test_recency_brings_newer_passages_into_the_top_ten_and_keeps_the_set(
    archive: Searcher,
) -> None:
    """With a 30-day half-life over a two-year archive only the newest few months weigh
    much, so a query whose newest passages are weak keeps its top 10: newer on average."""
    newer_by = []
    for query in TYPICAL:
        default = archive.search(SearchRequest(query=query, k=10))
        recent = archive.search(SearchRequest(query=query, k=10, recency_half_life_days=HALF_LIFE))
        assert recent.total == default.total and recent.total_articles == default.total_articles
        age_default = mean_age_days(default.results, ARCHIVE_NEWEST)
        age_recent = mean_age_days(recent.results, ARCHIVE_NEWEST)
        assert age_default is not None and age_recent is not None
        newer_by.append(age_default - age_recent)
    assert sum(days > 0 for days in newer_by) >= 3, newer_by
    assert statistics.fmean(newer_by) > 60, newer_by  # two months younger of a two-year span
    everything_default, _ = everything(archive, query=QUERY)
    everything_recent, _ = everything(archive, query=QUERY, recency_half_life_days=HALF_LIFE)
    assert {r.chunk_id for r in everything_recent} == {r.chunk_id for r in everything_default}


def test_without_recency_the_order_is_the_relevance_order(archive: Searcher) -> None:
    default = archive.search(SearchRequest(query=QUERY, k=50))
    explicit = archive.search(
        SearchRequest(query=QUERY, k=50, sort="relevance", recency_half_life_days=None)
    )
    assert [(r.chunk_id, r.score) for r in explicit.results] == [
        (r.chunk_id, r.score) for r in default.results
    ]
    scores = [r.score for r in default.results]
    assert scores == sorted(scores, reverse=True)


def test_explain_reports_the_recency_factor_the_order_follows(archive: Searcher) -> None:
    results, _ = everything(archive, query=QUERY, recency_half_life_days=HALF_LIFE, explain=True)
    assert all(r.explain is not None for r in results)
    factors = [r.explain.recency_factor for r in results if r.explain]
    for result, factor in zip(results, factors, strict=True):
        if result.published is None:
            assert factor is None  # ranked as if 1
        else:
            assert factor is not None and 1.0 <= factor <= 1.0 + DEFAULT_RECENCY_WEIGHT
    # The newest matching passage is age 0: the full weight.
    newest = max(r.published for r in results if r.published)
    at_newest = [f for r, f in zip(results, factors, strict=True) if r.published == newest]
    assert at_newest == pytest.approx([1.0 + DEFAULT_RECENCY_WEIGHT] * len(at_newest))
    weighted = [r.score * (f or 1.0) for r, f in zip(results, factors, strict=True)]
    assert all(a >= b - 1e-5 for a, b in itertools.pairwise(weighted))
    plain = archive.search(SearchRequest(query=QUERY, k=10, explain=True)).results
    assert all(r.explain is not None and r.explain.recency_factor is None for r in plain)


def test_facets_under_a_source_filter_count_only_that_source(archive: Searcher) -> None:
    unfiltered = archive.search(SearchRequest(query=QUERY, k=10, facets=["source"]))
    source, count = facets(unfiltered, "source")[0]
    assert count > 1
    response = archive.search(
        SearchRequest(query=QUERY, k=10, facets=["month", "source"],
                      filters=Filters(source=[source]))
    )  # fmt: skip
    assert facets(response, "source") == [(source, count)] and response.total == count
    assert sum(n for _, n in facets(response, "month")) == count
    assert {r.source for r in response.results} == {source}
