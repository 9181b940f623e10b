"""Per-row attributes a search needs for its whole matching set, held as arrays.

A search counts, dedupes, sorts and facets every passage that matches, not only the page it
shows, so these lookups run over hundreds or thousands of rows per query: arrays indexed by
row answer them without a statement per batch of rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np

# The day and month of an undated row: below every real one, so "newest first" puts it last.
UNDATED = -1


def _codes(values: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each value's number in the sorted list of distinct values, and that list."""
    names, codes = np.unique(np.asarray(values, dtype=object), return_inverse=True)
    return codes.astype(np.int32), tuple(str(name) for name in names)


@dataclass(frozen=True)
class RowColumns:
    """Row ``n``'s article, duplicate group, date, source and kind, as numbers per row."""

    article: np.ndarray  # int32: index into article_ids
    article_ids: tuple[str, ...]
    group: np.ndarray  # int64: the near-duplicate group's first row, or the row itself
    day: np.ndarray  # int32: the publication date's proleptic ordinal, or UNDATED
    month: np.ndarray  # int32: year * 12 + month - 1, or UNDATED
    source: np.ndarray  # int32: index into sources
    sources: tuple[str, ...]
    kind: np.ndarray  # int32: index into kinds
    kinds: tuple[str, ...]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int | None, str | None, str, str]]) -> RowColumns:
        """From (article id, duplicate_of, published ISO date or None, source, kind) in row
        order, as the chunk table stores them."""
        articles, groups, days, months, sources, kinds = [], [], [], [], [], []
        for row, (article, duplicate_of, published, source, kind) in enumerate(rows):
            articles.append(article)
            groups.append(row if duplicate_of is None else duplicate_of)
            day = date.fromisoformat(published) if published else None
            days.append(day.toordinal() if day else UNDATED)
            months.append(day.year * 12 + day.month - 1 if day else UNDATED)
            sources.append(source)
            kinds.append(kind)
        article_codes, article_ids = _codes(articles)
        source_codes, source_names = _codes(sources)
        kind_codes, kind_names = _codes(kinds)
        return cls(
            article=article_codes, article_ids=article_ids,
            group=np.asarray(groups, dtype=np.int64),
            day=np.asarray(days, dtype=np.int32), month=np.asarray(months, dtype=np.int32),
            source=source_codes, sources=source_names, kind=kind_codes, kinds=kind_names,
        )  # fmt: skip

    def dated_articles(self) -> int:
        """How many articles have a publication date."""
        return len(np.unique(self.article[self.day != UNDATED]))

    def duplicate_articles(self, article: int) -> np.ndarray:
        """The articles (codes, ascending) that duplicate ``article``: every passage of each
        shares a near-duplicate group with a passage of ``article``. The article itself is
        not among them. Two copies of one story are duplicates of each other; an article
        that quotes some of another's paragraphs beside its own is not a duplicate of it."""
        groups = np.unique(self.group[self.article == article])
        in_groups = np.isin(self.group, groups)
        candidates = np.unique(self.article[in_groups])
        outside = np.unique(self.article[~in_groups])  # articles with a passage elsewhere
        found: np.ndarray = np.setdiff1d(candidates, outside)
        others: np.ndarray = found[found != article]
        return others

    def article_code(self, article_id: str) -> int | None:
        """The number of ``article_id`` in ``article_ids``, or None when there is none."""
        at = bisect.bisect_left(self.article_ids, article_id)  # np.unique sorted them
        found = at < len(self.article_ids) and self.article_ids[at] == article_id
        return at if found else None


def article_vectors(article: np.ndarray, vectors: np.ndarray, articles: int) -> np.ndarray:
    """Each article's vector: the mean of its passages' (normalised) vectors, normalised
    again, in article code order (``RowColumns.article``)."""
    sums = np.zeros((articles, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, article, np.asarray(vectors, dtype=np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    normalised: np.ndarray = (sums / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised


def month_name(month: int) -> str:
    """``YYYY-MM`` for a month number of ``RowColumns.month``."""
    year, index = divmod(month, 12)
    return f"{year:04d}-{index + 1:02d}"
