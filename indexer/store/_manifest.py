"""``manifest.json``: what a snapshot holds and how it was built."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from indexer.errors import IndexSpecError

# 3: publication dates, duplicate groups, sentence vectors, data file sizes and digests.
SCHEMA_VERSION = 3
# flat: exact IndexFlatIP; hnsw: IndexHNSWFlat graph; ivf: inverted lists of compressed codes
# (SQ8 or PQ), re-ranked by finer codes (``refine``) when set.
IndexType = Literal["flat", "hnsw", "ivf"]
INDEX_TYPES: tuple[IndexType, ...] = get_args(IndexType)
IndexParam = int | str

# Measured by scripts/bench_ann.py on this shared 2-core machine (one query, k=10, recall
# against exact on noisy copies of real embeddings): exact search takes 0.8 ms p50 over 20k
# vectors, 5.5 ms over 100k, 57 ms over 1M, so it stops at 50k. At 100k HNSW (ef 512: 0.94,
# 1.9 ms) and IVF-SQ8 (nprobe 128: 0.92, 0.9 ms) are level; at 1M the graph falls behind
# (ef 512: 0.65, 1.8 KB a vector) and IVF-SQ8 holds (nprobe 128: 0.94, 1.6 ms, 400 B a
# vector), so the lists take over at about the geometric middle.
IVF_SCAN_BUDGET = 200_000
IVF_MIN_PROBES, IVF_MAX_PROBES = 32, 256
FLAT_LIMIT = 50_000
HNSW_LIMIT = 300_000
# What a snapshot's article vectors are (``articles.npy``), as its manifest records it.
ARTICLE_VECTORS = "mean of passage vectors, normalised"
# What a snapshot's row arrays hold (``columns.npy``, ``columns.json``, ``sentence_spans.npy``).
ROW_ARRAYS = "article, group, day, month, source, kind; sentence row, start, end"

DEFAULT_PARAMS: dict[IndexType, dict[str, IndexParam]] = {
    "flat": {},
    # m: graph degree (build); ef_construction: build beam; ef_search: query beam.
    "hnsw": {"m": 32, "ef_construction": 64, "ef_search": 512},
    # nlist: inverted lists (build; 0 = scale with the corpus); codes, refine: FAISS codecs
    # (build); nprobe: lists scanned per query (0 = by corpus size, see ivf_probes); k_factor:
    # candidates re-ranked per result.
    "ivf": {"nlist": 0, "codes": "SQ8", "refine": "", "nprobe": 0, "k_factor": 4},
}


@dataclass(frozen=True)
class VectorIndexSpec:
    """Which FAISS index a snapshot holds and how it is built and searched."""

    type: IndexType
    params: Mapping[str, IndexParam] = field(default_factory=dict)

    def param(self, name: str) -> IndexParam:
        """A parameter, falling back to the type's default (manifests before these had none)."""
        return self.params.get(name, DEFAULT_PARAMS[self.type][name])

    def int_param(self, name: str) -> int:
        return int(self.param(name))

    def resolved(self) -> VectorIndexSpec:
        """Every parameter of the type spelled out."""
        return VectorIndexSpec(self.type, {**DEFAULT_PARAMS[self.type], **self.params})


@dataclass(frozen=True)
class SourceFile:
    path: str
    sha256: str
    articles: int
    chunks: int
    # When a build first indexed this path (RFC 3339), carried over by every later build: an
    # undated article's age in a feed. Manifests before it read as their snapshot's built_at.
    first_indexed: str = ""


