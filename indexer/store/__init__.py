"""The index on disk: one owner for its layout, its files and every SQL statement on them.

``IndexStore`` owns an index root (snapshots, the CURRENT pointer, the build lock, the
embedding cache, publish and prune); ``Snapshot`` is one published snapshot opened for search.
"""

from indexer.store._cache import EmbeddingCache
from indexer.store._chunks import ChunkFilter
from indexer.store._manifest import (
    FLAT_LIMIT,
    HNSW_LIMIT,
    INDEX_TYPES,
    FileError,
    IndexParam,
    IndexSpecError,
    IndexType,
    Manifest,
    SourceFile,
    VectorIndexSpec,
    choose_index,
)
from indexer.store._root import IndexStore, new_snapshot_id, snapshots_to_prune
from indexer.store._snapshot import Snapshot, SnapshotContents

__all__ = [
    "FLAT_LIMIT",
    "HNSW_LIMIT",
    "INDEX_TYPES",
    "ChunkFilter",
    "EmbeddingCache",
    "FileError",
    "IndexParam",
    "IndexSpecError",
    "IndexStore",
    "IndexType",
    "Manifest",
    "Snapshot",
    "SnapshotContents",
    "SourceFile",
    "VectorIndexSpec",
    "choose_index",
    "new_snapshot_id",
    "snapshots_to_prune",
]
