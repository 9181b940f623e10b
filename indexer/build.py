"""Build and publish a snapshot from the seeds folder, embedding only what changed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunk import (
    Chunk,
    ChunkingParams,
    chunk_articles,
    evidence_sentences,
    sentences_in_embedded_text,
)
from indexer.embed import Embedder, EmbeddingModel
from indexer.errors import (
    BuildError,
    GateRefusedError,
    SeedsearchError,
    SnapshotError,
    SourceError,
)
from indexer.faults import fault_point
from indexer.parse import decode_source, parse_articles
from indexer.plan import BuildPlan, SeedFile, is_seed_name, plan_build, texts_to_embed
from indexer.settings import Settings
from indexer.store import (
    EmbeddingCache,
    FileError,
    IndexStore,
    Manifest,
    SnapshotContents,
    SourceFile,
    VectorIndexSpec,
    choose_index,
    content_key,
    new_snapshot_id,
)

# Small enough that a build killed part-way has already cached most of its work.
EMBED_BATCH = 64
LOCK_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class GateVerdict:
    """What a quality gate decided about a written, unpublished snapshot."""

    passed: bool
    message: str
    candidate: float
    live: float | None = None


# (store, the candidate snapshot's id, the live snapshot's id or None) -> verdict. The build
# takes the gate as a callable so that the indexer never imports the search code.
Gate = Callable[[IndexStore, str, str | None], GateVerdict]
# How far (absolute MRR@10) below the live snapshot a gated build still publishes.
GATE_TOLERANCE = 0.02


@dataclass(frozen=True)
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
    sentences: int = 0  # sentence vectors, for passages of two or more sentences
    computed: int = 0  # texts this build ran through the model
    cache_pruned: int = 0  # cached vectors no recent snapshot uses, dropped after publishing
    gate: GateVerdict | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Scan:
    """The seeds folder as found: each readable seed file with its digest, and the rest as
    errors."""

    seeds: tuple[SeedFile, ...]
    errors: tuple[FileError, ...]


@dataclass(frozen=True)
class Corpus:
    """Everything the build indexes: the files read (or reused), their chunks in seed order,
    and the files that could not be read."""

    files: tuple[SourceFile, ...]
    chunks: tuple[Chunk, ...]
    articles: int
    errors: tuple[FileError, ...]
    parsed: int  # files read anew; unchanged files reuse the live snapshot's chunks


@dataclass(frozen=True)
class Embedded:
    """The corpus's vectors: one per chunk, and one per evidence sentence, in row order."""

    vectors: np.ndarray
    sentences: tuple[tuple[int, int, int], ...]  # (row, start, end) of each sentence vector
    sentence_vectors: np.ndarray
    computed: frozenset[str]  # texts this build ran through the model


@dataclass(frozen=True)
class Written:
    """A complete snapshot on disk, not yet live, and the gate's verdict on it."""

    manifest: Manifest
    gate: GateVerdict | None


