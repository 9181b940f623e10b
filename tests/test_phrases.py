"""Query syntax: "a phrase" a passage's text must hold, -word it must not, everything else
literal. Pure parsing, searches on the stand-in model in every mode, and the real server."""

from __future__ import annotations

import re

import pytest
from conftest import Server
from test_api import get

from indexer.store import ChunkFilter
from indexer.store._chunks import match_expression
from search_api.models import SearchRequest, SearchResponse
from search_api.ranking import ParsedQuery, parse_query
from search_api.searcher import Searcher

MODES = ["hybrid", "dense", "lexical"]

# Pure parsing


def test_a_quoted_phrase_is_required_and_a_minus_word_excluded() -> None:
    assert parse_query('"Strait of Hormuz" shipping -iran') == ParsedQuery(
        "Strait of Hormuz shipping", phrases=("Strait of Hormuz",), excluded=("iran",)
    )


def test_a_query_without_quotes_or_exclusions_is_its_own_text_unchanged() -> None:
    for query in ["flood evacuations", "what  is the\tdam?", "COVID-19 in 2020", "x - y"]:
        assert parse_query(query) == ParsedQuery(query)


def test_hyphens_inside_words_are_literal() -> None:
    for query in ["anti-spyware tools", "Ksar el-Kebir", "a two-state solution", "e-mail -"]:
        assert parse_query(query) == ParsedQuery(query)


def test_only_a_minus_at_the_start_or_after_whitespace_then_a_letter_excludes() -> None:
    assert parse_query("rain -flood\t-storms").excluded == ("flood", "storms")
    assert parse_query("temperatures of -20 degrees") == ParsedQuery("temperatures of -20 degrees")
    assert parse_query("rain --flood") == ParsedQuery("rain --flood")
    assert parse_query("oil -anti-spyware") == ParsedQuery("oil", excluded=("anti-spyware",))


def test_a_minus_before_a_phrase_excludes_the_phrase() -> None:
    assert parse_query('oil -"Strait of Hormuz"') == ParsedQuery(
        "oil", excluded=("Strait of Hormuz",)
    )


def test_a_minus_inside_a_phrase_is_literal() -> None:
    assert parse_query('"the -20 line" weather') == ParsedQuery(
        "the -20 line weather", phrases=("the -20 line",)
    )


def test_quote_marks_pair_left_to_right_and_an_odd_last_one_is_literal() -> None:
    assert parse_query('"unbalanced') == ParsedQuery('"unbalanced')
    assert parse_query('"') == ParsedQuery('"')
    assert parse_query('a "b  c" d"') == ParsedQuery('a b c d"', phrases=("b c",))


def test_a_phrase_of_no_words_is_no_condition() -> None:
    assert parse_query('"" flood') == ParsedQuery("flood")
    assert parse_query('"?!" flood') == ParsedQuery("?! flood")


def test_fts5_operators_are_literal_text() -> None:
    for query in ["NEAR(a b)", "a*", "^start", "title: gaza", "(x OR y) AND NOT z", "-"]:
        assert parse_query(query) == ParsedQuery(query)
    assert parse_query('"NEAR(a b)" OR') == ParsedQuery("NEAR(a b) OR", phrases=("NEAR(a b)",))


def test_a_query_of_only_exclusions_is_read_literally() -> None:
    for query in ["-flood", "-flood -rain", '-"Strait of Hormuz"', '"?!" -flood']:
        assert parse_query(query) == ParsedQuery(query)


def test_unicode_words_are_phrases_and_exclusions_too() -> None:
    assert parse_query('"São Paulo" -Zürich') == ParsedQuery(
        "São Paulo", phrases=("São Paulo",), excluded=("Zürich",)
    )
    assert parse_query("Ελλάδα -Αθήνα").excluded == ("Αθήνα",)


def test_phrases_and_exclusions_become_quoted_conditions_on_the_text_column() -> None:
    condition, parameters = ChunkFilter(phrases=('a "b', "c"), excluded=("NEAR(x",)).sql()
    assert condition == (
        "1 AND chunks.row IN (SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?)"
        " AND chunks.row NOT IN (SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?)"
    )
    assert parameters == ['text : "a ""b" AND text : "c"', 'text : "NEAR(x"']
    assert ChunkFilter(excluded=("x",)).active
    assert match_expression(["a", "b"]) == '"a" OR "b"'  # the lexical list's, as before


# Searches on the stand-in model


