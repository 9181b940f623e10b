"""``embeddings.sqlite``: vectors kept across builds, keyed by model fingerprint and text.

``vectors`` holds each text's vector; ``spans`` the vectors of its sentences (for texts of two
or more), computed in the same pass and stored as a half-precision ``.npy`` matrix.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

_BATCH = 500


class EmbeddingCache:
    """Vectors keyed by model fingerprint + sha256 of the embedded text."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS spans (key TEXT PRIMARY KEY, vectors BLOB)")
        self._prefix = fingerprint[:32] + ":"

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _key(self, text: str) -> str:
        return self._prefix + hashlib.sha256(text.encode()).hexdigest()

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
        return {
            text: np.load(io.BytesIO(blob)).astype(np.float32)
            for text, blob in self._blobs("spans", "vectors", texts)
        }

    def put_many(
        self, texts: list[str], vectors: np.ndarray, spans: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """Store each text's vector, and the sentence vectors of those texts in ``spans``."""
        rows = [
            (self._key(t), v.astype(np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        span_rows = [(self._key(t), _npy(m)) for t, m in (spans or {}).items()]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO spans VALUES (?, ?)", span_rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def _npy(matrix: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, matrix.astype(np.float16))
    return buffer.getvalue()
