"""``manifest.json``: what a snapshot holds and how it was built."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

SCHEMA_VERSION = 2
IndexType = Literal["flat", "hnsw"]
INDEX_TYPES: tuple[IndexType, ...] = get_args(IndexType)


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
    # What the seeds are, when a tool builds a corpus of its own (e.g. "beir:/path/scifact").
    corpus: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest; ``ValueError`` for an unknown schema or a malformed file."""
        try:
            data = json.loads(text)
            if data.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"unsupported snapshot schema {data.get('schema_version')!r}")
            data["files"] = [SourceFile(**f) for f in data["files"]]
            data["errors"] = [FileError(**e) for e in data.get("errors", [])]
            return cls(**data)
        except (AttributeError, KeyError, TypeError) as error:
            raise ValueError(f"malformed manifest: {error}") from None

    def same_content(self, other: Manifest) -> bool:
        """True when both hold the same chunks and vectors and report the same file errors."""
        return (self.model_fingerprint, self.chunking, self.index_type, self.files, self.errors,
                self.corpus) == (other.model_fingerprint, other.chunking, other.index_type,
                other.files, other.errors, other.corpus)  # fmt: skip


def choose_index_type(chunk_count: int, exact_search_limit: int) -> IndexType:
    return "flat" if chunk_count <= exact_search_limit else "hnsw"
