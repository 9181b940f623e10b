"""Per-row attributes a search needs for its whole matching set, held as arrays.

A search counts, dedupes, sorts and facets every passage that matches, not only the page it
shows, so these lookups run over hundreds or thousands of rows per query: arrays indexed by
row answer them without a statement per batch of rows. A snapshot keeps them in files of
their own (``columns.npy``, ``columns.json``, ``sentence_spans.npy``), memory-mapped when it
is opened, so opening one reads no rows and every worker shares the same pages.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

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

    article: np.ndarray  # index into article_ids
    article_ids: tuple[str, ...]
    group: np.ndarray  # the near-duplicate group's first row, or the row itself
    day: np.ndarray  # the publication date's proleptic ordinal, or UNDATED
    month: np.ndarray  # year * 12 + month - 1, or UNDATED
    source: np.ndarray  # index into sources
    sources: tuple[str, ...]
    kind: np.ndarray  # index into kinds
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

    def save(self, numbers: Path, names: Path) -> None:
        """Write the per-row numbers as one int64 array (a row per attribute) to ``numbers``
        and the names they index to ``names`` (JSON)."""
        stacked = np.stack([self.article, self.group, self.day, self.month, self.source, self.kind])
        with numbers.open("wb") as handle:
            np.save(handle, stacked.astype(np.int64))
        lists = {"article_ids": self.article_ids, "sources": self.sources, "kinds": self.kinds}
        names.write_text(json.dumps(lists, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, numbers: Path, names: Path, rows: int) -> RowColumns:
        """What ``save`` wrote, the numbers memory-mapped; ``ValueError`` if they are not
        ``rows`` long."""
        mapped = np.load(numbers, mmap_mode="r")
        if mapped.shape != (6, rows):
            raise ValueError(f"{numbers.name} holds shape {mapped.shape}, not (6, {rows})")
        try:
            lists = json.loads(names.read_text(encoding="utf-8"))
        except ValueError as error:  # not UTF-8, or not JSON
            raise ValueError(f"{names.name} is damaged ({error})") from None
        article, group, day, month, source, kind = mapped
        return cls(
            article=article, article_ids=tuple(lists["article_ids"]), group=group, day=day,
            month=month, source=source, sources=tuple(lists["sources"]), kind=kind,
            kinds=tuple(lists["kinds"]),
        )  # fmt: skip

    @cached_property
    def _duplicate_rows(self) -> np.ndarray:
        """The rows that belong to another row's group (few: only near-duplicates)."""
        found: np.ndarray = np.flatnonzero(self.group != np.arange(len(self.group)))
        return found

    def group_members(self, groups: Sequence[int]) -> dict[int, list[int]]:
        """Every row of each of these near-duplicate groups (given by their first rows), in
        row order."""
        duplicates = self._duplicate_rows
        members = duplicates[np.isin(self.group[duplicates], np.asarray(groups, dtype=np.int64))]
        found = {int(group): [int(group)] for group in groups}
        for row in members.tolist():
            found[int(self.group[row])].append(row)
        return {group: sorted(rows) for group, rows in found.items()}

    @cached_property
    def _by_article(self) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers ordered by article (ascending within one), and their article codes."""
        order = np.argsort(self.article, kind="stable")
        return order, self.article[order]

    def article_rows(self, article: int) -> np.ndarray:
        """The rows of ``article`` (a code of ``article_ids``), ascending."""
        order, codes = self._by_article
        first, last = np.searchsorted(codes, [article, article + 1])
        rows: np.ndarray = order[first:last]
        return rows

    def dated_articles(self) -> int:
        """How many articles have a publication date."""
        return len(np.unique(self.article[self.day != UNDATED]))

    def duplicate_articles(self, article: int) -> np.ndarray:
        """The articles (codes, ascending) that duplicate ``article``: every passage of each
        shares a near-duplicate group with a passage of ``article``. The article itself is
        not among them. Two copies of one story are duplicates of each other; an article
        that quotes some of another's paragraphs beside its own is not a duplicate of it."""
        groups = np.unique(self.group[self.article_rows(article)])
        members = [row for rows in self.group_members(groups.tolist()).values() for row in rows]
        candidates = np.setdiff1d(self.article[members], [article])
        found = [
            code
            for code in candidates.tolist()
            if np.isin(self.group[self.article_rows(code)], groups).all()
        ]
        return np.asarray(found, dtype=np.int64)

    def article_code(self, article_id: str) -> int | None:
        """The number of ``article_id`` in ``article_ids``, or None when there is none."""
        at = bisect.bisect_left(self.article_ids, article_id)  # np.unique sorted them
        found = at < len(self.article_ids) and self.article_ids[at] == article_id
        return at if found else None


@dataclass(frozen=True)
class SentenceSpans:
    """Where each evidence sentence lies: sentence ``n`` (vector ``n`` of ``sentences.npy``)
    is ``text[start[n]:end[n]]`` of chunk row ``row[n]``; sentences are in row order."""

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @classmethod
    def of(cls, sentences: Sequence[tuple[int, int, int]]) -> SentenceSpans:
        """From (row, start, end) in sentence order, which a build gives in row order."""
        spans = np.asarray(sentences, dtype=np.int64).reshape(-1, 3)
        if np.any(np.diff(spans[:, 0]) < 0):
            raise ValueError("sentences must be in row order")
        return cls(spans[:, 0], spans[:, 1], spans[:, 2])

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.save(handle, np.stack([self.row, self.start, self.end]).astype(np.int64))

    @classmethod
    def load(cls, path: Path, sentences: int) -> SentenceSpans:
        """What ``save`` wrote, memory-mapped; ``ValueError`` unless it holds ``sentences``."""
        mapped = np.load(path, mmap_mode="r")
        if mapped.shape != (3, sentences):
            raise ValueError(f"{path.name} holds shape {mapped.shape}, not (3, {sentences})")
        row, start, end = mapped
        return cls(row, start, end)

    def of_rows(self, rows: Sequence[int]) -> dict[int, list[tuple[int, int, int]]]:
        """Each row's sentences as (sentence number, start, end), for rows that have them."""
        firsts = np.searchsorted(self.row, rows, side="left").tolist()
        lasts = np.searchsorted(self.row, rows, side="right").tolist()
        return {
            int(row): [(n, int(self.start[n]), int(self.end[n])) for n in range(first, last)]
            for row, first, last in zip(rows, firsts, lasts, strict=True)
            if last > first
        }


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
