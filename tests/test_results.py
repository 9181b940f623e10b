"""What every result carries besides its passage: evidence sentences (the real model, over
the seed file and the BBC dev queries), publication dates and near-duplicate groups (the
stand-in model, over the seed file and BBC articles published twice)."""

from __future__ import annotations

import datetime
import re
import shutil
from collections.abc import Iterator

import pytest
from conftest import BBC, SHARED, HashEmbedder, new_corpus, open_stand_in, shared
from pydantic import ValidationError

from indexer.build import build_index
from indexer.chunk import sentence_spans
from indexer.embed import Embedder
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.evaluation import LabelledQuery, load_queries
from search_api.models import Filters, SearchRequest
from search_api.ranking import best_sentences
from search_api.searcher import Searcher

EGYPT, MOROCCO = "Dozen People Entered Egypt", "Morocco Evacuates"
# business/007 and business/253 are the same article; tech/342 is tech/048 with a full stop
# added; business/214 is unrelated.
REPUBLISHED = ("business/007.txt", "business/253.txt", "tech/048.txt", "tech/342.txt")
UNRELATED = "business/214.txt"
BBC_QUERIES = SHARED / "eval" / "bbc_dev_queries.jsonl"
EVIDENCE_QUERIES = 16  # of the 40: enough cases, and a small index to build


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in spans)


# Evidence


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_result_points_at_one_or_two_adjacent_sentences_of_its_text(
    searcher: Searcher, mode: str
) -> None:
    response = searcher.search(SearchRequest(query="people leaving their homes", k=10, mode=mode))
    assert response.results
    for result in response.results:
        sentences = sentence_spans(result.text) or [(0, len(result.text))]
        chosen = [(e.start, e.end) for e in result.evidence]
        assert 1 <= len(chosen) <= 2 and all(span in sentences for span in chosen)
        if len(chosen) == 2:
            assert sentences.index(chosen[1]) == sentences.index(chosen[0]) + 1


@pytest.fixture(scope="module")
def bbc_answers(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[Searcher, list[LabelledQuery]]]:
    """The BBC dev queries with answers deep inside their passages (the seed labels are all
    lead sentences), and an index of the articles that hold those answers."""
    queries = load_queries(shared(BBC_QUERIES))[:EVIDENCE_QUERIES]
    articles = {path.read_bytes(): path for path in sorted(shared(BBC).rglob("*.txt"))}
    root = tmp_path_factory.mktemp("bbc-answers")
    seeds = root / "seeds"
    seeds.mkdir()
    for data, path in articles.items():
        text = data.decode("utf-8", errors="replace")
        if any(relevant in text for query in queries for relevant in query.relevant):
            shutil.copy(path, seeds / f"{path.parent.name}-{path.name}")
    settings = Settings(seeds_dir=seeds, index_dir=root / "index")
    build_index(settings, embedder=embedder)
    opened = Searcher.open(IndexStore(settings.index_dir), embedder)
    yield opened, queries
    opened.close()


def test_evidence_finds_the_labelled_answer_more_often_than_the_lead_sentence(
    bbc_answers: tuple[Searcher, list[LabelledQuery]],
) -> None:
    """Over the relevant passages of two or more sentences that the dev queries find, the
    evidence covers the labelled words far more often than the first sentence does."""
    searcher, queries = bbc_answers
    evidence_hits = lead_hits = cases = 0
    for labelled in queries:
        response = searcher.search(SearchRequest(query=labelled.query, k=10, mode="dense"))
        for result in response.results:
            sentences = sentence_spans(result.text)
            for relevant in labelled.relevant:
                start = result.text.find(relevant)
                if start < 0 or len(sentences) < 2:
                    continue
                cases += 1
                end = start + len(relevant)
                evidence_hits += _overlaps([(e.start, e.end) for e in result.evidence], start, end)
                lead_hits += _overlaps(sentences[:1], start, end)
    assert cases >= 8
    assert evidence_hits / cases >= 0.6 and evidence_hits >= lead_hits + cases / 4


def test_a_neighbour_sentence_joins_the_evidence_only_when_nearly_as_good() -> None:
    scored = [(0, 10, 0.20), (11, 30, 0.61), (31, 50, 0.60), (51, 60, 0.59)]
    assert best_sentences(scored) == [(11, 30), (31, 50)]
    assert best_sentences([(0, 10, 0.2), (11, 30, 0.6), (31, 50, 0.4)]) == [(11, 30)]
    assert best_sentences([]) == []


# Dates


def test_results_and_articles_carry_the_date_their_captions_give(
    stand_in_searcher: Searcher,
) -> None:
    published = {
        r.title: r.published
        for r in stand_in_searcher.search(
            SearchRequest(query="Gaza Egypt Morocco Lebanon", k=40)
        ).results
    }
    assert published[next(t for t in published if t.startswith(EGYPT))] == "2026-02-02"
    assert published[next(t for t in published if t.startswith(MOROCCO))] == "2026-02-01"
    assert any(date is None for date in published.values())  # the other two give none
    result = stand_in_searcher.search(SearchRequest(query="flood evacuations", k=1)).results[0]
    article = stand_in_searcher.article(result.article_id)
    assert article is not None and article.published == "2026-02-01"


