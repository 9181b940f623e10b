"""``chunks.sqlite``: chunk rows in vector order, and an FTS5 table over titles and texts.

Every SQL statement on a snapshot's chunk database is here. Row ``n`` of the table holds the
chunk whose vector is number ``n`` in ``vectors.faiss``; its ``duplicate_of`` names the first
row of its near-duplicate group (NULL when it has none). Sentence ``n`` of the ``sentences``
table (passages of two or more sentences only) has vector ``n`` in ``sentences.npy``.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.chunk import Chunk
from indexer.errors import QueryTimeoutError
from indexer.parse import Span
from indexer.store._columns import RowColumns

CHUNK_COLUMNS = (
    "id", "article_id", "kind", "title", "text", "embed_text", "source", "start", "end", "position",
    "published",
)  # fmt: skip
# bm25 column weights (title, text): equal; docs/quality.md has the weights measured.
BM25_WEIGHTS = "1.0, 1.0"
# SQLite's default limit on host parameters in one statement is 32766; stay well under it.
_PARAMETER_BATCH = 500
_PROGRESS_STEPS = 10_000  # SQLite virtual machine steps between deadline checks
# Private-use characters that FTS5's highlight() wraps matched terms in.
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKS = re.compile(f"([{_OPEN}{_CLOSE}])")
_TEXT_MATCHING = "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?"


@dataclass(frozen=True)
class ChunkFilter:
    """Keep only chunks from these sources or articles, published within these ISO dates
    (inclusive; chunks without a date fail a date condition), whose text holds every one of
    ``phrases`` and none of ``excluded`` (as FTS5 tokenizes them: case and diacritics aside,
    stemmed). None or (): no condition."""

    sources: tuple[str, ...] | None = None
    article_ids: tuple[str, ...] | None = None
    published_from: str | None = None
    published_to: str | None = None
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.phrases or self.excluded) or any(
            value is not None
            for value in (self.sources, self.article_ids, self.published_from, self.published_to)
        )

    def sql(self) -> tuple[str, list[str]]:
        """An SQL condition on the chunks table (TRUE when there are no filters)."""
        conditions, parameters = ["1"], list[str]()
        for column, values in (("source", self.sources), ("article_id", self.article_ids)):
            if values is not None:
                conditions.append(f"chunks.{column} IN ({_marks(len(values))})")
                parameters += values
        # ISO dates compare as strings; NULL compares as unknown, so undated chunks drop out.
        for operator, bound in ((">=", self.published_from), ("<=", self.published_to)):
            if bound is not None:
                conditions.append(f"chunks.published {operator} ?")
                parameters.append(bound)
        for test, terms, operator in (("IN", self.phrases, "AND"), ("NOT IN", self.excluded, "OR")):
            match = match_expression(terms, operator, column="text")
            if match is not None:
                conditions.append(f"chunks.row {test} ({_TEXT_MATCHING})")
                parameters.append(match)
        return " AND ".join(conditions), parameters


NO_FILTER = ChunkFilter()


def _marks(count: int) -> str:
    return ",".join("?" * count)


def match_expression(
    terms: Sequence[str], operator: str = "OR", column: str | None = None
) -> str | None:
    """An FTS5 MATCH expression joining the terms with ``operator`` (``OR``, ``AND``), each
    quoted so no user text is read as FTS5 syntax (a term of several words is a phrase) and,
    with ``column``, matched in that column only. None when there are no terms."""
    within = f"{column} : " if column else ""
    quoted = [within + '"' + term.replace('"', '""') + '"' for term in dict.fromkeys(terms) if term]
    return f" {operator} ".join(quoted) or None


def write_chunks(
    path: Path,
    chunks: Sequence[Chunk],
    duplicate_of: Sequence[int | None],
    sentences: Sequence[tuple[int, int, int]],
) -> None:
    """Write the chunk rows (with each one's duplicate group) and the sentence table, whose
    entries are (chunk row, start, end) in sentence-vector order."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute(
                "CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT UNIQUE, article_id TEXT,"
                " kind TEXT, title TEXT, text TEXT, embed_text TEXT, source TEXT,"
                " start INTEGER, end INTEGER, position INTEGER, published TEXT,"
                " duplicate_of INTEGER)"
            )
            db.executemany(
                f"INSERT INTO chunks VALUES (?, {_marks(len(CHUNK_COLUMNS) + 1)})",
                (
                    (row, *(getattr(c, col) for col in CHUNK_COLUMNS), group)
                    for row, (c, group) in enumerate(zip(chunks, duplicate_of, strict=True))
                ),
            )
            db.execute("CREATE INDEX chunks_source ON chunks(source)")
            db.execute("CREATE INDEX chunks_article ON chunks(article_id)")
            db.execute("CREATE INDEX chunks_published ON chunks(published)")
            db.execute("CREATE INDEX chunks_duplicate ON chunks(duplicate_of)")
            db.execute(
                "CREATE TABLE sentences (sentence INTEGER PRIMARY KEY, row INTEGER,"
                " start INTEGER, end INTEGER)"
            )
            db.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?)",
                ((n, *sentence) for n, sentence in enumerate(sentences)),
            )
            db.execute("CREATE INDEX sentences_row ON sentences(row)")
            # Porter stemming lets "evacuations" match "evacuated".
            db.execute(
                "CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, content='chunks',"
                " content_rowid='row', tokenize='porter unicode61 remove_diacritics 2')"
            )
            db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
    finally:
        db.close()


