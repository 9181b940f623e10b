"""The matching set's pure logic: which passages match, their representatives, their order
under a date sort or a recency preference, and their counts. Arrays in, arrays out; no I/O.

A search ranks every passage that matches, so ``total``, the facets and the date order all
describe one set, and paging through the results ends exactly at ``total``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from indexer.settings import (
    DEFAULT_MATCH_THRESHOLD,
    DEFAULT_NO_MATCH_THRESHOLD,
    DEFAULT_RECENCY_WEIGHT,
    DEFAULT_WORD_MATCH_THRESHOLD,
    Settings,
)
from indexer.store import UNDATED, RowColumns, month_name

Facet = Literal["month", "source", "kind"]
FACETS: tuple[Facet, ...] = get_args(Facet)
UNDATED_MONTH = "undated"


@dataclass(frozen=True)
class MatchRules:
    """When a query has any match (its best passage's cosine clears ``no_match_threshold``;
    0 turns the check off), which passages match it (cosine at least ``match_threshold``, or in
    hybrid mode a fused score at least ``word_match_threshold`` for the best word matches),
    and how much a recency preference weighs."""

    no_match_threshold: float = DEFAULT_NO_MATCH_THRESHOLD
    match_threshold: float = DEFAULT_MATCH_THRESHOLD
    word_match_threshold: float = DEFAULT_WORD_MATCH_THRESHOLD
    recency_weight: float = DEFAULT_RECENCY_WEIGHT

    @classmethod
    def from_settings(cls, settings: Settings) -> MatchRules:
        return cls(
            settings.no_match_threshold, settings.match_threshold,
            settings.word_match_threshold, settings.recency_weight,
        )  # fmt: skip


DEFAULT_RULES = MatchRules()


def first_of_each(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The rows (in their order) that come first among those sharing a key: each
    near-duplicate group's or article's most relevant passage, when ``rows`` is in relevance
    order and ``keys[i]`` is the group or article of ``rows[i]``."""
    _, first = np.unique(keys, return_index=True)
    return rows[np.sort(first)]


def recency_factors(
    days: np.ndarray, reference_day: int, half_life_days: float, weight: float
) -> np.ndarray:
    """``1 + weight * 2^(-age / half_life)`` for each dated passage, age counted in days back
    from ``reference_day`` (never negative); 1 for undated ones."""
    age = np.maximum(reference_day - days.astype(np.float64), 0.0)
    factors = 1.0 + weight * np.exp2(-age / half_life_days)
    return np.where(days == UNDATED, 1.0, factors)


def reference_day(days: np.ndarray, date_to: int | None) -> int | None:
    """What a recency preference counts age from: ``date_to`` when given, else the newest
    dated passage among ``days`` (the matching set's); None when none is dated."""
    if date_to is not None:
        return date_to
    dated = days[days != UNDATED]
    return int(dated.max()) if len(dated) else None


def recency_order(scores: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Positions of relevance-ordered results by score x factor, best first; ties keep the
    relevance order."""
    return np.lexsort((np.arange(len(scores)), -(scores * factors)))


def date_order(days: np.ndarray) -> np.ndarray:
    """Positions of relevance-ordered results newest first; a day's results (and the undated
    ones, after every dated one) keep the relevance order."""
    return np.lexsort((np.arange(len(days)), -days.astype(np.int64)))


def facet_counts(facet: Facet, rows: np.ndarray, columns: RowColumns) -> list[tuple[str, int]]:
    """How many of ``rows`` fall under each value: months in calendar order with the undated
    last, sources and kinds by count (then name)."""
    if facet == "month":
        months, counts = np.unique(columns.month[rows], return_counts=True)
        named = [
            (UNDATED_MONTH if month == UNDATED else month_name(int(month)), int(count))
            for month, count in zip(months, counts, strict=True)
        ]
        # np.unique sorts UNDATED (-1) first; it belongs last.
        return named[1:] + named[:1] if len(months) and months[0] == UNDATED else named
    codes, names = (
        (columns.source, columns.sources) if facet == "source" else (columns.kind, columns.kinds)
    )
    values, counts = np.unique(codes[rows], return_counts=True)
    found = [(names[v], int(c)) for v, c in zip(values, counts, strict=True)]
    return sorted(found, key=lambda pair: (-pair[1], pair[0]))
