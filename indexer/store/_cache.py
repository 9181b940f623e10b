"""``embeddings.sqlite``: vectors kept across builds, keyed by model fingerprint and text."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
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
        self._prefix = fingerprint[:32] + ":"

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _key(self, text: str) -> str:
        return self._prefix + hashlib.sha256(text.encode()).hexdigest()

    def get_many(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached vectors by text, for those texts that have one."""
        by_key = {self._key(text): text for text in texts}
        found: dict[str, np.ndarray] = {}
        keys = list(by_key)
        for offset in range(0, len(keys), _BATCH):
            batch = keys[offset : offset + _BATCH]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({marks})", batch
            )
            for key, blob in rows:
                found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = [
            (self._key(t), v.astype(np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        self._db.close()
