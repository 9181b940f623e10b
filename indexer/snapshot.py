"""The index snapshot format: one immutable directory per build, and the CURRENT pointer.

Layout of the index root::

    CURRENT                  id of the live snapshot (replaced atomically)
    snapshots/<id>/          vectors.faiss, chunks.sqlite, manifest.json
    embeddings.sqlite        the embedding cache, kept across builds
    build.lock               held by the one running build
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from indexer.chunk import Chunk

SCHEMA_VERSION = 2
VECTORS_FILE = "vectors.faiss"
CHUNKS_FILE = "chunks.sqlite"
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
SNAPSHOTS_DIR = "snapshots"
IndexType = Literal["flat", "hnsw"]
HNSW_NEIGHBOURS = 32
HNSW_SEARCH_DEPTH = 128

CHUNK_COLUMNS = (
    "id", "article_id", "kind", "title", "text", "embed_text", "source", "start", "end", "position"
)  # fmt: skip


class NoSnapshotError(FileNotFoundError):
    """There is no published snapshot to search."""

    def __init__(self, index_root: Path) -> None:
        super().__init__(f"no index at {index_root}; run python -m indexer build first")


@dataclass(frozen=True)
class SourceFile:
    path: str
    sha256: str
    articles: int
    chunks: int


@dataclass(frozen=True)
class FileError:
    file: str
    error: str


@dataclass(frozen=True)
class Manifest:
    snapshot_id: str
    model_name: str
    model_fingerprint: str
    dimension: int
    chunking: dict[str, Any]
    index_type: IndexType
    files: list[SourceFile]
    articles: int
    chunks: int
    built_at: str
    errors: list[FileError] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"unsupported snapshot schema {data.get('schema_version')!r}")
        data["files"] = [SourceFile(**f) for f in data["files"]]
        data["errors"] = [FileError(**e) for e in data.get("errors", [])]
        return cls(**data)

    def same_content(self, other: Manifest) -> bool:
        """True when both hold the same chunks and vectors and report the same file errors."""
        return (self.model_fingerprint, self.chunking, self.index_type, self.files, self.errors) == (
            other.model_fingerprint, other.chunking, other.index_type, other.files, other.errors
        )  # fmt: skip


def new_snapshot_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def snapshots_dir(index_root: Path) -> Path:
    return index_root / SNAPSHOTS_DIR


def choose_index_type(chunk_count: int, exact_search_limit: int) -> IndexType:
    return "flat" if chunk_count <= exact_search_limit else "hnsw"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _build_faiss(vectors: np.ndarray, dimension: int, index_type: IndexType) -> faiss.Index:
    if index_type == "flat":
        index = faiss.IndexFlatIP(dimension)
    else:
        index = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _write_chunks(path: Path, chunks: Sequence[Chunk]) -> None:
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute(
                "CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT UNIQUE, article_id TEXT,"
                " kind TEXT, title TEXT, text TEXT, embed_text TEXT, source TEXT,"
                " start INTEGER, end INTEGER, position INTEGER)"
            )
            db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (row, *(getattr(c, col) for col in CHUNK_COLUMNS))
                    for row, c in enumerate(chunks)
                ),
            )
            db.execute("CREATE INDEX chunks_source ON chunks(source)")
            db.execute("CREATE INDEX chunks_article ON chunks(article_id)")
            # Porter stemming lets "evacuations" match "evacuated".
            db.execute(
                "CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, content='chunks',"
                " content_rowid='row', tokenize='porter unicode61 remove_diacritics 2')"
            )
            db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
    finally:
        db.close()


def write_snapshot(
    index_root: Path, manifest: Manifest, chunks: Sequence[Chunk], vectors: np.ndarray
) -> Path:
    """Write a complete snapshot directory and fsync it; it is not live until published."""
    directory = snapshots_dir(index_root) / manifest.snapshot_id
    directory.mkdir(parents=True)
    faiss.write_index(
        _build_faiss(vectors, manifest.dimension, manifest.index_type),
        str(directory / VECTORS_FILE),
    )
    _write_chunks(directory / CHUNKS_FILE, chunks)
    (directory / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    for name in (VECTORS_FILE, CHUNKS_FILE, MANIFEST_FILE):
        _fsync(directory / name)
    _fsync(directory)
    _fsync(directory.parent)  # the new directory's entry must survive a crash too
    return directory


def read_current(index_root: Path) -> str | None:
    """The live snapshot's id, or None before the first publish."""
    try:
        return (index_root / CURRENT_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def publish(index_root: Path, snapshot_id: str) -> None:
    """Make a snapshot live: write CURRENT beside itself, fsync, then rename over it."""
    temporary = index_root / f"{CURRENT_FILE}.tmp"
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(snapshot_id + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, index_root / CURRENT_FILE)
    _fsync(index_root)


def prune(index_root: Path, keep: set[str]) -> list[str]:
    """Delete snapshot directories not in ``keep`` (including ones a killed build left)."""
    removed = []
    for directory in sorted(snapshots_dir(index_root).glob("*")):
        if directory.name not in keep:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory.name)
    return removed


def read_manifest(index_root: Path, snapshot_id: str) -> Manifest:
    path = snapshots_dir(index_root) / snapshot_id / MANIFEST_FILE
    return Manifest.from_json(path.read_text(encoding="utf-8"))


def read_chunks(index_root: Path, snapshot_id: str, sources: set[str]) -> dict[str, list[Chunk]]:
    """The chunks of ``sources`` as a snapshot stored them, in reading order."""
    found: dict[str, list[Chunk]] = {source: [] for source in sources}
    path = snapshots_dir(index_root) / snapshot_id / CHUNKS_FILE
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"SELECT {', '.join(CHUNK_COLUMNS)} FROM chunks ORDER BY row")
        for row in rows:
            chunk = Chunk(**dict(zip(CHUNK_COLUMNS, row, strict=True)))
            if chunk.source in found:
                found[chunk.source].append(chunk)
    finally:
        db.close()
    return found


def live_id(index_root: Path) -> str:
    """The live snapshot's id, or ``NoSnapshotError`` before the first publish."""
    snapshot_id = read_current(index_root)
    if snapshot_id is None:
        raise NoSnapshotError(index_root)
    return snapshot_id


def live_manifest(index_root: Path) -> Manifest:
    return read_manifest(index_root, live_id(index_root))


class Snapshot:
    """A published snapshot opened for reading: the FAISS index in memory, chunk rows on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.manifest = Manifest.from_json((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        self.index = faiss.read_index(str(directory / VECTORS_FILE))
        if self.manifest.index_type == "hnsw":
            faiss.ParameterSpace().set_index_parameter(self.index, "efSearch", HNSW_SEARCH_DEPTH)
        # One connection shared by request threads; the lock keeps its use serial. The open
        # handle keeps working even after pruning deletes the directory.
        self._db = sqlite3.connect(
            f"file:{directory / CHUNKS_FILE}?mode=ro", uri=True, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    @classmethod
    def open_live(cls, index_root: Path) -> Snapshot:
        return cls(snapshots_dir(index_root) / live_id(index_root))

    @property
    def id(self) -> str:
        return self.manifest.snapshot_id

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()
