"""Build and publish a snapshot from the seeds directory, embedding only what changed."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout
from tqdm import tqdm

from indexer.chunk import Chunk, ChunkingParams, chunk_articles
from indexer.embed import Embedder, EmbeddingCache
from indexer.parse import SourceError, decode_source, parse_articles
from indexer.settings import Settings
from indexer.snapshot import (
    FileError,
    Manifest,
    SourceFile,
    choose_index_type,
    new_snapshot_id,
    prune,
    publish,
    read_chunks,
    read_current,
    read_manifest,
    write_snapshot,
)

SEED_SUFFIXES = {".txt", ".md"}
# Small enough that a build killed part-way has already cached most of its work.
EMBED_BATCH = 64
LOCK_WAIT_SECONDS = 600.0
CACHE_FILE = "embeddings.sqlite"
LOCK_FILE = "build.lock"


class BuildError(RuntimeError):
    """Nothing could be published; the message says why."""


class BuildLockedError(BuildError):
    """Another build holds the index lock."""


@dataclass
class BuildReport:
    snapshot: str
    files: int
    articles: int
    chunks: int
    embedded: int
    reused: int
    errors: list[FileError] = field(default_factory=list)
    seconds: float = 0.0
    published: bool = True
    parsed: int = 0  # files read anew; unchanged files reuse the live snapshot's chunks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Corpus:
    """Everything parsed from the seeds directory in one build."""

    files: list[SourceFile] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    articles: int = 0
    errors: list[FileError] = field(default_factory=list)
    parsed: int = 0


def seed_files(seeds_dir: Path) -> list[Path]:
    """Every .txt and .md file under ``seeds_dir`` (following links), in a stable order."""
    if not seeds_dir.is_dir():
        raise BuildError(f"seeds directory not found: {seeds_dir}")
    found = []
    visited: set[str] = set()
    for folder, subfolders, names in os.walk(seeds_dir, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a link loop, or a folder linked twice
            subfolders[:] = []
            continue
        visited.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found += [Path(folder) / n for n in names if Path(n).suffix.lower() in SEED_SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(seeds_dir).as_posix())


def _previous_manifest(root: Path) -> Manifest | None:
    """The live snapshot's manifest, or None when there is none it can build on."""
    live_id = read_current(root)
    if live_id is None:
        return None
    try:
        return read_manifest(root, live_id)
    except (OSError, ValueError, TypeError, KeyError):
        return (
            None  # unreadable or an older format: build everything afresh (the cache still helps)
        )


