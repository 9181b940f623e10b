"""Build and publish a snapshot from the seeds folder, embedding only what changed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.chunk import Chunk, ChunkingParams, chunk_articles
from indexer.duplicates import duplicate_groups
from indexer.embed import Embedder, EmbeddingModel
from indexer.encoders import CharSpan
from indexer.errors import BuildError, GateRefusedError, SeedsearchError, SnapshotError
from indexer.faults import fault_point
from indexer.parse import SourceError, decode_source, parse_articles
from indexer.plan import (
    BuildPlan,
    SeedFile,
    can_reuse,
    evidence_sentences,
    plan_build,
    texts_to_embed,
)
from indexer.settings import Settings
from indexer.store import (
    EmbeddingCache,
    FileError,
    IndexStore,
    Manifest,
    SnapshotContents,
    SourceFile,
    choose_index,
    new_snapshot_id,
)

SEED_SUFFIXES = {".txt", ".md"}
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
    sentences: int = 0  # sentence vectors, for passages of two or more sentences
    computed: int = 0  # texts this build ran through the model
    cache_pruned: int = 0  # cached vectors no recent snapshot uses, dropped after publishing
    gate: GateVerdict | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Corpus:
    """Everything the seeds folder holds for one build."""

    files: list[SourceFile] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    articles: int = 0
    errors: list[FileError] = field(default_factory=list)
    parsed: int = 0


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
        found += [Path(folder) / n for n in names if Path(n).suffix.lower() in SEED_SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(seeds_dir).as_posix())


def _too_large(size: int, max_bytes: int) -> str | None:
    if size <= max_bytes:
        return None
    return (
        f"{size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit (SEEDSEARCH_MAX_FILE_MB); "
        "split it into several files"
    )


def _scan(seeds_dir: Path, max_bytes: int) -> tuple[list[SeedFile], list[FileError]]:
    """Each readable seed file within the size limit, with its digest; the others as errors."""
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
    return seeds, errors


def _previous(store: IndexStore) -> Manifest | None:
    """The live snapshot's manifest, or None when there is none a build can reuse."""
    try:
        return store.manifest() if store.current_id() else None
    except SnapshotError:
        return None  # unreadable or an older format: build everything afresh (the cache helps)


def _previous_chunks(
    store: IndexStore, previous: Manifest | None, fingerprint: str, params: ChunkingParams
) -> dict[str, list[Chunk]]:
    if previous is None or not can_reuse(previous, fingerprint, params):
        return {}
    try:
        return store.read_chunks(previous.snapshot_id, {f.path for f in previous.files})
    except SnapshotError:
        return {}  # a damaged live snapshot: re-read every file (the cache still helps)


def _carry_out(
    plan: BuildPlan,
    seeds_dir: Path,
    params: ChunkingParams,
    embedder: EmbeddingModel,
    max_bytes: int,
) -> _Corpus:
    """Reuse what the plan reuses, parse and chunk the rest, in seed order."""
    corpus = _Corpus()
    for step in plan.files:
        if step.reuse is not None:
            corpus.files.append(step.reuse)
            corpus.chunks += step.chunks
            corpus.articles += step.reuse.articles
            continue
        source = step.seed.source
        corpus.parsed += 1
        try:
            fault_point("read", seeds_dir / source)
            data = (seeds_dir / source).read_bytes()
            problem = _too_large(len(data), max_bytes)  # it may have grown since the scan
            if problem:
                raise SourceError(problem)
            text = decode_source(data)
        except (OSError, SourceError) as error:
            corpus.errors.append(FileError(source, str(error)))
            continue
        articles = parse_articles(text)
        chunks = chunk_articles(articles, source, text, params, embedder.count_tokens)
        if not chunks:
            corpus.errors.append(FileError(source, "no passages found (only a headline?)"))
            continue
        digest = hashlib.sha256(data).hexdigest()  # of the bytes parsed, should the file change
        corpus.files.append(SourceFile(source, digest, len(articles), len(chunks)))
        corpus.chunks += chunks
        corpus.articles += len(articles)
    return corpus


@dataclass
class _Embedded:
    """The build's vectors: one per text, and its sentences' vectors, in the texts' order."""

    vectors: np.ndarray
    sentence_vectors: list[np.ndarray]
    computed: set[str]  # texts this build ran through the model


def _embed(
    texts: list[str],
    sentences: list[list[CharSpan]],
    embedder: EmbeddingModel,
    cache: EmbeddingCache,
    full: bool,
    progress: bool,
) -> _Embedded:
    """Each text's vector and its sentences' vectors, computing only what the cache lacks
    (one model pass gives both)."""
    wanted = dict(zip(texts, sentences, strict=True))
    vectors = {} if full else cache.get_many(wanted)
    spans = {} if full else cache.get_spans([text for text, found in wanted.items() if found])
    complete = [
        text
        for text, found in wanted.items()
        if text in vectors and (not found or len(spans.get(text, ())) == len(found))
    ]
    missing = texts_to_embed(list(wanted), set(complete))
    with tqdm(total=len(missing), desc="embedding", unit="chunk", disable=not progress) as bar:
        for offset in range(0, len(missing), EMBED_BATCH):
            batch = missing[offset : offset + EMBED_BATCH]
            encoded = embedder.encode_spans(batch, [wanted[text] for text in batch])
            fresh_spans = {t: m for t, (_, m) in zip(batch, encoded, strict=True) if len(m)}
            # Written per batch, so a build killed part-way keeps what it embedded.
            cache.put_many(batch, np.stack([vector for vector, _ in encoded]), fresh_spans)
            fault_point("embedding")
            vectors.update((text, vector) for text, (vector, _) in zip(batch, encoded, strict=True))
            spans.update(fresh_spans)
            bar.update(len(batch))
    dimension = len(next(iter(vectors.values())))
    empty = np.zeros((0, dimension), dtype=np.float32)
    return _Embedded(
        vectors=np.stack([vectors[text] for text in texts]),
        sentence_vectors=[spans[text] if wanted[text] else empty for text in texts],
        computed=set(missing),
    )


