"""The matching set: one definition behind the results, their total, their facets and their
order by date or recency. Pure logic, and searches on the stand-in model over real indexes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED_FILE, HashEmbedder, open_stand_in

from indexer.build import build_index
from indexer.settings import Settings
from indexer.store import UNDATED, IndexStore, RowColumns
from search_api.matching import (
    MatchRules,
    date_order,
    facet_counts,
    first_of_each,
    recency_factors,
    recency_order,
    reference_day,
)
from search_api.models import Filters, SearchRequest
from search_api.searcher import NO_MATCH_NOTE, Searcher


def _day(iso: str) -> int:
    return date.fromisoformat(iso).toordinal()


# Pure logic


def test_first_of_each_keeps_each_groups_first_row_in_order() -> None:
    rows = np.array([7, 3, 9, 4, 1])
    groups = np.array([2, 1, 2, 3, 1])
    assert first_of_each(rows, groups).tolist() == [7, 3, 4]


def test_recency_halves_the_boost_every_half_life_and_leaves_undated_alone() -> None:
    days = np.array([_day("2026-02-01"), _day("2026-01-02"), _day("2025-12-03"), UNDATED])
    factors = recency_factors(days, _day("2026-02-01"), half_life_days=30, weight=1.0)
    assert factors.tolist() == pytest.approx([2.0, 1.5, 1.25, 1.0])
    assert recency_factors(days, _day("2026-02-01"), 30, weight=0.0).tolist() == [1.0] * 4


def test_age_counts_from_date_to_or_the_newest_dated_match() -> None:
    days = np.array([UNDATED, _day("2025-06-01"), _day("2025-07-01")])
    assert reference_day(days, None) == _day("2025-07-01")
    assert reference_day(days, _day("2026-01-01")) == _day("2026-01-01")
    assert reference_day(np.array([UNDATED]), None) is None


def test_recency_reorders_by_score_times_factor_ties_kept_in_relevance_order() -> None:
    scores = np.array([0.9, 0.8, 0.8, 0.5])
    factors = np.array([1.0, 1.5, 1.5, 1.0])
    assert recency_order(scores, factors).tolist() == [1, 2, 0, 3]


def test_date_order_is_newest_first_undated_last_ties_by_relevance() -> None:
    days = np.array([UNDATED, _day("2025-01-01"), _day("2026-01-01"), UNDATED, _day("2025-01-01")])
    assert date_order(days).tolist() == [2, 1, 4, 0, 3]


def test_facets_count_months_in_calendar_order_and_the_rest_by_count() -> None:
    columns = RowColumns.from_rows(
        [
            ("a", None, "2026-02-02", "x.txt", "paragraph"),
            ("a", None, "2026-02-02", "x.txt", "caption"),
            ("b", None, None, "y.txt", "paragraph"),
            ("c", None, "2025-11-30", "z.txt", "paragraph"),
            ("c", None, "2025-11-30", "z.txt", "paragraph"),
        ]
    )
    rows = np.arange(5)
    assert facet_counts("month", rows, columns) == [("2025-11", 2), ("2026-02", 2), ("undated", 1)]
    assert facet_counts("source", rows, columns) == [("x.txt", 2), ("z.txt", 2), ("y.txt", 1)]
    assert facet_counts("kind", rows[2:], columns) == [("paragraph", 3)]
    assert columns.dated_articles() == 2


# Searches on the stand-in model over the seed file


QUERIES = ["flood evacuations", "Gaza ceasefire talks", "army deployed in the south"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("query", QUERIES)
def test_paging_walks_the_whole_set_and_ends_at_total(
    stand_in_searcher: Searcher, mode: str, query: str
) -> None:
    seen: list[str] = []
    totals = set()
    for offset in range(0, 200, 7):
        response = stand_in_searcher.search(
            SearchRequest(query=query, mode=mode, k=7, offset=offset, facets=["month"])
        )
        totals.add(response.total)
        seen += [r.chunk_id for r in response.results]
        assert sum(f.count for f in response.facets["month"]) == response.total  # type: ignore[index]
    assert len(totals) == 1
    assert len(seen) == len(set(seen)) == totals.pop() > 0


def test_facets_sort_and_recency_keep_the_same_set(stand_in_searcher: Searcher) -> None:
    def chunk_ids(**options: object) -> list[str]:
        request = SearchRequest.model_validate(
            {"query": "Gaza ceasefire talks", "k": 100, **options}
        )
        return [r.chunk_id for r in stand_in_searcher.search(request).results]

    relevance = chunk_ids()
    assert sorted(chunk_ids(sort="date")) == sorted(relevance)
    assert sorted(chunk_ids(recency_half_life_days=1)) == sorted(relevance)
    assert chunk_ids(facets=["month", "source", "kind"]) == relevance


def test_total_counts_articles_and_collapse_counts_each_article_once(
    stand_in_searcher: Searcher,
) -> None:
    passages = stand_in_searcher.search(SearchRequest(query="Gaza ceasefire talks", k=100))
    articles = stand_in_searcher.search(
        SearchRequest(query="Gaza ceasefire talks", k=100, collapse=True, facets=["source"])
    )
    assert passages.total == len(passages.results) > passages.total_articles
    assert passages.total_articles == len({r.article_id for r in passages.results})
    assert articles.total == articles.total_articles == passages.total_articles
    assert not passages.total_is_lower_bound  # the seed file's index is exact
    assert sum(f.count for f in articles.facets["source"]) == articles.total  # type: ignore[index]


def test_a_source_facet_under_a_source_filter_shows_that_source_only(
    stand_in_searcher: Searcher,
) -> None:
    filtered = stand_in_searcher.search(
        SearchRequest(query="flood", facets=["source"], filters=Filters(source=[SEED_FILE.name]))
    )
    assert [f.value for f in filtered.facets["source"]] == [SEED_FILE.name]  # type: ignore[index]


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_a_facet_value_chosen_as_a_filter_returns_what_it_counted(
    flood_archive: Searcher, mode: str
) -> None:
    query = "river flooded valley rescuers evacuated families"
    counted = flood_archive.search(SearchRequest(query=query, mode=mode, facets=["month"]))
    months = [f for f in counted.facets["month"] if f.value != "undated"]  # type: ignore[index]
    for month in months[:: len(months) // 5]:
        first = date.fromisoformat(month.value + "-01")
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        narrowed = flood_archive.search(
            SearchRequest(query=query, mode=mode, filters=Filters(date_from=first, date_to=last))
        )
        if mode == "dense":
            assert narrowed.total == month.count
        else:  # a filtered search reads its word matches among the filtered passages only
            assert narrowed.total >= month.count


def test_the_note_comes_exactly_with_an_empty_set(stand_in_searcher: Searcher) -> None:
    for query in ["quantum chromodynamics lattice", "flood evacuations"]:
        for mode in ("hybrid", "dense", "lexical"):
            response = stand_in_searcher.search(
                SearchRequest(query=query, mode=mode, facets=["month"])
            )
            assert (response.total == 0) == (response.note == NO_MATCH_NOTE), (query, mode)
            assert (response.facets["month"] == []) == (response.total == 0)  # type: ignore[index]


def test_min_score_replaces_the_bar(stand_in_searcher: Searcher) -> None:
    default = stand_in_searcher.search(SearchRequest(query="flood evacuations", mode="dense"))
    everything = stand_in_searcher.search(
        SearchRequest(query="flood evacuations", mode="dense", min_score=-1.0)
    )
    assert everything.total == stand_in_searcher.stats().chunks - _hidden_duplicates(everything)
    assert default.total < everything.total
    strict = stand_in_searcher.search(
        SearchRequest(query="flood evacuations", mode="dense", min_score=0.3, k=100)
    )
    assert strict.total == len(strict.results) and all(r.score >= 0.3 for r in strict.results)


def _hidden_duplicates(response: object) -> int:
    """Passages dedupe hid behind a shown duplicate (each shown result counts its own)."""
    return sum(r.duplicates for r in response.results)  # type: ignore[attr-defined]


# A built archive where the newest match is the least relevant


FLOOD = "The river flooded the valley and rescuers evacuated families from flooded homes."


@pytest.fixture(scope="module")
def flood_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    """1,100 articles about a flood, dated one a day from 2020; the newest, a week after the
    last of them, mentions the flood once among other news."""
    root = tmp_path_factory.mktemp("flood-archive")
    seeds = root / "seeds"
    seeds.mkdir()
    first = date(2020, 1, 1)
    for n in range(1100):
        day = first + timedelta(days=n)
        _write(seeds / f"flood-{n:04d}.txt", f"Flood in town {n}", day, f"{FLOOD} Town {n}.")
    newest = first + timedelta(days=1106)
    _write(
        seeds / "newest.txt", "Council budget", newest,
        "The council approved its budget, a new library and road repairs after the flood.",
    )  # fmt: skip
    settings = Settings(seeds_dir=seeds, index_dir=root / "index")
    build_index(settings, embedder=HashEmbedder())
    searcher = open_stand_in(settings.index_dir)
    yield searcher
    searcher.close()


def _write(path: Path, title: str, day: date, body: str) -> None:
    path.write_text(f"{title}\n\nPublished: {day:%d %B %Y}\n\n{body}\n", encoding="utf-8")


def test_date_sort_finds_the_newest_match_past_a_thousand_more_relevant(
    flood_archive: Searcher,
) -> None:
    query = "river flooded valley rescuers evacuated families"
    by_relevance = [
        r.source
        for offset in range(0, 1000, 100)
        for r in flood_archive.search(SearchRequest(query=query, k=100, offset=offset)).results
    ]
    assert len(by_relevance) == 1000 and "newest.txt" not in by_relevance
    newest = flood_archive.search(SearchRequest(query=query, k=3, sort="date"))
    assert newest.total == 1101 and not newest.total_is_lower_bound
    assert [r.source for r in newest.results] == ["newest.txt", "flood-1099.txt", "flood-1098.txt"]
    # Paging by date stays consistent: the pages join up into one order.
    second = flood_archive.search(SearchRequest(query=query, k=3, offset=3, sort="date"))
    assert [r.source for r in second.results] == [f"flood-{n}.txt" for n in (1097, 1096, 1095)]


def test_recency_lifts_newer_matches_without_changing_the_set(flood_archive: Searcher) -> None:
    query = "river flooded valley rescuers evacuated families"
    plain = flood_archive.search(SearchRequest(query=query, k=10, facets=["month"]))
    recent = flood_archive.search(
        SearchRequest(query=query, k=10, recency_half_life_days=30, explain=True, facets=["month"])
    )
    assert recent.total == plain.total and recent.facets == plain.facets

    def mean_day(response: object) -> float:
        return float(np.mean([_day(r.published) for r in response.results]))  # type: ignore[attr-defined]

    assert mean_day(recent) > mean_day(plain) + 365
    factors = [r.explain.recency_factor for r in recent.results if r.explain]
    assert all(factor is not None and 1.0 < factor <= 2.0 for factor in factors)
    # Age counts from date_to when given: a year earlier, the newest passages are a year old.
    bounded = flood_archive.search(
        SearchRequest(
            query=query, k=1, recency_half_life_days=30, explain=True,
            filters=Filters(date_to=date(2020, 12, 31)),
        )
    )  # fmt: skip
    assert bounded.results[0].published == "2020-12-31"
    assert bounded.results[0].explain and bounded.results[0].explain.recency_factor == 2.0


def test_hybrid_adds_strong_word_matches_to_the_passages_close_in_meaning(
    stand_in_settings: Settings,
) -> None:
    def totals(word_bar: float) -> tuple[int, int]:
        rules = MatchRules(
            no_match_threshold=0.2, match_threshold=0.3, word_match_threshold=word_bar
        )
        searcher = Searcher.open(
            IndexStore(stand_in_settings.index_dir), HashEmbedder(), rules=rules
        )
        try:
            request = SearchRequest(query="army deployed", k=100, dedupe=False)
            hybrid = searcher.search(request)
            dense = searcher.search(request.model_copy(update={"mode": "dense"}))
            assert all(r.score >= 0.3 for r in dense.results)
            close = {r.chunk_id for r in dense.results}
            assert close <= {r.chunk_id for r in hybrid.results}  # meaning alone still matches
            return hybrid.total, dense.total
        finally:
            searcher.close()

    only_meaning, dense_total = totals(word_bar=100.0)
    assert only_meaning == dense_total
    with_words, _ = totals(word_bar=0.5)
    assert with_words > only_meaning
