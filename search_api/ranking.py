"""Pure ranking helpers: lexical query terms, rank fusion, collapsing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

RRF_K = 60
_WORD = re.compile(r"\w+")
# Words that match nearly every passage add cost to the lexical search and no signal.
STOPWORDS = frozenset(
    """
    a an and are as at be by for from has have how in is it its of on or that the this to was
    were what when where which who why will with
    """.split()
)


def query_terms(query: str) -> list[str]:
    """The query's distinct lower-cased words for lexical search, without stopwords (unless
    the query is nothing but stopwords)."""
    words = [w.lower() for w in _WORD.findall(query)]
    content = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(content))


def reciprocal_rank_fusion(
    rankings: Iterable[Sequence[int]], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), best first.

    Ties go to the item with the better single rank, then to the earlier list."""
    scores: dict[int, float] = {}
    best: dict[int, tuple[int, int]] = {}  # item -> (best rank, index of the list giving it)
    for list_index, ranking in enumerate(rankings):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, (rank, list_index)), (rank, list_index))
    return sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]]))


def collapse_by(
    items: Sequence[tuple[int, float]], group_of: dict[int, str]
) -> list[tuple[int, float]]:
    """Keep the best-ranked item of each group, in rank order."""
    seen: set[str] = set()
    kept = []
    for item, score in items:
        if group_of[item] not in seen:
            seen.add(group_of[item])
            kept.append((item, score))
    return kept
