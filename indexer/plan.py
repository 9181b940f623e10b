"""The build plan: which files to reuse, which to parse, which texts to embed. Pure logic.

A file whose bytes (sha256) are unchanged since the live snapshot reuses that snapshot's
chunks, provided the snapshot was chunked and embedded the way this build would do it. Every
other file is parsed anew. Of the resulting chunks, only texts without a cached vector are
embedded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass

from indexer.chunk import Chunk, ChunkingParams
from indexer.store import Manifest, SourceFile


@dataclass(frozen=True)
class SeedFile:
    """A seed file as found on disk: its path under the seeds folder and its digest."""

    source: str
    sha256: str


@dataclass(frozen=True)
class FilePlan:
    seed: SeedFile
    reuse: SourceFile | None = None  # the live snapshot's record, when its chunks are reused
    chunks: tuple[Chunk, ...] = ()  # the reused chunks


@dataclass(frozen=True)
class BuildPlan:
    files: tuple[FilePlan, ...]  # in seed order


def _can_reuse(previous: Manifest | None, fingerprint: str, params: ChunkingParams) -> bool:
    """True when ``previous`` chunked and embedded files the way this build would."""
    return previous is not None and (previous.model_fingerprint, previous.chunking) == (
        fingerprint,
        asdict(params),
    )


def plan_build(
    previous: Manifest | None,
    previous_chunks: Mapping[str, Sequence[Chunk]],
    seeds: Sequence[SeedFile],
    params: ChunkingParams,
    fingerprint: str,
) -> BuildPlan:
    """Decide, per seed file, whether the live snapshot's chunks can stand for it."""
    reusable = {}
    if previous is not None and _can_reuse(previous, fingerprint, params):
        reusable = {f.path: f for f in previous.files if previous_chunks.get(f.path)}
    plans = []
    for seed in seeds:
        old = reusable.get(seed.source)
        if old is not None and old.sha256 == seed.sha256:
            plans.append(FilePlan(seed, old, tuple(previous_chunks[seed.source])))
        else:
            plans.append(FilePlan(seed))
    return BuildPlan(tuple(plans))


def texts_to_embed(texts: Sequence[str], cached: Collection[str]) -> list[str]:
    """Distinct texts without a cached vector, shortest first so each batch pads little."""
    return sorted((t for t in dict.fromkeys(texts) if t not in cached), key=len)