def parse_highlighted(marked: str) -> tuple[str, list[Span]]:
    """Strip highlight marks from ``highlight()`` output, returning offsets instead."""
    plain: list[str] = []
    spans: list[Span] = []
    length = opened = 0
    for piece in _MARKS.split(marked):
        if piece == _OPEN:
            opened = length
        elif piece == _CLOSE:
            spans.append(Span(opened, length))
        else:
            plain.append(piece)
            length += len(piece)
    return "".join(plain), spans


def _highlights(marked: str | None, text: str) -> list[Span]:
    """The offsets ``highlight()`` marked in ``text``; none when the row did not match."""
    if marked is None:
        return []
    plain, offsets = parse_highlighted(marked)
    # A passage containing the marker characters itself would shift the offsets.
    return offsets if plain == text else []


def _chunk(values: Sequence[Any]) -> Chunk:
    return Chunk(**dict(zip(CHUNK_COLUMNS, values, strict=True)))


def read_chunks_of(path: Path, sources: set[str]) -> dict[str, list[Chunk]]:
    """The chunks of ``sources`` as the database stores them, in reading order."""
    found: dict[str, list[Chunk]] = {source: [] for source in sources}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"SELECT {', '.join(CHUNK_COLUMNS)} FROM chunks ORDER BY row")
        for row in rows:
            chunk = _chunk(row)
            if chunk.source in found:
                found[chunk.source].append(chunk)
    finally:
        db.close()
    return found


def read_embedded_texts(path: Path) -> list[str]:
    """The text each chunk of a snapshot that is not open was embedded from, in row order."""
    table = ChunkTable(path)
    try:
        return table.embedded_texts()
    finally:
        table.close()