def seed_files(seeds_dir: Path) -> list[Path]:
    """Every .txt and .md file under ``seeds_dir`` (following links), in a stable order."""
    if not seeds_dir.is_dir():
        raise BuildError(f"seeds folder not found: {seeds_dir}")
    found = []
    visited: set[str] = set()
    for folder, subfolders, names in os.walk(seeds_dir, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a link loop, or a folder linked twice
            subfolders[:] = []
            continue
        visited.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found += [Path(folder) / n for n in names if is_seed_name(n)]
    return sorted(found, key=lambda p: p.relative_to(seeds_dir).as_posix())


def _too_large(size: int, max_bytes: int) -> str | None:
    if size <= max_bytes:
        return None
    return (
        f"{size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit (SEEDSEARCH_MAX_FILE_MB); "
        "split it into several files"
    )


def scan(seeds_dir: Path, max_bytes: int) -> Scan:
    """Stage 1: each readable seed file within the size limit, with its digest."""
    seeds, errors = [], []
    for path in seed_files(seeds_dir):
        source = path.relative_to(seeds_dir).as_posix()
        try:
            problem = _too_large(path.stat().st_size, max_bytes)
            if problem:
                errors.append(FileError(source, problem))
                continue
            with path.open("rb") as handle:
                seeds.append(SeedFile(source, hashlib.file_digest(handle, "sha256").hexdigest()))
        except OSError as error:
            errors.append(FileError(source, str(error)))
    return Scan(tuple(seeds), tuple(errors))


def _previous(store: IndexStore) -> Manifest | None:
    """The live snapshot's manifest, or None when there is none a build can reuse."""
    try:
        return store.manifest() if store.current_id() else None
    except SnapshotError:
        return None  # unreadable or an older format: build everything afresh (the cache helps)


def plan(
    store: IndexStore,
    previous: Manifest | None,
    found: Scan,
    params: ChunkingParams,
    fingerprint: str,
    live: Manifest | None = None,
    now: str = "",
) -> BuildPlan:
    """Stage 2: which files reuse the live snapshot's chunks (``plan_build`` decides), and
    when each was first indexed: as ``live`` (the live manifest, even for a full build)
    records it, else ``now``."""
    unchanged = {f.path for f in previous.files} if previous else set()
    unchanged &= {seed.source for seed in found.seeds}
    chunks: dict[str, list[Chunk]] = {}
    if previous is not None and unchanged:
        # A damaged live snapshot: re-read every file (the cache still helps).
        with contextlib.suppress(SnapshotError):
            chunks = store.read_chunks(previous.snapshot_id, unchanged)
    indexed = {f.path: f.first_indexed for f in live.files} if live else {}
    return plan_build(previous, chunks, found.seeds, params, fingerprint, indexed, now)


def read(
    build_plan: BuildPlan,
    found: Scan,
    seeds_dir: Path,
    params: ChunkingParams,
    count_tokens: Callable[[str], int],
    max_bytes: int,
) -> Corpus:
    """Stage 3: reuse what the plan reuses, parse and chunk the rest, in seed order."""
    files: list[SourceFile] = []
    chunks: list[Chunk] = []
    errors = list(found.errors)
    articles = parsed = 0
    for step in build_plan.files:
        if step.reuse is not None:
            files.append(step.reuse)
            chunks += step.chunks
            articles += step.reuse.articles
            continue
        parsed += 1
        outcome = _read_file(seeds_dir, step.seed.source, params, count_tokens, max_bytes)
        if isinstance(outcome, FileError):
            errors.append(outcome)
            continue
        record, file_chunks = outcome
        files.append(replace(record, first_indexed=step.first_indexed))
        chunks += file_chunks
        articles += record.articles
    errors.sort(key=lambda e: e.file)
    if not files:
        reasons = "; ".join(f"{e.file}: {e.error}" for e in errors) or "no files"
        raise BuildError(f"nothing to index in {seeds_dir} ({reasons})")
    return Corpus(tuple(files), tuple(chunks), articles, tuple(errors), parsed)


def _read_file(
    seeds_dir: Path,
    source: str,
    params: ChunkingParams,
    count_tokens: Callable[[str], int],
    max_bytes: int,
) -> tuple[SourceFile, list[Chunk]] | FileError:
    """One seed file's record and chunks, or why it cannot be indexed."""
    try:
        fault_point("read", seeds_dir / source)
        data = (seeds_dir / source).read_bytes()
        problem = _too_large(len(data), max_bytes)  # it may have grown since the scan
        if problem:
            raise SourceError(problem)
        text = decode_source(data)
    except (OSError, SourceError) as error:
        return FileError(source, str(error))
    articles = parse_articles(text)
    chunks = chunk_articles(articles, source, text, params, count_tokens)
    if not chunks:
        return FileError(source, "no passages found (only a headline?)")
    digest = hashlib.sha256(data).hexdigest()  # of the bytes parsed, should the file change
    return SourceFile(source, digest, len(articles), len(chunks)), chunks


def embed(
    chunks: Sequence[Chunk],
    embedder: EmbeddingModel,
    cache: EmbeddingCache,
    full: bool,
    progress: bool,
) -> Embedded:
    """Stage 4: each chunk's vector and its evidence sentences' vectors, computing only what
    the cache lacks (one model pass gives both)."""
    sentences = evidence_sentences(chunks)
    texts = [chunk.embed_text for chunk in chunks]
    wanted = dict(zip(texts, sentences_in_embedded_text(chunks, sentences), strict=True))
    vectors = {} if full else cache.get_many(wanted)
    spans = {} if full else cache.get_spans([text for text, found in wanted.items() if found])
    complete = [
        text
        for text, found in wanted.items()
        if text in vectors and (not found or len(spans.get(text, ())) == len(found))
    ]
    missing = texts_to_embed(list(wanted), set(complete))
    with _progress_bar(len(missing), progress) as advance:
        for offset in range(0, len(missing), EMBED_BATCH):
            batch = missing[offset : offset + EMBED_BATCH]
            encoded = embedder.encode_spans(batch, [wanted[text] for text in batch])
            fresh_spans = {t: m for t, (_, m) in zip(batch, encoded, strict=True) if len(m)}
            # Written per batch, so a build killed part-way keeps what it embedded.
            cache.put_many(batch, np.stack([vector for vector, _ in encoded]), fresh_spans)
            fault_point("embedding")
            vectors.update((text, vector) for text, (vector, _) in zip(batch, encoded, strict=True))
            spans.update(fresh_spans)
            advance(len(batch))
    dimension = len(next(iter(vectors.values())))
    empty = np.zeros((0, dimension), dtype=np.float32)
    return Embedded(
        vectors=np.stack([vectors[text] for text in texts]),
        sentences=tuple(sentences),
        sentence_vectors=np.concatenate([spans[t] if wanted[t] else empty for t in texts]),
        computed=frozenset(missing),
    )


@contextlib.contextmanager
def _progress_bar(total: int, shown: bool) -> Iterator[Callable[[int], object]]:
    """Advance a progress bar of ``total`` chunks on stderr, or nothing when not ``shown``:
    tqdm is imported only to draw one, which spares a --json or in-process build its import."""
    if not shown:
        yield lambda done: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc="embedding", unit="chunk") as bar:
        yield bar.update


