"""The index on disk: one owner for its layout, its files and every SQL statement on them.

``IndexStore`` owns an index root (snapshots, the CURRENT pointer, the build lock, the
embedding cache, publish and prune); ``Snapshot`` is one published snapshot opened for search;
``JobRecords`` are the root's rebuild job records.
"""

from indexer.store._cache import EmbeddingCache
from indexer.store._chunks import ChunkFilter
from indexer.store._columns import UNDATED, RowColumns, month_name
from indexer.store._jobs import (
    KEPT_JOBS,
    JobRecord,
    JobRecords,
    JobState,
    check_job_id,
    new_job_id,
)
from indexer.store._manifest import (
    FLAT_LIMIT,
    HNSW_LIMIT,
    INDEX_TYPES,
    FileError,
    IndexParam,
    IndexType,
    Manifest,
    SourceFile,
    VectorIndexSpec,
    choose_index,
    content_key,
)
from indexer.store._root import IndexStore, new_snapshot_id, snapshots_to_prune
from indexer.store._snapshot import GateRecord, Snapshot, SnapshotContents
from indexer.store._vectors import APPROXIMATE_MATCH_DEPTH, Within

__all__ = [
    "APPROXIMATE_MATCH_DEPTH",
    "FLAT_LIMIT",
    "HNSW_LIMIT",
    "INDEX_TYPES",
    "KEPT_JOBS",
    "UNDATED",
    "ChunkFilter",
    "EmbeddingCache",
    "FileError",
    "GateRecord",
    "IndexParam",
    "IndexStore",
    "IndexType",
    "JobRecord",
    "JobRecords",
    "JobState",
    "Manifest",
    "RowColumns",
    "Snapshot",
    "SnapshotContents",
    "SourceFile",
    "VectorIndexSpec",
    "Within",
    "check_job_id",
    "choose_index",
    "content_key",
    "month_name",
    "new_job_id",
    "new_snapshot_id",
    "snapshots_to_prune",
]
