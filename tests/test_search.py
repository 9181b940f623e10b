"""The Searcher over the seed index: its pure behaviour (modes, paging, filters, collapse,
min_score, highlights, explain, "no good match", safety) on the stand-in model, in
milliseconds; its ranking and its off-topic judgement on the real model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.embed import Embedder
from indexer.errors import ModelMismatchError
from indexer.settings import Settings
from indexer.store import IndexStore
from indexer.store._chunks import match_expression, parse_highlighted
from search_api.evaluation import load_queries
from search_api.models import Filters, SearchRequest
from search_api.ranking import (
    ARTICLE_WEIGHT_LONG,
    LEXICAL_WEIGHT_LONG,
    LEXICAL_WEIGHT_SHORT,
    article_weight,
    convex_fusion,
    lexical_weight,
    query_terms,
)
from search_api.searcher import NO_MATCH_NOTE, Searcher

FLOOD_LEAD = "Morocco has evacuated more than 50,000 people"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_mode_finds_the_moroccan_flood_evacuations(searcher: Searcher, mode: str) -> None:
    response = searcher.search(SearchRequest(query="flood evacuations", k=3, mode=mode))
    assert response.mode == mode and len(response.results) == 3
    assert response.results[0].title.startswith("Morocco Evacuates")
    assert "evacuat" in response.results[0].text
    assert [r.rank for r in response.results] == [1, 2, 3]
    assert response.results[0].score >= response.results[-1].score


def test_the_default_mode_puts_the_flood_lead_in_the_top_three(searcher: Searcher) -> None:
    texts = [r.text for r in searcher.search(SearchRequest(query="flood evacuations", k=3)).results]
    assert any(t.startswith(FLOOD_LEAD) for t in texts)


def test_highlights_mark_query_words_and_their_stems(stand_in_searcher: Searcher) -> None:
    response = stand_in_searcher.search(
        SearchRequest(query="flood evacuations", k=5, mode="lexical")
    )
    lead = next(r for r in response.results if r.text.startswith(FLOOD_LEAD))
    marked = [lead.text[h.start : h.end].lower() for h in lead.highlights]
    assert "evacuated" in marked  # porter stemming: evacuations ~ evacuated
    plain = stand_in_searcher.search(SearchRequest(query="flood evacuations", k=5, highlight=False))
    assert all(r.highlights == [] for r in plain.results)


def test_filters_keep_only_the_chosen_article(stand_in_searcher: Searcher) -> None:
    top = stand_in_searcher.search(SearchRequest(query="Hezbollah disarmament", k=1)).results[0]
    unfiltered = stand_in_searcher.search(
        SearchRequest(query="army deployed", k=10, mode="lexical")
    ).results
    assert len({r.article_id for r in unfiltered}) > 1
    for mode in ("hybrid", "dense", "lexical"):
        request = SearchRequest(
            query="army deployed", k=10, mode=mode, filters=Filters(article_id=top.article_id)
        )
        results = stand_in_searcher.search(request).results
        assert results and {r.article_id for r in results} == {top.article_id}, mode
    missing = SearchRequest(query="flood", filters=Filters(source=["nowhere.txt"]))
    assert stand_in_searcher.search(missing).results == []


def test_collapse_returns_one_passage_per_article(stand_in_searcher: Searcher) -> None:
    passages = stand_in_searcher.search(SearchRequest(query="Gaza ceasefire", k=100))
    collapsed = stand_in_searcher.search(SearchRequest(query="Gaza ceasefire", k=10, collapse=True))
    assert passages.total_articles >= 3
    assert collapsed.total == collapsed.total_articles == passages.total_articles
    assert (
        len(collapsed.results)
        == len({r.article_id for r in collapsed.results})
        == min(10, collapsed.total)
    )
    # Each article is represented by its most relevant passage.
    best = {}
    for result in passages.results:
        best.setdefault(result.article_id, result.chunk_id)
    assert {r.article_id: r.chunk_id for r in collapsed.results} == {
        a: best[a] for a in {r.article_id for r in collapsed.results}
    }


def test_min_score_drops_weak_results(stand_in_searcher: Searcher) -> None:
    everything = stand_in_searcher.search(
        SearchRequest(query="flood evacuations", k=20, mode="dense")
    ).results
    threshold = everything[4].score
    kept = stand_in_searcher.search(
        SearchRequest(query="flood evacuations", k=20, mode="dense", min_score=threshold)
    ).results
    assert len(kept) >= 5 and all(r.score >= threshold for r in kept)
    assert len(kept) < len(everything)


@settings(max_examples=60, deadline=None)
@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40
    )
)
def test_lexical_search_never_raises_on_any_query(stand_in_searcher: Searcher, query: str) -> None:
    if not query.strip():
        return
    stand_in_searcher.search(SearchRequest(query=query, k=5, mode="lexical"))


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "NEAR(a b)",
        'NEAR(flood, "evacuations) OR dam*',
        "a AND OR NOT",
        "col:umn",
        "*",
        "^start",
        "-",
        "((",
    ],
)
def test_fts_syntax_in_queries_is_plain_text(stand_in_searcher: Searcher, query: str) -> None:
    # FTS5 operators and quotes are ignored: the lexical list is what the bare words find.
    words = " ".join(re.findall(r"\w+", query))
    found = stand_in_searcher.search(SearchRequest(query=query, mode="lexical")).results
    if not words:
        assert found == []
        return
    plain = stand_in_searcher.search(SearchRequest(query=words, mode="lexical")).results
    assert [r.chunk_id for r in found] == [r.chunk_id for r in plain]
    assert found or "flood" not in query  # the words still match as words


def test_a_snapshot_from_another_model_is_refused(
    stand_in_settings: Settings, tmp_path: Path
) -> None:
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    with pytest.raises(ModelMismatchError, match="rebuild the index"):
        Searcher.open(IndexStore(stand_in_settings.index_dir), Embedder(str(other)))


def test_fts_query_quotes_words_and_drops_stopwords() -> None:
    assert match_expression(query_terms('what is "NEAR" the dam?')) == '"near" OR "dam"'
    assert match_expression(query_terms("the")) == '"the"'
    assert match_expression(query_terms("?!")) is None


def test_convex_fusion_adds_the_normalised_lexical_score_to_the_cosine() -> None:
    rows, cosines = np.array([1, 2, 3]), np.array([0.50, 0.45, 0.30])
    fused = convex_fusion(rows, cosines, [(3, 8.0), (2, 4.0)], weight=0.2)
    assert fused.rows.tolist() == [2, 1, 3]  # 0.55, 0.50 (tie with 3 broken by cosine)
    assert fused.scores[2] == pytest.approx(0.30 + 0.2)
    plain = convex_fusion(rows, cosines, [], weight=2.0)
    assert plain.rows.tolist() == [1, 2, 3] and plain.scores.tolist() == cosines.tolist()


def test_a_passage_shares_its_articles_best_lexical_match() -> None:
    articles = np.array([9, 0, 0, 1, 2])  # by row: rows 1 and 2 are article 0
    rows, cosines = np.array([1, 2, 3, 4]), np.array([0.5, 0.4, 0.3, 0.2])
    fused = convex_fusion(rows, cosines, [(2, 10.0), (3, 5.0)], 0.0, articles, 0.2)
    boosts = dict(zip(fused.rows.tolist(), fused.article_boosts.tolist(), strict=True))
    assert boosts == pytest.approx({1: 0.2, 2: 0.2, 3: 0.1, 4: 0.0})  # article 2: no match
    fused = convex_fusion(rows[:2], cosines[:2], [(2, 10.0)], 0.2, articles, 0.2)
    assert dict(zip(fused.rows.tolist(), fused.scores.tolist(), strict=True)) == pytest.approx(
        {1: 0.7, 2: 0.8}
    )


def test_only_long_queries_credit_the_article(stand_in_searcher: Searcher) -> None:
    assert article_weight(query_terms("flood evacuations")) == 0.0
    long_query = "how many people did Morocco evacuate from the flooded city"
    assert article_weight(query_terms(long_query)) == ARTICLE_WEIGHT_LONG > 0
    explained = stand_in_searcher.search(SearchRequest(query=long_query, k=5, explain=True)).results
    assert all(r.explain and r.explain.article_boost > 0 for r in explained[:1])
    for result in explained:
        assert result.explain is not None and result.explain.dense_score is not None
        lexical = (
            LEXICAL_WEIGHT_LONG
            * (result.explain.lexical_score or 0)
            / max(r.explain.lexical_score or 0 for r in explained if r.explain)
        )
        assert result.score >= result.explain.dense_score + result.explain.article_boost - 1e-6
        assert (
            result.score
            <= result.explain.dense_score + result.explain.article_boost + lexical + 1e-5
        )
    short = stand_in_searcher.search(
        SearchRequest(query="flood evacuations", k=5, explain=True)
    ).results
    assert all(r.explain and r.explain.article_boost == 0 for r in short)


def test_keyword_queries_lean_on_lexical_matches_and_questions_on_meaning() -> None:
    assert lexical_weight(query_terms("flood evacuations")) == LEXICAL_WEIGHT_SHORT
    question = "what led the TV watchdog to scrutinise the music channel?"
    assert lexical_weight(query_terms(question)) == LEXICAL_WEIGHT_LONG < LEXICAL_WEIGHT_SHORT


def test_highlight_markers_become_offsets() -> None:
    text, spans = parse_highlighted("a \ue000flood\ue001 and \ue000dam\ue001")
    assert text == "a flood and dam"
    assert [text[start:end] for start, end in spans] == ["flood", "dam"]


OFF_TOPIC = ROOT / "tests" / "data" / "off_topic_queries.txt"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_an_off_topic_query_gets_no_results_and_a_note(
    stand_in_searcher: Searcher, mode: str
) -> None:
    response = stand_in_searcher.search(
        SearchRequest(query="quantum chromodynamics lattice", mode=mode)
    )
    assert response.results == [] and response.note == NO_MATCH_NOTE
    assert (
        "note"
        not in stand_in_searcher.search(SearchRequest(query="flood evacuations")).model_dump()
    )
    # An explicit min_score replaces the check (lexical still needs a word to match); the note
    # comes exactly with an empty list.
    explicit = SearchRequest(query="quantum chromodynamics lattice", mode=mode, min_score=-1.0)
    answered = stand_in_searcher.search(explicit)
    assert bool(answered.results) == (mode != "lexical") == (answered.note is None)


def test_every_dev_query_keeps_its_results_and_most_off_topic_queries_do_not(
    searcher: Searcher, seed_queries: Path
) -> None:
    dev = [q.query for q in load_queries(seed_queries)]
    assert all(searcher.search(SearchRequest(query=q)).results for q in dev)
    off_topic = [line for line in OFF_TOPIC.read_text().splitlines() if line.strip()]
    emptied = [q for q in off_topic if not searcher.search(SearchRequest(query=q)).results]
    assert len(off_topic) >= 20 and len(emptied) >= 0.9 * len(off_topic)


def test_explain_shows_each_list_and_the_fused_score(stand_in_searcher: Searcher) -> None:
    hybrid = stand_in_searcher.search(
        SearchRequest(query="flood evacuations", k=5, explain=True)
    ).results
    top = hybrid[0].explain
    assert top is not None and top.fused_score == hybrid[0].score
    assert top.dense_rank is not None and top.lexical_rank is not None
    assert top.dense_score is not None and top.lexical_score is not None
    assert top.fused_score >= top.dense_score  # the lexical share only adds
    dense = stand_in_searcher.search(
        SearchRequest(query="flood evacuations", k=3, mode="dense", explain=True)
    ).results
    assert all(r.explain and r.explain.dense_score == r.score for r in dense)
    assert all(r.explain and r.explain.lexical_rank is None for r in dense)
    plain = stand_in_searcher.search(SearchRequest(query="flood evacuations", k=3))
    assert all("explain" not in r for r in plain.model_dump()["results"])


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_offset_pages_through_the_same_ranking(stand_in_searcher: Searcher, mode: str) -> None:
    first = stand_in_searcher.search(SearchRequest(query="army deployed", k=6, mode=mode)).results
    page = stand_in_searcher.search(
        SearchRequest(query="army deployed", k=3, offset=3, mode=mode)
    ).results
    assert [r.chunk_id for r in page] == [r.chunk_id for r in first[3:6]]
    assert [r.rank for r in page] == [4, 5, 6]


def test_the_stand_in_model_finds_shared_words_and_nothing_for_off_topic_queries(
    stand_in_searcher: Searcher,
) -> None:
    """The stand-in's cosines mean something, so its "no good match" tests do: the queries
    those tests ask find passages, and no off-topic query does."""
    for query in ("flood evacuations", "Gaza", "army deployed", "Gaza Egypt Morocco Lebanon"):
        assert stand_in_searcher.search(SearchRequest(query=query)).results, query
    off_topic = [line for line in OFF_TOPIC.read_text().splitlines() if line.strip()]
    assert [q for q in off_topic if stand_in_searcher.search(SearchRequest(query=q)).results] == []