@dataclass(frozen=True)
class DataFile:
    """One data file of a snapshot as written: servers check its size when they load the
    snapshot, ``python -m indexer verify`` its digest too."""

    name: str
    size: int
    sha256: str


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
    # The index's build and search parameters (absent from manifests written before them).
    index_params: dict[str, IndexParam] = field(default_factory=dict)
    # Size and sha256 of every data file, recorded after they are written.
    data_files: list[DataFile] = field(default_factory=list)
    # How ``articles.npy`` was computed from the passage vectors ("" in manifests written
    # before article vectors: those snapshots hold no such file and answer no similar query).
    article_vectors: str = ""
    # What the row arrays hold ("" in manifests written before them: those snapshots read
    # their rows' attributes from the chunk table when they open, and the next build, even one
    # with nothing to embed, writes the arrays).
    row_arrays: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def index(self) -> VectorIndexSpec:
        return VectorIndexSpec(self.index_type, self.index_params).resolved()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest; ``ValueError`` for an unknown schema or a malformed file."""
        try:
            data = json.loads(text)
            if data.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(
                    f"snapshot schema {data.get('schema_version')!r} is not the one this version"
                    f" reads ({SCHEMA_VERSION}); rebuild with `python -m indexer build`"
                )
            data["files"] = [
                SourceFile(**{"first_indexed": data["built_at"], **f}) for f in data["files"]
            ]
            data["errors"] = [FileError(**e) for e in data.get("errors", [])]
            data["data_files"] = [DataFile(**f) for f in data.get("data_files", [])]
            return cls(**data)
        except (AttributeError, KeyError, TypeError) as error:
            raise ValueError(f"malformed manifest: {error}") from None

    def content_key(self) -> tuple[object, ...]:
        """What decides the snapshot's chunks and vectors and the file errors it reports: two
        manifests with the same key describe the same searchable content."""
        return content_key(
            self.model_fingerprint, self.chunking, self.index, self.files, self.errors,
            self.corpus, article_vectors=self.article_vectors, row_arrays=self.row_arrays,
        )  # fmt: skip


def content_key(
    fingerprint: str,
    chunking: dict[str, Any],
    index: VectorIndexSpec,
    files: Sequence[SourceFile],
    errors: Sequence[FileError],
    corpus: str,
    *,
    article_vectors: str = ARTICLE_VECTORS,
    row_arrays: str = ROW_ARRAYS,
) -> tuple[object, ...]:
    """``Manifest.content_key`` of a snapshot not yet written (a build deciding whether
    anything changed); a snapshot from before article vectors or row arrays differs from
    every new one."""
    return (
        fingerprint, chunking, index, list(files), list(errors), corpus, article_vectors,
        row_arrays,
    )  # fmt: skip


def choose_index(
    chunk_count: int,
    *,
    flat_limit: int = FLAT_LIMIT,
    hnsw_limit: int = HNSW_LIMIT,
    index_type: IndexType | None = None,
    params: Mapping[str, IndexParam] | None = None,
) -> VectorIndexSpec:
    """The index for ``chunk_count`` vectors: exact up to ``flat_limit``, a graph up to
    ``hnsw_limit``, compressed inverted lists above; ``index_type`` and ``params`` override.

    Every parameter is spelled out, so the manifest records what was built."""
    if index_type is None:
        index_type = (
            "flat" if chunk_count <= flat_limit else "hnsw" if chunk_count <= hnsw_limit else "ivf"
        )
    if index_type not in DEFAULT_PARAMS:
        raise IndexSpecError(f"unknown index type {index_type!r} (one of {', '.join(INDEX_TYPES)})")
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS[index_type]))
    if unknown:
        raise IndexSpecError(f"{index_type} index has no parameter {', '.join(unknown)}")
    spec = VectorIndexSpec(index_type, params).resolved()
    if index_type == "ivf":
        nlist = spec.int_param("nlist") or ivf_lists(chunk_count)
        nprobe = spec.int_param("nprobe") or ivf_probes(chunk_count, nlist)
        spec = VectorIndexSpec(index_type, {**spec.params, "nlist": nlist, "nprobe": nprobe})
    return spec


def ivf_probes(chunk_count: int, nlist: int) -> int:
    """Lists to scan per query: about IVF_SCAN_BUDGET codes, between 32 and 256 lists.

    Recall follows the share of lists scanned, time the number of codes: at 1M vectors and
    4096 lists, 256 lists give recall@10 0.96 in 3.3 ms; at 10M, 64 lists give 0.91 in 7.5 ms
    (scripts/bench_ann.py, docs/benchmarks.md)."""
    budget = round(IVF_SCAN_BUDGET * nlist / max(chunk_count, 1))
    return min(IVF_MAX_PROBES, max(IVF_MIN_PROBES, budget))


def ivf_lists(chunk_count: int) -> int:
    """Inverted lists for ``chunk_count`` vectors: a power of two near 4 sqrt(n), at least
    39 training vectors per list (FAISS's floor for k-means), 4096 at most (k-means over more
    lists takes longer than the whole rest of a 10M build on two cores)."""
    target = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(chunk_count))))
    return max(1, min(int(target), 4096, chunk_count // 39))
