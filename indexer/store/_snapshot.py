"""A published snapshot opened for reading: vectors in memory, per-row arrays memory-mapped,
chunk rows on disk."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from indexer.chunk import Chunk
from indexer.errors import SnapshotError
from indexer.faults import fault_point
from indexer.parse import Span
from indexer.store._chunks import NO_FILTER, ChunkFilter, ChunkTable, write_chunks
from indexer.store._columns import RowColumns, SentenceSpans, article_vectors
from indexer.store._files import fsync_path, write_atomically
from indexer.store._manifest import ARTICLE_VECTORS, ROW_ARRAYS, DataFile, Manifest
from indexer.store._vectors import VectorIndex, Within, _one_thread, write_vectors

VECTORS_FILE = "vectors.faiss"
CHUNKS_FILE = "chunks.sqlite"
MANIFEST_FILE = "manifest.json"
SENTENCES_FILE = "sentences.npy"
ARTICLES_FILE = "articles.npy"  # one vector per article, in ``RowColumns.article_ids`` order
# What every query looks up by row, memory-mapped (``RowColumns``, ``SentenceSpans``).
COLUMNS_FILE = "columns.npy"
COLUMN_NAMES_FILE = "columns.json"
SENTENCE_SPANS_FILE = "sentence_spans.npy"
ROW_ARRAY_FILES = (COLUMNS_FILE, COLUMN_NAMES_FILE, SENTENCE_SPANS_FILE)
# Written after the manifest, by the build's quality gate; not part of the manifest's record.
GATE_FILE = "gate.json"
DATA_FILES = (VECTORS_FILE, CHUNKS_FILE, SENTENCES_FILE, ARTICLES_FILE, *ROW_ARRAY_FILES)
SNAPSHOT_FILES = (*DATA_FILES, MANIFEST_FILE)
_READ_BLOCK = 1 << 20


def data_files(manifest: Manifest) -> tuple[str, ...]:
    """The data files a snapshot holds: those before article vectors hold no ``articles.npy``,
    those before row arrays no ``ROW_ARRAY_FILES``."""
    return tuple(
        name
        for name in DATA_FILES
        if (name != ARTICLES_FILE or manifest.article_vectors)
        and (name not in ROW_ARRAY_FILES or manifest.row_arrays)
    )


def describe_files(directory: Path) -> list[DataFile]:
    """Size and sha256 of each data file in ``directory``, as it is on disk now."""
    return [
        DataFile(name, (directory / name).stat().st_size, _sha256(directory / name))
        for name in DATA_FILES
    ]


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check_files(directory: Path, manifest: Manifest, digests: bool) -> None:
    """Raise ``SnapshotError`` naming the first data file whose size (and, with ``digests``,
    sha256) differs from the manifest's record, or that is missing."""
    if {f.name for f in manifest.data_files} != set(data_files(manifest)):
        raise SnapshotError(f"snapshot {directory.name}: the manifest records no sizes or digests")
    for record in manifest.data_files:
        path = directory / record.name
        try:
            size = path.stat().st_size
        except OSError as error:
            raise SnapshotError(
                f"snapshot {directory.name}: {record.name} is missing ({error.strerror})"
            ) from None
        if size != record.size:
            raise SnapshotError(
                f"snapshot {directory.name}: {record.name} is {size} bytes, the manifest says "
                f"{record.size}"
            )
        if digests and _sha256(path) != record.sha256:
            raise SnapshotError(
                f"snapshot {directory.name}: {record.name} does not match its sha256"
            )


@dataclass(frozen=True)
class SnapshotContents:
    """What a snapshot holds beside its chunk rows and their vectors."""

    duplicate_of: Sequence[int | None]  # per row: the first row of its duplicate group
    sentences: Sequence[tuple[int, int, int]]  # (row, start, end), in sentence-vector order
    sentence_vectors: np.ndarray

    @classmethod
    def empty(cls, rows: int, dimension: int) -> SnapshotContents:
        """No duplicates and no sentence vectors."""
        return cls([None] * rows, [], np.zeros((0, dimension), dtype=np.float32))


