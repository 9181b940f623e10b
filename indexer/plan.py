"""The build plan: which files to reuse, which to parse, which texts to embed. Pure logic.

A file whose bytes (sha256) are unchanged since the live snapshot reuses that snapshot's
chunks, provided the snapshot was chunked and embedded the way this build would do it. Every
other file is parsed anew. Of the resulting chunks, only texts without a cached vector are
embedded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePath

from indexer.chunk import Chunk, ChunkingParams
from indexer.store import Manifest, SourceFile

SEED_SUFFIXES = frozenset({".txt", ".md"})
# The names copy tools (rsync, curl, browsers, editors) give a file while it is being written:
# a build never reads one, so a half-copied file is never indexed half.
TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload")


def is_temporary_name(name: str) -> bool:
    """Whether a file name is a copy in progress: a leading dot, a trailing ``~``, or ``.part``,
    ``.tmp`` or ``.crdownload`` at the end."""
    return name.startswith(".") or name.endswith("~") or name.lower().endswith(TEMPORARY_SUFFIXES)


def is_seed_name(name: str) -> bool:
    """Whether the build reads a file of this name: ``.txt`` or ``.md``, not a temporary name."""
    return PurePath(name).suffix.lower() in SEED_SUFFIXES and not is_temporary_name(name)


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
    first_indexed: str = ""  # when a build first indexed this path (RFC 3339)


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
    indexed: Mapping[str, str] | None = None,
    now: str = "",
) -> BuildPlan:
    """Decide, per seed file, whether the live snapshot's chunks can stand for it.

    ``indexed``: when each path was first indexed, by the live snapshot's record (which even
    a full build keeps); any other path is first indexed ``now``."""
    indexed = indexed or {}
    reusable = {}
    if previous is not None and _can_reuse(previous, fingerprint, params):
        reusable = {f.path: f for f in previous.files if previous_chunks.get(f.path)}
    plans = []
    for seed in seeds:
        old = reusable.get(seed.source)
        first = indexed.get(seed.source) or now
        if old is not None and old.sha256 == seed.sha256:
            plans.append(FilePlan(seed, old, tuple(previous_chunks[seed.source]), first))
        else:
            plans.append(FilePlan(seed, first_indexed=first))
    return BuildPlan(tuple(plans))


def texts_to_embed(texts: Sequence[str], cached: Collection[str]) -> list[str]:
    """Distinct texts without a cached vector, shortest first so each batch pads little."""
    return sorted((t for t in dict.fromkeys(texts) if t not in cached), key=len)