@pytest.mark.parametrize(
    ("date_from", "date_to", "titles"),
    [
        ("2026-02-02", None, {EGYPT}),
        (None, "2026-02-01", {MOROCCO}),
        ("2026-02-01", "2026-02-02", {EGYPT, MOROCCO}),
        ("2026-02-03", None, set()),
    ],
)
def test_date_filters_are_inclusive_and_drop_undated_articles(
    stand_in_searcher: Searcher, date_from: str | None, date_to: str | None, titles: set[str]
) -> None:
    for mode in ("hybrid", "dense", "lexical"):
        request = SearchRequest.model_validate(
            {"query": "people", "k": 50, "mode": mode, "min_score": -10,
             "filters": {"date_from": date_from, "date_to": date_to}}
        )  # fmt: skip
        found = {r.title for r in stand_in_searcher.search(request).results}
        assert {t for t in titles if any(f.startswith(t) for f in found)} == titles
        assert all(any(f.startswith(t) for t in titles) for f in found)


@pytest.mark.parametrize(
    "dates",
    [
        {"date_from": "2026-02-30"},
        {"date_from": "1 February 2026"},
        {"date_to": "2026-2-1"},
        {"date_to": 20260201},
    ],
)
def test_bad_dates_are_refused(dates: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Filters.model_validate(dates)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_an_inverted_range_is_valid_and_matches_nothing_with_a_note(
    stand_in_searcher: Searcher, mode: str
) -> None:
    """No schema can state date_from <= date_to, so the request is valid: an empty answer
    that says why, whatever else it asks for."""
    request = SearchRequest.model_validate(
        {"query": "people", "k": 50, "mode": mode, "min_score": -10,
         "filters": {"date_from": "2026-02-02", "date_to": "2026-02-01"}}
    )  # fmt: skip
    response = stand_in_searcher.search(request)
    assert response.results == [] and response.note is not None
    assert re.search(r"date_from\b.* after .*\bdate_to\b", response.note), response.note


def test_a_valid_range_is_kept_as_dates() -> None:
    filters = Filters.model_validate({"date_from": "2026-02-01", "date_to": "2026-02-01"})
    assert filters.date_from == filters.date_to == datetime.date(2026, 2, 1)


# Near-duplicates


@pytest.fixture(scope="module")
def republished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    """The seed file with two BBC articles that were published twice, and one that was not,
    built by the stand-in model: grouping compares the passages' text, not their vectors."""
    root = tmp_path_factory.mktemp("republished")
    seeds = new_corpus(root / "seeds")
    for name in (*REPUBLISHED, UNRELATED):
        target = seeds / name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(shared(BBC) / name, target)
    settings = Settings(seeds_dir=seeds, index_dir=root / "index")
    build_index(settings, embedder=HashEmbedder())
    opened = open_stand_in(settings.index_dir)
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("query", "copies"),
    [
        ("US jobs growth and unemployment rate", REPUBLISHED[:2]),
        ("European Commission software patents law", REPUBLISHED[2:]),
    ],
)
def test_a_passage_published_twice_is_shown_once_with_its_other_source(
    republished: Searcher, query: str, copies: tuple[str, str]
) -> None:
    results = republished.search(SearchRequest(query=query, k=10)).results
    top = results[0]
    assert top.source in copies and top.duplicates == 1
    assert top.duplicate_sources == [next(c for c in copies if c != top.source)]
    texts = [" ".join(r.text.split()).casefold() for r in results]
    assert len(texts) == len(set(texts))  # no passage twice
    everything = republished.search(SearchRequest(query=query, k=10, dedupe=False)).results
    assert {r.source for r in everything if r.text == top.text} == set(copies)
    assert all(r.duplicates == 0 and r.duplicate_sources == [] for r in everything)


def test_duplicates_count_only_members_that_pass_the_filters(republished: Searcher) -> None:
    request = SearchRequest.model_validate(
        {"query": "US jobs growth", "k": 5, "filters": {"source": [REPUBLISHED[0], UNRELATED]}}
    )
    results = republished.search(request).results
    assert results and all(r.duplicates == 0 for r in results)
    assert {r.source for r in results} <= {REPUBLISHED[0], UNRELATED}


def test_unrelated_articles_and_repeats_inside_an_article_are_not_duplicates(
    republished: Searcher,
) -> None:
    results = republished.search(SearchRequest(query="Gaza ceasefire talks", k=20)).results
    assert all(r.duplicates == 0 for r in results if not r.source.startswith(("business", "tech")))
    unrelated = SearchRequest.model_validate(
        {"query": "company profits", "k": 10, "min_score": -10, "filters": {"source": UNRELATED}}
    )
    assert all(r.duplicates == 0 for r in republished.search(unrelated).results)