def _sentences_by_text(
    chunks: list[Chunk], sentences: list[tuple[int, int, int]]
) -> list[list[CharSpan]]:
    """Each chunk's evidence sentences as spans of the text it embeds (which may start with
    the headline)."""
    spans: list[list[CharSpan]] = [[] for _ in chunks]
    for row, start, end in sentences:
        shift = len(chunks[row].embed_text) - len(chunks[row].text)
        spans[row].append((start + shift, end + shift))
    return spans


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
) -> BuildReport:
    """Parse, chunk and embed the seeds, then publish a new snapshot if anything changed.

    If another build holds the lock, wait up to ``wait_seconds`` for it (saying so through
    ``notify``); with 0, fail at once with ``BuildLockedError``. ``corpus_label`` is recorded
    in the manifest for tools that build a corpus of their own. ``gate`` judges the written
    snapshot before it is published: a failing verdict discards it (``GateRefusedError``).
    """
    started = time.perf_counter()
    store = IndexStore(settings.index_dir, settings.prune_grace_seconds)
    embedder = embedder or Embedder.for_index(settings, store, export=True)
    with store.build_lock(wait_seconds, notify):
        if isinstance(embedder, Embedder):
            # Servers encode queries with this file and never export it themselves: it is in
            # place before any snapshot that needs it is published.
            embedder.write_onnx(store.model_file(embedder.fingerprint))
        params = ChunkingParams(max_tokens=embedder.max_tokens, embed_title=settings.embed_title)
        previous = None if full else _previous(store)
        max_bytes = int(settings.max_file_mb * 1_000_000)
        seeds, read_errors = _scan(settings.seeds_dir, max_bytes)
        reusable = _previous_chunks(store, previous, embedder.fingerprint, params)
        plan = plan_build(previous, reusable, seeds, params, embedder.fingerprint)
        corpus = _carry_out(plan, settings.seeds_dir, params, embedder, max_bytes)
        corpus.errors = sorted(read_errors + corpus.errors, key=lambda e: e.file)
        if not corpus.files:
            reasons = "; ".join(f"{e.file}: {e.error}" for e in corpus.errors) or "no files"
            raise BuildError(f"nothing to index in {settings.seeds_dir} ({reasons})")
        index = choose_index(
            len(corpus.chunks), flat_limit=settings.exact_search_limit,
            hnsw_limit=settings.graph_search_limit, index_type=settings.index_type,
            params=settings.index_params,
        )  # fmt: skip
        manifest = Manifest(
            snapshot_id=new_snapshot_id(),
            model_name=embedder.name,
            model_fingerprint=embedder.fingerprint,
            dimension=0,
            chunking=asdict(params),
            index_type=index.type,
            index_params=dict(index.params),
            files=corpus.files,
            articles=corpus.articles,
            chunks=len(corpus.chunks),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            errors=corpus.errors,
            corpus=corpus_label,
        )
        if previous is not None and previous.same_content(manifest):
            return _report(previous.snapshot_id, corpus, 0, started, published=False)

        texts = [chunk.embed_text for chunk in corpus.chunks]
        sentences = evidence_sentences(corpus.chunks)
        with (
            _writing("the embedding cache", store),
            store.embedding_cache(embedder.fingerprint, notify) as cache,
        ):
            embedded_now = _embed(
                texts, _sentences_by_text(corpus.chunks, sentences), embedder, cache, full,
                progress,
            )  # fmt: skip
        vectors, fresh = embedded_now.vectors, embedded_now.computed
        embedded = sum(text in fresh for text in texts)
        manifest = replace(manifest, dimension=int(vectors.shape[1]))
        contents = SnapshotContents(
            duplicate_of=duplicate_groups([(c.article_id, c.text) for c in corpus.chunks]),
            sentences=sentences,
            sentence_vectors=np.concatenate(embedded_now.sentence_vectors),
        )
        live_id = store.current_id()
        with _unpublished(store, manifest.snapshot_id), _writing("the snapshot", store):
            store.write_snapshot(manifest, corpus.chunks, vectors, contents)
            verdict = gate(store, manifest.snapshot_id, live_id) if gate else None
            if verdict is not None and not verdict.passed:
                raise GateRefusedError(verdict.message)
            store.publish(manifest.snapshot_id)
        # The previous snapshot stays for servers still finishing requests on it.
        cache_pruned = _clean_up(
            store, {manifest.snapshot_id} | ({live_id} if live_id else set()),
            settings.cache_keep_snapshots, notify,
        )  # fmt: skip
        report = _report(manifest.snapshot_id, corpus, embedded, started, published=True)
        return replace(
            report, gate=verdict, sentences=len(sentences), computed=len(fresh),
            cache_pruned=cache_pruned,
        )  # fmt: skip


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