class ChunkTable:
    """Typed reads from one snapshot's chunk database, shared by request threads.

    Each thread reads through its own read-only connection, so concurrent requests never
    queue on one. Open handles keep working even after pruning deletes the directory."""

    def __init__(self, path: Path) -> None:
        self._uri = f"file:{path}?mode=ro"
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # guards _opened and closed
        self.closed = False
        self._connection().execute("SELECT count(*) FROM chunks").fetchone()  # fail now

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            with self._lock:
                if self.closed:
                    raise sqlite3.ProgrammingError("the snapshot is closed")
                db = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
                # Every few thousand steps SQLite asks whether to stop: past the calling
                # thread's deadline (set by ``time_limit``) the statement is interrupted.
                db.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)
                self._opened.append(db)
            self._local.db = db
        return db

    def _past_deadline(self) -> int:
        deadline: float | None = getattr(self._local, "deadline", None)
        return int(deadline is not None and time.monotonic() > deadline)

    @contextlib.contextmanager
    def time_limit(self, seconds: float | None) -> Iterator[None]:
        """Reads in this thread stop with ``QueryTimeoutError`` once ``seconds`` have passed."""
        self._local.deadline = None if seconds is None else time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.deadline = None

    def check_time(self) -> None:
        """Raise ``QueryTimeoutError`` if this thread's time limit has passed."""
        if self._past_deadline():
            raise QueryTimeoutError("the search ran past its time limit")

    def _all(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        try:
            return self._connection().execute(sql, parameters).fetchall()
        except sqlite3.OperationalError as error:
            if self._past_deadline():  # interrupted by the progress handler
                raise QueryTimeoutError("the search ran past its time limit") from error
            raise

    def _in_batches(self, sql: str, values: Sequence[object]) -> Iterator[Any]:
        """Run ``sql`` (with one ``{marks}`` list) over ``values`` a batch at a time."""
        for offset in range(0, len(values), _PARAMETER_BATCH):
            batch = list(values[offset : offset + _PARAMETER_BATCH])
            yield from self._all(sql.format(marks=_marks(len(batch))), batch)

    def rows(self, row_ids: Sequence[int]) -> dict[int, Chunk]:
        """Chunks by row id; ids with no row are left out."""
        columns = ", ".join(f'"{c}"' for c in CHUNK_COLUMNS)
        found = self._in_batches(
            f"SELECT row, {columns} FROM chunks WHERE row IN ({{marks}})", row_ids
        )
        return {int(r[0]): _chunk(r[1:]) for r in found}

    def highlighted_rows(
        self, row_ids: Sequence[int], terms: Sequence[str]
    ) -> dict[int, tuple[Chunk, list[Span]]]:
        """Chunks by row id with the offsets of the terms (as FTS5 stems them) in each text,
        in one statement per batch: the rows, left-joined to FTS5's ``highlight()`` of those
        among them that match."""
        match = match_expression(terms)
        if match is None:
            return {row: (chunk, []) for row, chunk in self.rows(row_ids).items()}
        columns = ", ".join(f'chunks."{c}"' for c in CHUNK_COLUMNS)
        found: dict[int, tuple[Chunk, list[Span]]] = {}
        for offset in range(0, len(row_ids), _PARAMETER_BATCH):
            batch = list(row_ids[offset : offset + _PARAMETER_BATCH])
            marks = _marks(len(batch))
            statement = (
                f"SELECT chunks.row, {columns}, marked.text FROM chunks LEFT JOIN"
                " (SELECT rowid AS row, highlight(chunks_fts, 1, ?, ?) AS text FROM chunks_fts"
                f" WHERE chunks_fts MATCH ? AND rowid IN ({marks})) AS marked"
                f" ON marked.row = chunks.row WHERE chunks.row IN ({marks})"
            )
            for values in self._all(statement, [_OPEN, _CLOSE, match, *batch, *batch]):
                chunk, marked = _chunk(values[1:-1]), values[-1]
                found[int(values[0])] = (chunk, _highlights(marked, chunk.text))
        return found

    def embedded_texts(self) -> list[str]:
        """The text each chunk was embedded from, in row order."""
        return [str(r[0]) for r in self._all("SELECT embed_text FROM chunks ORDER BY row")]

    def columns(self) -> RowColumns:
        """Every row's article, duplicate group, date, source and kind, in one read."""
        return RowColumns.from_rows(
            self._all(
                "SELECT article_id, duplicate_of, published, source, kind FROM chunks ORDER BY row"
            )
        )

    def article(self, article_id: str) -> list[Chunk]:
        """An article's chunks in reading order (captions, then paragraphs; windows by offset)."""
        columns = ", ".join(f'"{c}"' for c in CHUNK_COLUMNS)
        found = self._all(
            f"SELECT {columns} FROM chunks WHERE article_id = ? ORDER BY position, start, row",
            [article_id],
        )
        return [_chunk(row) for row in found]

    def all_sentences(self) -> list[tuple[int, int, int]]:
        """Every sentence's (row, start, end), in sentence order (for snapshots written
        before ``sentence_spans.npy``)."""
        found = self._all("SELECT row, start, end FROM sentences ORDER BY sentence")
        return [(int(row), int(start), int(end)) for row, start, end in found]

    def rows_passing(self, chunk_filter: ChunkFilter) -> list[int]:
        condition, parameters = chunk_filter.sql()
        return [
            int(r[0]) for r in self._all(f"SELECT row FROM chunks WHERE {condition}", parameters)
        ]

    def lexical(
        self, terms: Sequence[str], depth: int, chunk_filter: ChunkFilter
    ) -> list[tuple[int, float]]:
        """The best ``depth`` rows matching any of the terms, by bm25 (higher is better)."""
        match = match_expression(terms)
        if match is None:
            return []
        condition, parameters = chunk_filter.sql()
        # The join only serves filters; without one it doubles the statement's time.
        join = " JOIN chunks ON chunks.row = chunks_fts.rowid" if chunk_filter.active else ""
        found = self._all(
            f"SELECT chunks_fts.rowid, -bm25(chunks_fts, {BM25_WEIGHTS}) FROM chunks_fts{join}"
            f" WHERE chunks_fts MATCH ? AND {condition}"
            f" ORDER BY bm25(chunks_fts, {BM25_WEIGHTS}) LIMIT ?",
            [match, *parameters, depth],
        )
        return [(int(row), float(score)) for row, score in found]

    def close(self) -> None:
        """Close every thread's connection; callers make sure no read is still running."""
        with self._lock:
            self.closed = True
            opened, self._opened = self._opened, []
        for db in opened:
            db.close()