def write_snapshot(
    directory: Path,
    manifest: Manifest,
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    contents: SnapshotContents | None = None,
) -> Manifest:
    """Write a complete snapshot into the new ``directory``, fsync it and check it against
    the digests its manifest records. Returns the manifest as written (with its files' sizes
    and digests); ``Snapshot(directory)`` reads it back."""
    contents = contents or SnapshotContents.empty(len(chunks), vectors.shape[1])
    directory.mkdir(parents=True)
    write_vectors(directory / VECTORS_FILE, vectors, manifest.index)
    fault_point("vectors", directory / VECTORS_FILE)
    write_chunks(directory / CHUNKS_FILE, chunks, contents.duplicate_of, contents.sentences)
    fault_point("chunks", directory / CHUNKS_FILE)
    _write_sentence_vectors(directory / SENTENCES_FILE, contents.sentence_vectors)
    fault_point("sentences", directory / SENTENCES_FILE)
    columns = RowColumns.from_rows(
        (chunk.article_id, group, chunk.published, chunk.source, chunk.kind)
        for chunk, group in zip(chunks, contents.duplicate_of, strict=True)
    )
    columns.save(directory / COLUMNS_FILE, directory / COLUMN_NAMES_FILE)
    SentenceSpans.of(contents.sentences).save(directory / SENTENCE_SPANS_FILE)
    np.save(
        directory / ARTICLES_FILE,
        article_vectors(columns.article, vectors, len(columns.article_ids)),
    )
    for name in DATA_FILES:
        fsync_path(directory / name)
    manifest = replace(
        manifest, article_vectors=ARTICLE_VECTORS, row_arrays=ROW_ARRAYS,
        data_files=describe_files(directory),
    )  # fmt: skip
    (directory / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    fault_point("manifest", directory / MANIFEST_FILE)
    fsync_path(directory / MANIFEST_FILE)
    fsync_path(directory)
    fsync_path(directory.parent)  # the new directory's entry must survive a crash too
    # Read back from disk: what a server will load is what was meant to be written.
    check_files(directory, manifest, digests=True)
    return manifest


def _write_sentence_vectors(path: Path, vectors: np.ndarray) -> None:
    """Sentence vectors in half precision: they only pick a passage's best sentence."""
    with path.open("wb") as handle:
        np.save(handle, np.asarray(vectors, dtype=np.float16))


@dataclass(frozen=True)
class GateRecord:
    """The quality gate's figure for the snapshot it scored, kept beside it: a later gate
    compares with it when it cannot score that snapshot itself (after a model change), but
    only for the same query file."""

    queries_sha256: str  # the labelled query file the figure was measured on
    mrr_at_10: float
    tolerance: float
    model_fingerprint: str


def write_gate_record(directory: Path, record: GateRecord) -> None:
    """Write ``gate.json``, bound to this snapshot and its manifest by id and digest."""
    bound = {"snapshot_id": directory.name, "manifest_sha256": _sha256(directory / MANIFEST_FILE)}
    write_atomically(directory / GATE_FILE, json.dumps(bound | asdict(record), indent=2) + "\n")


def read_gate_record(directory: Path) -> GateRecord | None:
    """The snapshot's gate record; None when it was never gated, ``SnapshotError`` when the
    record is damaged or belongs to another snapshot or manifest."""
    path = directory / GATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        bound = (data.pop("snapshot_id"), data.pop("manifest_sha256"))
        record = GateRecord(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise SnapshotError(
            f"snapshot {directory.name}: {GATE_FILE} is damaged ({error})"
        ) from None
    if bound != (directory.name, _sha256(directory / MANIFEST_FILE)):
        raise SnapshotError(f"snapshot {directory.name}: {GATE_FILE} belongs to another snapshot")
    return record


def read_manifest(directory: Path) -> Manifest:
    try:
        return Manifest.from_json((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SnapshotError(f"cannot read snapshot {directory.name}: {error}") from error


class Snapshot:
    """Typed reads over one immutable snapshot; safe to share between request threads."""

    def __init__(self, directory: Path) -> None:
        self.manifest = read_manifest(directory)
        if self.manifest.snapshot_id != directory.name:
            raise SnapshotError(
                f"snapshot {directory.name} holds the manifest of {self.manifest.snapshot_id}"
            )
        check_files(directory, self.manifest, digests=False)  # cheap: sizes only
        self._chunks = self._open_chunks(directory)
        self._sentence_vectors = _NO_SENTENCE_VECTORS
        self._sentences = _NO_SENTENCES
        self.columns = _NO_COLUMNS
        self._articles: np.ndarray | None = None
        try:
            self._vectors = VectorIndex(directory / VECTORS_FILE, self.manifest.index)
            self._sentence_vectors = np.load(directory / SENTENCES_FILE, mmap_mode="r")
            self.columns, self._sentences = self._open_row_arrays(directory)
            self._articles = self._open_articles(directory)
            if len(self._vectors) != self.manifest.chunks:
                raise SnapshotError(
                    f"snapshot {directory.name} holds {len(self._vectors)} vectors for "
                    f"{self.manifest.chunks} chunks"
                )
        except (OSError, RuntimeError, ValueError, sqlite3.Error) as error:  # FAISS: RuntimeError
            self.close()
            raise SnapshotError(f"cannot open snapshot {directory.name}: {error}") from error
        except BaseException:
            self.close()  # nothing of a snapshot that cannot open stays open
            raise

    def _open_row_arrays(self, directory: Path) -> tuple[RowColumns, SentenceSpans]:
        """The per-row arrays, memory-mapped; read from the chunk table for a snapshot
        written before they had files of their own."""
        sentences = len(self._sentence_vectors)
        if not self.manifest.row_arrays:
            return self._chunks.columns(), SentenceSpans.of(self._chunks.all_sentences())
        return (
            RowColumns.load(
                directory / COLUMNS_FILE, directory / COLUMN_NAMES_FILE, self.manifest.chunks
            ),
            SentenceSpans.load(directory / SENTENCE_SPANS_FILE, sentences),
        )

    def _open_articles(self, directory: Path) -> np.ndarray | None:
        """The article vectors, memory-mapped and searched exactly (an article is many
        passages, so there are few enough); None for a snapshot from before them."""
        if not self.manifest.article_vectors:
            return None
        vectors: np.ndarray = np.load(directory / ARTICLES_FILE, mmap_mode="r")
        if vectors.shape != (len(self.columns.article_ids), self.manifest.dimension):
            raise SnapshotError(
                f"snapshot {directory.name} holds {vectors.shape[0]} article vectors for "
                f"{len(self.columns.article_ids)} articles"
            )
        return vectors

    @staticmethod
    def _open_chunks(directory: Path) -> ChunkTable:
        try:
            return ChunkTable(directory / CHUNKS_FILE)
        except (OSError, sqlite3.Error) as error:
            raise SnapshotError(f"cannot open snapshot {directory.name}: {error}") from error

    @property
    def id(self) -> str:
        return self.manifest.snapshot_id

    @property
    def closed(self) -> bool:
        return self._chunks.closed

    def nearest(
        self, vector: np.ndarray, depth: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """Rows closest to a query vector, best first (among ``allowed`` rows when given)."""
        return self._vectors.nearest(vector, depth, allowed)

    def within(
        self, vector: np.ndarray, bar: float, allowed: Sequence[int] | None = None
    ) -> Within:
        """Every row (among ``allowed`` when given) whose cosine to a query vector is at least
        ``bar``; ``exhaustive`` says whether an approximate index's depth bound was reached."""
        return self._vectors.within(vector, bar, allowed)

    def similarities(self, vector: np.ndarray, rows: Sequence[int]) -> dict[int, float]:
        """Exact cosine of a query vector to each given row."""
        return self._vectors.similarities(vector, rows)

    def article_vector(self, article: int) -> np.ndarray:
        """The vector of an article (a code of ``columns.article_ids``), shaped as a query's
        (one row). ``SnapshotError`` for a snapshot built before article vectors."""
        if self._articles is None:
            raise SnapshotError(
                f"snapshot {self.id} was built before article vectors; rebuild it with "
                "`python -m indexer build`"
            )
        return np.array(self._articles[article], dtype=np.float32).reshape(1, -1)

    def nearest_articles(self, vector: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """The ``depth`` articles (codes) whose vectors are closest to ``vector``, best first."""
        if self._articles is None:
            raise SnapshotError(f"snapshot {self.id} was built before article vectors")
        with _one_thread():
            scores, found = faiss.knn(
                np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32), self._articles,
                min(depth, len(self._articles)), metric=faiss.METRIC_INNER_PRODUCT,
            )  # fmt: skip
        return [(int(a), float(s)) for a, s in zip(found[0], scores[0], strict=True) if a >= 0]

    def lexical(
        self, terms: Sequence[str], depth: int, chunk_filter: ChunkFilter = NO_FILTER
    ) -> list[tuple[int, float]]:
        """Rows matching any term, by bm25, best first, among rows passing the filter."""
        return self._chunks.lexical(terms, depth, chunk_filter)

    def rows_passing(self, chunk_filter: ChunkFilter) -> list[int] | None:
        """Row ids passing the filter, or None when it filters nothing."""
        return self._chunks.rows_passing(chunk_filter) if chunk_filter.active else None

    def article(self, article_id: str) -> list[Chunk]:
        """An article's passages in reading order; empty when there is no such article."""
        return self._chunks.article(article_id)

    def rows(self, row_ids: Sequence[int]) -> dict[int, Chunk]:
        return self._chunks.rows(row_ids)

    def highlighted_rows(
        self, row_ids: Sequence[int], terms: Sequence[str]
    ) -> dict[int, tuple[Chunk, list[Span]]]:
        """Chunks by row id, each with the offsets of the terms (stemmed as the lexical
        search stems them) in its text: one statement."""
        return self._chunks.highlighted_rows(row_ids, terms)

    def embedded_texts(self) -> list[str]:
        """The text each vector was computed from, in row order."""
        return self._chunks.embedded_texts()

    def article_ids(self, row_ids: Sequence[int]) -> dict[int, str]:
        codes, names = self.columns.article, self.columns.article_ids
        return {row: names[codes[row]] for row in row_ids}

    def dated_articles(self) -> int:
        """How many of the snapshot's articles have a publication date."""
        return self.columns.dated_articles()

    def group_members(
        self, groups: Sequence[int], allowed: np.ndarray | None = None
    ) -> dict[int, list[tuple[int, str]]]:
        """Every member (row, source) of these duplicate groups, by group; among the
        ``allowed`` rows when given."""
        columns = self.columns
        members = columns.group_members(groups)
        if allowed is not None:
            every = np.asarray([row for rows in members.values() for row in rows], dtype=np.int64)
            kept = set(every[np.isin(every, allowed)].tolist())
            members = {group: [r for r in rows if r in kept] for group, rows in members.items()}
        return {
            group: [(row, columns.sources[columns.source[row]]) for row in rows]
            for group, rows in members.items()
        }

    def sentence_scores(
        self, vector: np.ndarray, row_ids: Sequence[int]
    ) -> dict[int, list[tuple[int, int, float]]]:
        """Each sentence's (start, end, cosine to ``vector``) in the rows that hold two or
        more sentences; single-sentence rows are left out."""
        sentences = self._sentences.of_rows(row_ids)
        numbers = [n for found in sentences.values() for n, _, _ in found]
        if not numbers:
            return {}
        scores = dict(
            zip(
                numbers,
                (self._sentence_vectors[numbers] @ vector.reshape(-1)).tolist(),
                strict=True,
            )
        )
        return {
            row: [(start, end, float(scores[n])) for n, start, end in found]
            for row, found in sentences.items()
        }

    def time_limit(self, seconds: float | None) -> contextlib.AbstractContextManager[None]:
        """Within the block, this thread's reads stop with ``QueryTimeoutError`` after
        ``seconds`` (None: no limit)."""
        return self._chunks.time_limit(seconds)

    def check_time(self) -> None:
        """Raise ``QueryTimeoutError`` if this thread's time limit has passed."""
        self._chunks.check_time()

    def close(self) -> None:
        """Release the chunk database and the mapped arrays (each mapping holds a file
        descriptor); the snapshot answers nothing more."""
        self._chunks.close()
        self._sentence_vectors = _NO_SENTENCE_VECTORS
        self._sentences = _NO_SENTENCES
        self.columns = _NO_COLUMNS
        self._articles = None


# What a closed snapshot (or one that failed to open) holds instead of its mapped files.
_NO_SENTENCE_VECTORS = np.zeros((0, 0), dtype=np.float16)
_NO_SENTENCES = SentenceSpans.of([])
_NO_COLUMNS = RowColumns.from_rows([])