def _read_corpus(
    seeds_dir: Path,
    params: ChunkingParams,
    embedder: Embedder,
    reusable: dict[str, list[Chunk]],
    previous: dict[str, SourceFile],
) -> _Corpus:
    corpus = _Corpus()
    for path in seed_files(seeds_dir):
        source = path.relative_to(seeds_dir).as_posix()
        try:
            data = path.read_bytes()
        except OSError as error:
            corpus.errors.append(FileError(source, str(error)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        old = previous.get(source)
        if old is not None and old.sha256 == digest and source in reusable:
            corpus.files.append(old)
            corpus.chunks += reusable[source]
            corpus.articles += old.articles
            continue
        corpus.parsed += 1
        try:
            text = decode_source(data)
        except SourceError as error:
            corpus.errors.append(FileError(source, str(error)))
            continue
        articles = parse_articles(text)
        chunks = chunk_articles(articles, source, text, params, embedder.count_tokens)
        if not chunks:
            corpus.errors.append(FileError(source, "no passages found (only a headline?)"))
            continue
        corpus.files.append(SourceFile(source, digest, len(articles), len(chunks)))
        corpus.chunks += chunks
        corpus.articles += len(articles)
    return corpus


def _reusable_chunks(
    root: Path, previous: Manifest | None, fingerprint: str, params: ChunkingParams
) -> tuple[dict[str, list[Chunk]], dict[str, SourceFile]]:
    """Chunks of the live snapshot, by source, when it was chunked the way this build would."""
    if previous is None or (previous.model_fingerprint, previous.chunking) != (
        fingerprint,
        asdict(params),
    ):
        return {}, {}
    files = {f.path: f for f in previous.files}
    try:
        return read_chunks(root, previous.snapshot_id, set(files)), files
    except sqlite3.Error:
        return {}, {}  # a damaged live snapshot: re-read every file (the cache still helps)


def _embed(
    texts: list[str], embedder: Embedder, cache: EmbeddingCache, full: bool, progress: bool
) -> tuple[dict[str, np.ndarray], set[str]]:
    """Vectors for ``texts``, computing only cache misses; returns them and the texts embedded."""
    unique = list(dict.fromkeys(texts))
    vectors = {} if full else cache.get_many(unique)
    # Sorted by length so each batch pads little, as model.encode does within one call.
    missing = sorted((text for text in unique if text not in vectors), key=len)
    with tqdm(total=len(missing), desc="embedding", unit="chunk", disable=not progress) as bar:
        for offset in range(0, len(missing), EMBED_BATCH):
            batch = missing[offset : offset + EMBED_BATCH]
            encoded = embedder.encode(batch)
            # Written per batch, so a build killed part-way keeps what it embedded.
            cache.put_many(batch, encoded)
            vectors.update(zip(batch, encoded, strict=True))
            bar.update(len(batch))
    return vectors, set(missing)


def _acquire(lock: FileLock, notify: Callable[[str], None], wait_seconds: float) -> None:
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if wait_seconds <= 0:
            raise BuildLockedError(f"another build is running (lock {lock.lock_file})") from None
        notify(f"another build is running (lock {lock.lock_file}); waiting for it to finish")
        try:
            lock.acquire(timeout=wait_seconds)
        except Timeout:
            raise BuildLockedError(f"another build still holds {lock.lock_file}") from None


def build_index(
    settings: Settings,
    *,
    full: bool = False,
    embedder: Embedder | None = None,
    progress: bool = False,
    notify: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
    wait_seconds: float = LOCK_WAIT_SECONDS,
) -> BuildReport:
    """Parse, chunk and embed the seeds, then publish a new snapshot if anything changed.

    If another build holds the lock, wait up to ``wait_seconds`` for it (saying so through
    ``notify``); with 0, fail at once with ``BuildLockedError``.
    """
    started = time.perf_counter()
    root = settings.index_dir
    root.mkdir(parents=True, exist_ok=True)
    embedder = embedder or Embedder(settings.model)
    lock = FileLock(str(root / LOCK_FILE))
    _acquire(lock, notify, wait_seconds)
    try:
        params = ChunkingParams(max_tokens=embedder.max_tokens, embed_title=settings.embed_title)
        previous = None if full else _previous_manifest(root)
        reusable, previous_files = _reusable_chunks(root, previous, embedder.fingerprint, params)
        corpus = _read_corpus(settings.seeds_dir, params, embedder, reusable, previous_files)
        if not corpus.files:
            reasons = "; ".join(f"{e.file}: {e.error}" for e in corpus.errors) or "no files"
            raise BuildError(f"nothing to index in {settings.seeds_dir} ({reasons})")
        manifest = Manifest(
            snapshot_id=new_snapshot_id(),
            model_name=embedder.name,
            model_fingerprint=embedder.fingerprint,
            dimension=0,
            chunking=asdict(params),
            index_type=choose_index_type(len(corpus.chunks), settings.exact_search_limit),
            files=corpus.files,
            articles=corpus.articles,
            chunks=len(corpus.chunks),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            errors=corpus.errors,
        )
        live_id = read_current(root)
        if previous is not None and previous.same_content(manifest):
            return _report(
                previous.snapshot_id, corpus, embedded=0, started=started, published=False
            )

        texts = [chunk.embed_text for chunk in corpus.chunks]
        cache = EmbeddingCache(root / CACHE_FILE, embedder.fingerprint)
        try:
            by_text, new_texts = _embed(texts, embedder, cache, full, progress)
        finally:
            cache.close()
        vectors = np.stack([by_text[text] for text in texts])
        manifest = replace(manifest, dimension=int(vectors.shape[1]))
        write_snapshot(root, manifest, corpus.chunks, vectors)
        publish(root, manifest.snapshot_id)
        # The previous snapshot stays for servers still finishing requests on it.
        prune(root, keep={manifest.snapshot_id} | ({live_id} if live_id else set()))
        embedded = sum(1 for text in texts if text in new_texts)
        return _report(manifest.snapshot_id, corpus, embedded, started, published=True)
    finally:
        lock.release()


def _report(
    snapshot_id: str, corpus: _Corpus, embedded: int, started: float, published: bool
) -> BuildReport:
    return BuildReport(
        snapshot=snapshot_id,
        files=len(corpus.files),
        articles=corpus.articles,
        chunks=len(corpus.chunks),
        embedded=embedded,
        reused=len(corpus.chunks) - embedded,
        errors=corpus.errors,
        seconds=round(time.perf_counter() - started, 3),
        published=published,
        parsed=corpus.parsed,
    )
