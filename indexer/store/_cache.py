"""``embeddings.sqlite``: vectors kept across builds, keyed by model fingerprint and text.

``vectors`` holds each text's vector; ``spans`` the vectors of its sentences (for texts of two
or more), computed in the same pass and stored as a half-precision ``.npy`` matrix. Each row
records when it was written, so pruning can spare what an interrupted build left for the next.
"""

from __future__ import annotations

import hashlib
import io
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

_BATCH = 500
_TABLES = {"vectors": "vector", "spans": "vectors"}  # table -> its blob column
# The header ``_npy`` writes: .npy version 1.0, then this dictionary padded with spaces.
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HALF_MATRIX = re.compile(
    rb"\{'descr': '<f2', 'fortran_order': False, 'shape': \((\d+), (\d+)\), \} *\n"
)


def cache_key(fingerprint: str, text: str) -> str:
    """The key of ``text`` embedded by the model with this fingerprint."""
    return fingerprint[:32] + ":" + hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    """Vectors keyed by model fingerprint + sha256 of the embedded text. Opening a file that
    is not a sound SQLite database raises ``sqlite3.DatabaseError``."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            for table, column in _TABLES.items():
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, {column} BLOB,"
                    " written REAL NOT NULL DEFAULT 0)"
                )
                columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if "written" not in columns:  # a cache from before pruning: never written since
                    self._db.execute(
                        f"ALTER TABLE {table} ADD COLUMN written REAL NOT NULL DEFAULT 0"
                    )
            if self._db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the integrity check failed")
        except sqlite3.DatabaseError:
            self._db.close()
            raise
        self._fingerprint = fingerprint

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _key(self, text: str) -> str:
        return cache_key(self._fingerprint, text)

    def _blobs(self, table: str, column: str, texts: Iterable[str]) -> Iterable[tuple[str, bytes]]:
        """(text, stored blob) for the texts that have a row in ``table``."""
        by_key = {self._key(text): text for text in texts}
        keys = list(by_key)
        for offset in range(0, len(keys), _BATCH):
            batch = keys[offset : offset + _BATCH]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT key, {column} FROM {table} WHERE key IN ({marks})", batch
            )
            for key, blob in rows:
                yield by_key[key], blob

    def get_many(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached vectors by text, for those texts that have one."""
        return {
            text: np.frombuffer(blob, dtype=np.float32)
            for text, blob in self._blobs("vectors", "vector", texts)
        }

    def get_spans(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached sentence vectors by text (one row per sentence), where there are any."""
        return {text: _matrix(blob) for text, blob in self._blobs("spans", "vectors", texts)}

    def put_many(
        self, texts: list[str], vectors: np.ndarray, spans: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """Store each text's vector, and the sentence vectors of those texts in ``spans``."""
        now = time.time()
        rows = [
            (self._key(t), v.astype(np.float32).tobytes(), now)
            for t, v in zip(texts, vectors, strict=True)
        ]
        span_rows = [(self._key(t), _npy(m), now) for t, m in (spans or {}).items()]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO spans VALUES (?, ?, ?)", span_rows)

    def prune(self, keep: Iterable[str], written_before: float) -> int:
        """Delete the entries (of any model) whose key is not in ``keep`` and that were written
        before ``written_before``; returns how many texts lost their vectors."""
        with self._db:
            self._db.execute("CREATE TEMP TABLE keep (key TEXT PRIMARY KEY)")
            self._db.executemany("INSERT OR IGNORE INTO keep VALUES (?)", ((k,) for k in keep))
            condition = "written < ? AND key NOT IN (SELECT key FROM keep)"
            removed = self._db.execute(
                f"DELETE FROM vectors WHERE {condition}", (written_before,)
            ).rowcount
            self._db.execute(f"DELETE FROM spans WHERE {condition}", (written_before,))
            self._db.execute("DROP TABLE keep")
        return removed

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def _matrix(blob: bytes) -> np.ndarray:
    """A stored sentence matrix as float32. A build reads every cached passage's, so the
    header ``_npy`` writes is matched here directly, five times faster than ``np.load`` (which
    parses any header); any other header still goes through ``np.load``."""
    if blob.startswith(_NPY_MAGIC) and len(blob) >= 10:
        data = 10 + int.from_bytes(blob[8:10], "little")
        header = _NPY_HALF_MATRIX.fullmatch(blob, 10, data)
        if header is not None:
            shape = (int(header[1]), int(header[2]))
            if len(blob) - data == 2 * shape[0] * shape[1]:
                return np.frombuffer(blob, "<f2", offset=data).reshape(shape).astype(np.float32)
    stored: np.ndarray = np.load(io.BytesIO(blob))
    return stored.astype(np.float32)


def _npy(matrix: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, matrix.astype(np.float16))
    return buffer.getvalue()