def write(
    store: IndexStore,
    manifest: Manifest,
    corpus: Corpus,
    embedded: Embedded,
    gate: Gate | None,
    live_id: str | None,
) -> Written:
    """Stage 5: write the snapshot and let the gate judge it; nothing is live yet."""
    # Imported here, where it is needed: importing datasketch (and the scipy it pulls in)
    # takes a second or two, which a build that changes nothing never pays.
    from indexer.duplicates import duplicate_groups

    contents = SnapshotContents(
        duplicate_of=duplicate_groups([(c.article_id, c.text) for c in corpus.chunks]),
        sentences=embedded.sentences,
        sentence_vectors=embedded.sentence_vectors,
    )
    written = store.write_snapshot(manifest, corpus.chunks, embedded.vectors, contents)
    verdict = gate(store, manifest.snapshot_id, live_id) if gate else None
    if verdict is not None and not verdict.passed:
        raise GateRefusedError(verdict.message)
    return Written(written, verdict)


def publish(
    store: IndexStore, snapshot_id: str, live_id: str | None, settings: Settings,
    notify: Callable[[str], None],
) -> int:  # fmt: skip
    """Stage 6: make the snapshot live, then prune; returns the cached vectors pruned. The
    previous snapshot stays for servers still finishing requests on it."""
    store.publish(snapshot_id)
    keep = {snapshot_id} | ({live_id} if live_id else set())
    return _clean_up(store, keep, settings.cache_keep_snapshots, notify)


def _export_model(embedder: EmbeddingModel, store: IndexStore) -> None:
    """Servers encode queries with the exported file and never export it themselves: it is
    in place before any snapshot that needs it is published."""
    if isinstance(embedder, Embedder):
        embedder.write_onnx(store.model_file(embedder.fingerprint))


def index_for(settings: Settings, chunks: int) -> VectorIndexSpec:
    """The vector index a build with ``settings`` makes for ``chunks`` passages."""
    return choose_index(
        chunks, flat_limit=settings.exact_search_limit, hnsw_limit=settings.graph_search_limit,
        index_type=settings.index_type, params=settings.index_params,
    )  # fmt: skip


def _manifest(
    embedder: EmbeddingModel, params: ChunkingParams, index: VectorIndexSpec, corpus: Corpus,
    dimension: int, label: str, built_at: str,
) -> Manifest:  # fmt: skip
    return Manifest(
        snapshot_id=new_snapshot_id(), model_name=embedder.name,
        model_fingerprint=embedder.fingerprint, dimension=dimension, chunking=asdict(params),
        index_type=index.type, index_params=dict(index.params), files=list(corpus.files),
        articles=corpus.articles, chunks=len(corpus.chunks),
        built_at=built_at, errors=list(corpus.errors), corpus=label,
    )  # fmt: skip