def _search(searcher: Searcher, query: str, mode: str) -> SearchResponse:
    return searcher.search(
        SearchRequest(query=query, mode=mode, k=100, facets=["source", "month"])  # type: ignore[arg-type]
    )


def _holds(text: str, words: str) -> bool:
    """Whether the text holds the words in a row, case aside (as FTS5 tokenizes them)."""
    pattern = r"\W+".join(re.escape(word) for word in words.split())
    return re.search(rf"\b{pattern}", text, re.IGNORECASE) is not None


def _agree(response: SearchResponse) -> None:
    assert response.total == len(response.results)
    for facet in ("source", "month"):
        assert sum(f.count for f in response.facets[facet]) == response.total  # type: ignore[index]


@pytest.mark.parametrize("mode", MODES)
def test_a_phrase_keeps_only_passages_whose_text_holds_it(
    stand_in_searcher: Searcher, mode: str
) -> None:
    plain = _search(stand_in_searcher, "prime minister", mode)
    phrased = _search(stand_in_searcher, '"Prime Minister"', mode)
    assert any(not _holds(r.text, "prime minister") for r in plain.results)
    assert phrased.results and all(_holds(r.text, "prime minister") for r in phrased.results)
    assert {r.chunk_id for r in phrased.results} == {
        r.chunk_id for r in plain.results if _holds(r.text, "prime minister")
    }
    _agree(phrased)


@pytest.mark.parametrize("mode", MODES)
def test_a_phrase_must_be_in_the_text_not_only_the_title(
    stand_in_searcher: Searcher, mode: str
) -> None:
    phrased = _search(stand_in_searcher, '"Gaza"', mode)
    assert phrased.results and all(_holds(r.text, "gaza") for r in phrased.results)
    if mode == "lexical":  # bm25 also matches titles: some passages hold Gaza in theirs only
        plain = _search(stand_in_searcher, "Gaza", mode)
        assert any(not _holds(r.text, "gaza") for r in plain.results)


@pytest.mark.parametrize("mode", MODES)
def test_an_exclusion_removes_the_passages_holding_the_word(
    stand_in_searcher: Searcher, mode: str
) -> None:
    plain = _search(stand_in_searcher, "gaza ceasefire", mode)
    excluding = _search(stand_in_searcher, "gaza ceasefire -Hezbollah", mode)
    assert any(_holds(r.text, "hezbollah") for r in plain.results)
    assert excluding.results
    assert not any(_holds(r.text, "hezbollah") for r in excluding.results)
    _agree(excluding)


@pytest.mark.parametrize("mode", MODES)
def test_a_phrase_and_an_exclusion_together(stand_in_searcher: Searcher, mode: str) -> None:
    response = _search(stand_in_searcher, '"prime minister" -gaza', mode)
    assert response.results
    for result in response.results:
        assert _holds(result.text, "prime minister") and not _holds(result.text, "gaza")
    _agree(response)


@pytest.mark.parametrize("mode", MODES)
def test_odd_syntax_searches_as_literal_text(stand_in_searcher: Searcher, mode: str) -> None:
    for query in ['"unbalanced', "NEAR(a b)", "a*", "-", '"', "x:y", "(gaza", "^gaza", '""']:
        _agree(_search(stand_in_searcher, query, mode))
    assert (
        _search(stand_in_searcher, "-flood", mode).total
        == _search(stand_in_searcher, "flood", mode).total
    )


def test_the_response_echoes_the_query_as_typed(stand_in_searcher: Searcher) -> None:
    assert _search(stand_in_searcher, '"Prime Minister" -gaza', "hybrid").query == (
        '"Prime Minister" -gaza'
    )


# The real model, through the server


def test_the_server_answers_phrases_exclusions_and_odd_syntax(server: Server) -> None:
    response = get(server, "/search", q='"Gaza" ceasefire -Hezbollah', k=50)
    assert response.status_code == 200
    body = response.json()
    assert body["results"]
    for result in body["results"]:
        assert _holds(result["text"], "gaza") and not _holds(result["text"], "hezbollah")
    for query in ['"unbalanced', "NEAR(a b)", "a*", "-", '"', "-flood", "a AND NOT b"]:
        for mode in MODES:
            odd = get(server, "/search", q=query, mode=mode)
            assert odd.status_code in (200, 422), (query, mode, odd.text)
            if odd.status_code == 422:
                assert odd.json()["detail"]
