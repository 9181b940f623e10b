"""Pure ranking helpers: query syntax, lexical query terms, score fusion, evidence sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.parse import Span

# Queries of at most this many content words count as keyword queries (see lexical_weight).
SHORT_QUERY_TERMS = 4
LEXICAL_WEIGHT_SHORT = 2.0
LEXICAL_WEIGHT_LONG = 0.2
# Long queries also credit a passage with its article's best lexical match (see article_boosts).
ARTICLE_WEIGHT_LONG = 0.2
# A neighbour sentence this close to the best one in cosine is part of the answer too.
EVIDENCE_MARGIN = 0.03
_WORD = re.compile(r"\w+")
# Words that match nearly every passage add cost to the lexical search and no signal.
STOPWORDS = frozenset(
    """
    a an and are as at be by for from has have how in is it its of on or that the this to was
    were what when where which who why will with
    """.split()
)


# A "quoted phrase" (optionally -"excluded"), or a -word: a minus at the start of the query or
# after whitespace, then a letter (so "two-state" and "-20 degrees" stay as typed), up to the
# next whitespace or quote mark. Quote marks pair left to right; a last odd one is literal.
_SYNTAX = re.compile(r'(?P<minus>(?<!\S)-)?"(?P<phrase>[^"]*)"|(?<!\S)-(?P<word>[^\W\d_][^\s"]*)')
_ALPHANUMERIC = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class ParsedQuery:
    """A query's text to rank by (for the model and bm25), the phrases a passage's text must
    hold and the words or phrases it must not."""

    text: str
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


def parse_query(query: str) -> ParsedQuery:
    """Read ``"a phrase"`` (required in a passage's text) and ``-word`` or ``-"a phrase"``
    (excluded) out of a query; everything else, FTS5 operators included, is literal text.

    The text keeps the phrases' words without their quote marks and drops the exclusions. A
    query with no quote marks and no exclusions is its own text, unchanged. A query left with
    no words to rank by (``-flood``) is read literally, as typed, like any syntax that cannot
    apply: passages have nothing else to be ranked by, and an answer beats an error."""
    phrases: list[str] = []
    excluded: list[str] = []

    def replace(found: re.Match[str]) -> str:
        phrase = found["phrase"]
        if phrase is None:
            excluded.append(found["word"])
            return " "
        phrase = " ".join(phrase.split())
        if found["minus"]:
            if _ALPHANUMERIC.search(phrase):
                excluded.append(phrase)
            return " "
        if _ALPHANUMERIC.search(phrase):  # a phrase of punctuation holds no FTS5 token
            phrases.append(phrase)
        return f" {phrase} "

    rest = _SYNTAX.sub(replace, query)
    if rest == query:
        return ParsedQuery(query)
    text = " ".join(rest.split())
    if not _ALPHANUMERIC.search(text):
        return ParsedQuery(query)
    return ParsedQuery(text, tuple(dict.fromkeys(phrases)), tuple(dict.fromkeys(excluded)))


def query_terms(query: str) -> list[str]:
    """The query's distinct lower-cased words for lexical search, without stopwords (unless
    the query is nothing but stopwords)."""
    words = [w.lower() for w in _WORD.findall(query)]
    content = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(content))


def lexical_weight(terms: Sequence[str]) -> float:
    """How much the lexical list counts against the dense one for this query.

    Short keyword queries ("flood evacuations") are answered by the passages that hold the
    words; longer questions and claims by meaning, where exact words mislead. Chosen by 5-fold
    cross-validation over the dev sets and SciFact's train split (docs/quality.md)."""
    return LEXICAL_WEIGHT_SHORT if len(terms) <= SHORT_QUERY_TERMS else LEXICAL_WEIGHT_LONG


def article_weight(terms: Sequence[str]) -> float:
    """How much a passage's article's best lexical match counts for this query.

    Long questions and claims name what the whole article is about in words its individual
    passages may lack; keyword queries gain nothing from it. Chosen by cross-validation over
    the dev sets and SciFact's train split (docs/quality.md)."""
    return 0.0 if len(terms) <= SHORT_QUERY_TERMS else ARTICLE_WEIGHT_LONG


@dataclass(frozen=True)
class Fused:
    """Candidates in fused order: each one's fused score, cosine and article boost."""

    rows: np.ndarray  # int64
    scores: np.ndarray
    cosines: np.ndarray
    article_boosts: np.ndarray


def convex_fusion(
    rows: np.ndarray,
    cosines: np.ndarray,
    lexical: Sequence[tuple[int, float]],
    weight: float,
    articles: np.ndarray | None = None,
    article_weight: float = 0.0,
) -> Fused:
    """Fuse by score: cosine + ``weight`` x bm25 / the query's best bm25 + the article boost
    (``article_weight`` x the best normalised bm25 among the lexical list's passages of the
    candidate's article, by ``articles[row]``), best first; ties go to the higher cosine.

    ``rows`` (distinct) and ``cosines`` hold every candidate, lexical-only ones included.
    Unlike rank fusion, the fused score keeps the absolute signal of the cosine."""
    best = max((score for _, score in lexical), default=0.0)
    shares = np.zeros(len(rows))
    boosts = np.zeros(len(rows))
    if best > 0 and len(rows):
        lexical_rows = np.asarray([row for row, _ in lexical], dtype=np.int64)
        normalised = np.asarray([score for _, score in lexical]) / best
        order = np.argsort(rows)
        at = order[np.searchsorted(rows, lexical_rows, sorter=order)]
        held = rows[at] == lexical_rows  # the lexical rows that are candidates
        shares[at[held]] = weight * normalised[held]
        if articles is not None and article_weight > 0:
            best_of_article = np.zeros(int(articles.max()) + 1)
            np.maximum.at(best_of_article, articles[lexical_rows], normalised)
            boosts = article_weight * best_of_article[articles[rows]]
    scores = cosines + shares + boosts
    ranked = np.lexsort((rows, -cosines, -scores))
    return Fused(rows[ranked], scores[ranked], cosines[ranked], boosts[ranked])


def best_sentences(
    scored: Sequence[tuple[int, int, float]], margin: float = EVIDENCE_MARGIN
) -> list[Span]:
    """The span of the best-scoring sentence, and of a neighbour scoring within
    ``margin`` of it (an answer often runs over two sentences), in reading order."""
    if not scored:
        return []
    best = max(range(len(scored)), key=lambda i: (scored[i][2], -i))
    chosen = [best]
    neighbours = [i for i in (best - 1, best + 1) if 0 <= i < len(scored)]
    runner_up = max(neighbours, key=lambda i: scored[i][2], default=None)
    if runner_up is not None and scored[runner_up][2] >= scored[best][2] - margin:
        chosen.append(runner_up)
    return [Span(scored[i][0], scored[i][1]) for i in sorted(chosen)]