def build_index(
    settings: Settings,
    *,
    full: bool = False,
    embedder: EmbeddingModel | None = None,
    progress: bool = False,
    notify: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
    wait_seconds: float = LOCK_WAIT_SECONDS,
    corpus_label: str = "",
    gate: Gate | None = None,
    store: IndexStore | None = None,
) -> BuildReport:
    """Scan, plan, read, embed, write and publish a snapshot of the seeds, if anything changed.

    If another build holds the lock, wait up to ``wait_seconds`` for it (saying so through
    ``notify``); with 0, fail at once with ``BuildLockedError``. ``corpus_label`` is recorded
    in the manifest for tools that build a corpus of their own. ``gate`` judges the written
    snapshot before it is published: a failing verdict discards it (``GateRefusedError``).
    """
    started = time.perf_counter()
    store = store or IndexStore(settings.index_dir, settings.prune_grace_seconds)
    with store.build_lock(wait_seconds, notify):
        embedder = embedder or Embedder.for_index(settings, store, export=True)
        _export_model(embedder, store)
        params = ChunkingParams(max_tokens=embedder.max_tokens, embed_title=settings.embed_title)
        live = _previous(store)
        previous = None if full else live
        # New files' first-indexed time: this snapshot's, so undated articles keep their age.
        built_at = datetime.now(UTC).isoformat(timespec="seconds")
        max_bytes = int(settings.max_file_mb * 1_000_000)
        found = scan(settings.seeds_dir, max_bytes)
        build_plan = plan(store, previous, found, params, embedder.fingerprint, live, built_at)
        corpus = read(build_plan, found, settings.seeds_dir, params, embedder.count_tokens,
                      max_bytes)  # fmt: skip
        index = index_for(settings, len(corpus.chunks))
        key = content_key(embedder.fingerprint, asdict(params), index, corpus.files,
                          corpus.errors, corpus_label)  # fmt: skip
        if previous is not None and previous.content_key() == key:
            return _report(previous.snapshot_id, corpus, None, started)
        with _writing("the embedding cache", store), store.embedding_cache(
            embedder.fingerprint, notify
        ) as cache:  # fmt: skip
            embedded = embed(corpus.chunks, embedder, cache, full, progress)
        manifest = _manifest(embedder, params, index, corpus, int(embedded.vectors.shape[1]),
                             corpus_label, built_at)  # fmt: skip
        live_id = store.current_id()
        with _unpublished(store, manifest.snapshot_id), _writing("the snapshot", store):
            written = write(store, manifest, corpus, embedded, gate, live_id)
            pruned = publish(store, manifest.snapshot_id, live_id, settings, notify)
        return replace(_report(manifest.snapshot_id, corpus, embedded, started),
                       gate=written.gate, cache_pruned=pruned)  # fmt: skip


@contextlib.contextmanager
def _unpublished(store: IndexStore, snapshot_id: str) -> Iterator[None]:
    """Discard the snapshot being written if anything fails before it is live: a build never
    leaves a half-written snapshot behind."""
    try:
        yield
    except BaseException:
        if store.current_id() != snapshot_id:
            store.discard(snapshot_id)
        raise


@contextlib.contextmanager
def _writing(what: str, store: IndexStore) -> Iterator[None]:
    """Turn a failed write (full disk, read-only mount) into one clear BuildError."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as error:
        live = store.current_id()
        kept = f"the live snapshot {live} is untouched" if live else "nothing was published"
        raise BuildError(f"cannot write {what} under {store.root}: {error}; {kept}") from error


def _clean_up(
    store: IndexStore, keep: set[str], keep_snapshots: int, notify: Callable[[str], None]
) -> int:
    """Prune old snapshots and the embedding cache after a publish. A failure here costs only
    disk space, never the published build, so it is reported and not raised."""
    try:
        store.prune(keep=keep)
        return store.prune_cache(keep_snapshots)
    except (SeedsearchError, sqlite3.Error, OSError) as error:
        notify(f"cleaning up after the publish failed: {error}")
        return 0


def _report(
    snapshot_id: str, corpus: Corpus, embedded: Embedded | None, started: float
) -> BuildReport:
    """What a build did; ``embedded`` is None when nothing changed and nothing was published."""
    computed = embedded.computed if embedded else frozenset()
    embedded_chunks = sum(chunk.embed_text in computed for chunk in corpus.chunks)
    return BuildReport(
        snapshot=snapshot_id,
        files=len(corpus.files),
        articles=corpus.articles,
        chunks=len(corpus.chunks),
        embedded=embedded_chunks,
        reused=len(corpus.chunks) - embedded_chunks,
        errors=list(corpus.errors),
        seconds=round(time.perf_counter() - started, 3),
        published=embedded is not None,
        parsed=corpus.parsed,
        sentences=len(embedded.sentences) if embedded else 0,
        computed=len(computed),
    )
