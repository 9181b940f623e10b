"""The index root: where snapshots live, which one is live, and who may build.

Layout::

    CURRENT                  id of the live snapshot (replaced atomically)
    snapshots/<id>/          vectors.faiss, chunks.sqlite, sentences.npy, manifest.json
                             (immutable)
    publish_log.jsonl        when each kept snapshot was published (prune's grace period)
    models/<fingerprint>.onnx the exported model servers encode queries with
    embeddings.sqlite        the embedding cache, kept across builds
    build.lock               held by the one running build
    jobs/<id>.json           rebuild job records (``_jobs.py``)
    watch.json               the last watch build's result (``search_api/watch.py``)
    watch.lock               held by the one process watching the seeds folder
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer.chunk import Chunk
from indexer.errors import BuildLockedError, NoSnapshotError, SnapshotError
from indexer.faults import fault_point
from indexer.store._cache import EmbeddingCache, cache_key
from indexer.store._chunks import read_chunks_of, read_embedded_texts
from indexer.store._files import write_atomically as _write_atomically
from indexer.store._manifest import Manifest
from indexer.store._snapshot import (
    CHUNKS_FILE,
    SNAPSHOT_FILES,
    GateRecord,
    Snapshot,
    SnapshotContents,
    check_files,
    read_gate_record,
    read_manifest,
    write_gate_record,
    write_snapshot,
)

if TYPE_CHECKING:  # imported where a lock is taken: a search never takes one
    from filelock import FileLock

CURRENT_FILE = "CURRENT"
SNAPSHOTS_DIR = "snapshots"
PUBLISH_LOG = "publish_log.jsonl"
CACHE_FILE = "embeddings.sqlite"
MODELS_DIR = "models"
LOCK_FILE = "build.lock"
WATCH_FILE = "watch.json"
WATCH_LOCK_FILE = "watch.lock"
DEFAULT_PRUNE_GRACE_SECONDS = 60.0


def new_snapshot_id() -> str:
    """A sortable id from the build's start time."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def snapshots_to_prune(
    present: Sequence[str],
    keep: set[str],
    published_at: Mapping[str, float],
    now: float,
    grace_seconds: float,
) -> list[str]:
    """Snapshots that may go: not kept, and not published within the grace period (a server
    may still be loading one that was live a moment ago). Never-published ones (left by a
    killed build) always go."""
    return [
        snapshot
        for snapshot in present
        if snapshot not in keep and now - published_at.get(snapshot, -float("inf")) >= grace_seconds
    ]


class IndexStore:
    """Owns one index root: its layout, the CURRENT pointer, the build lock, the embedding
    cache, writing, publishing, pruning and opening snapshots."""

    def __init__(
        self,
        root: Path,
        prune_grace_seconds: float = DEFAULT_PRUNE_GRACE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.prune_grace_seconds = prune_grace_seconds
        self._clock = clock

    def __repr__(self) -> str:
        return f"IndexStore({str(self.root)!r})"

    def _snapshot_dir(self, snapshot_id: str) -> Path:
        return self.root / SNAPSHOTS_DIR / snapshot_id

    # Reading

    def current_id(self) -> str | None:
        """The live snapshot's id, or None before the first publish."""
        try:
            return (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
        except OSError as error:
            raise SnapshotError(f"cannot read {self.root / CURRENT_FILE}: {error}") from error

    def live_id(self) -> str:
        """The live snapshot's id; ``NoSnapshotError`` before the first publish."""
        snapshot_id = self.current_id()
        if snapshot_id is None:
            raise NoSnapshotError(self.root)
        return snapshot_id

    def snapshot_ids(self) -> list[str]:
        """Every snapshot directory present, oldest first (ids sort by build start)."""
        folder = self.root / SNAPSHOTS_DIR
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def is_empty(self) -> bool:
        """True when the root does not exist or holds nothing at all."""
        return not self.root.exists() or (self.root.is_dir() and not any(self.root.iterdir()))

    def manifest(self, snapshot_id: str | None = None) -> Manifest:
        """A snapshot's manifest (the live one's by default)."""
        return read_manifest(self._snapshot_dir(snapshot_id or self.live_id()))

    def file_sizes(self, snapshot_id: str | None = None) -> dict[str, int]:
        """Bytes of each file of a snapshot (the live one by default), by file name."""
        directory = self._snapshot_dir(snapshot_id or self.live_id())
        return {name: (directory / name).stat().st_size for name in SNAPSHOT_FILES}

    def open_snapshot(self, snapshot_id: str | None = None) -> Snapshot:
        """Open a snapshot for search (the live one by default)."""
        return Snapshot(self._snapshot_dir(snapshot_id or self.live_id()))

    def read_chunks(self, snapshot_id: str, sources: set[str]) -> dict[str, list[Chunk]]:
        """The stored chunks of ``sources``, by source, in reading order."""
        try:
            return read_chunks_of(self._snapshot_dir(snapshot_id) / CHUNKS_FILE, sources)
        except sqlite3.Error as error:
            raise SnapshotError(f"cannot read chunks of snapshot {snapshot_id}: {error}") from error

    # Building

    @cached_property
    def _lock(self) -> FileLock:
        from filelock import FileLock

        # One lock object per store: filelock counts acquisitions per object (and thread).
        return FileLock(str(self.root / LOCK_FILE))

    @contextlib.contextmanager
    def build_lock(self, wait_seconds: float, notify: Callable[[str], None]) -> Iterator[None]:
        """Hold the one build lock; wait up to ``wait_seconds`` for another build (saying so
        through ``notify``), or raise ``BuildLockedError``. Reentrant for this store object
        in one thread: the command line takes the lock before it loads the model, then
        ``build_index`` takes it again with the same store."""
        from filelock import Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        lock = self._lock
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if wait_seconds <= 0:
                raise BuildLockedError(
                    f"another build is running (lock {lock.lock_file})"
                ) from None
            notify(f"another build is running (lock {lock.lock_file}); waiting for it to finish")
            try:
                lock.acquire(timeout=wait_seconds)
            except Timeout:
                raise BuildLockedError(f"another build still holds {lock.lock_file}") from None
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def watch_lock(self) -> Iterator[bool]:
        """Hold the watcher lock while the block runs, if it is free: True when this process
        is the one that watches the seeds folder. Apart from the build lock, which only
        serialises builds."""
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / WATCH_LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def record_watch(self, record: Mapping[str, object]) -> None:
        """Keep the last watch build's result where every server process reads it."""
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.root / WATCH_FILE, json.dumps(record, ensure_ascii=False))

    def watch_record(self) -> dict[str, object] | None:
        """The last watch build's result, None before any; ``SnapshotError`` when unreadable."""
        path = self.root / WATCH_FILE
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise SnapshotError(f"cannot read {path}: {error}") from error
        if not isinstance(record, dict):
            raise SnapshotError(f"cannot read {path}: not a JSON object")
        return record

    def model_file(self, fingerprint: str) -> Path:
        """Where the exported ONNX model with this fingerprint lives (written by builds)."""
        return self.root / MODELS_DIR / f"{fingerprint}.onnx"

    def embedding_cache(
        self, fingerprint: str, notify: Callable[[str], None] = lambda message: None
    ) -> EmbeddingCache:
        """The embedding cache. A damaged one is set aside (renamed, never deleted) and
        replaced by an empty one, saying so through ``notify``: it only costs re-embedding."""
        path = self.root / CACHE_FILE
        try:
            return EmbeddingCache(path, fingerprint)
        except sqlite3.DatabaseError as error:
            damaged = path.with_name(f"{path.name}.damaged-{int(self._clock())}")
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{path}{suffix}", f"{damaged}{suffix}")
            notify(
                f"the embedding cache {path} is damaged ({error}); moved it to {damaged.name} "
                "and starting an empty one, so this build embeds everything"
            )
            return EmbeddingCache(path, fingerprint)

    def prune_cache(self, keep_snapshots: int) -> int:
        """After a publish: drop cache entries that none of the last ``keep_snapshots``
        published snapshots uses, sparing every entry written since the publish before the
        latest one (an interrupted build's work, which its next run still needs)."""
        published = self._published_at()
        present = set(self.snapshot_ids())
        recent = sorted((t, s) for s, t in published.items() if s in present)[-keep_snapshots:]
        times = sorted(published.values())
        spare_since = times[-2] if len(times) >= 2 else 0.0
        keep: set[str] = set()
        for _, snapshot_id in recent:
            fingerprint = self.manifest(snapshot_id).model_fingerprint
            texts = read_embedded_texts(self._snapshot_dir(snapshot_id) / CHUNKS_FILE)
            keep.update(cache_key(fingerprint, text) for text in texts)
        with self.embedding_cache("") as cache:
            return cache.prune(keep, spare_since)

    def write_snapshot(
        self,
        manifest: Manifest,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        contents: SnapshotContents | None = None,
    ) -> Manifest:
        """Write a complete, unpublished snapshot under ``snapshots/``; returns the manifest
        as written (with its files' sizes and digests)."""
        directory = self._snapshot_dir(manifest.snapshot_id)
        return write_snapshot(directory, manifest, chunks, vectors, contents)

    def record_gate(self, snapshot_id: str, record: GateRecord) -> None:
        """Keep the quality gate's figure beside the snapshot it scored (before publishing)."""
        write_gate_record(self._snapshot_dir(snapshot_id), record)

    def gate_record(self, snapshot_id: str) -> GateRecord | None:
        """The figure the gate recorded for a snapshot, or None when it was never gated."""
        return read_gate_record(self._snapshot_dir(snapshot_id))

    def verify(self, snapshot_id: str | None = None) -> Manifest:
        """Check a snapshot (the live one by default) in full: its manifest, and the size and
        sha256 of every data file. ``SnapshotError`` names what is damaged."""
        snapshot_id = snapshot_id or self.live_id()
        directory = self._snapshot_dir(snapshot_id)
        if not directory.is_dir():
            raise SnapshotError(f"no snapshot {snapshot_id} under {self.root}")
        manifest = read_manifest(directory)
        if manifest.snapshot_id != snapshot_id:
            raise SnapshotError(
                f"snapshot {snapshot_id} holds the manifest of {manifest.snapshot_id}"
            )
        check_files(directory, manifest, digests=True)
        read_gate_record(directory)  # raises SnapshotError when present but damaged
        return manifest

    def previous_id(self) -> str | None:
        """The snapshot that was live before the current one, when it is still present: the
        most recently published other snapshot (by the publish log), else the newest older one."""
        live = self.current_id()
        present = [s for s in self.snapshot_ids() if s != live]
        published = self._published_at()
        logged = sorted((t, s) for s, t in published.items() if s in present)
        if logged:
            return logged[-1][1]
        older = [s for s in present if live is None or s < live]
        return older[-1] if older else None

    def rollback(self, to: str | None, wait_seconds: float, notify: Callable[[str], None]) -> str:
        """Make the previous snapshot (or ``to``) live again through the same atomic publish,
        after checking it in full. Holds the build lock, so no build publishes meanwhile."""
        with self.build_lock(wait_seconds, notify):
            target = to or self.previous_id()
            if target is None:
                raise SnapshotError(f"no earlier snapshot under {self.root} to roll back to")
            if target == self.current_id():
                raise SnapshotError(f"snapshot {target} is already live")
            if target not in self.snapshot_ids():
                present = ", ".join(self.snapshot_ids()) or "none"
                raise SnapshotError(f"no snapshot {target} under {self.root} (present: {present})")
            self.verify(target)
            self.publish(target)
            return target

    def publish(self, snapshot_id: str) -> None:
        """Make a written snapshot live: record when, then replace CURRENT atomically."""
        fault_point("publish")
        published = {**self._published_at(), snapshot_id: self._clock()}
        _write_atomically(self.root / PUBLISH_LOG, _log_lines(published))
        _write_atomically(self.root / CURRENT_FILE, snapshot_id + "\n")
        fault_point("published")

    def discard(self, snapshot_id: str) -> None:
        """Delete a written snapshot that will not be published (never the live one)."""
        if snapshot_id == self.current_id():
            raise SnapshotError(f"snapshot {snapshot_id} is live and cannot be discarded")
        shutil.rmtree(self._snapshot_dir(snapshot_id), ignore_errors=True)

    def prune(self, keep: set[str]) -> list[str]:
        """Delete snapshots not in ``keep`` and past the grace period; returns their ids."""
        published = self._published_at()
        removed = snapshots_to_prune(
            self.snapshot_ids(), keep, published, self._clock(), self.prune_grace_seconds
        )
        for snapshot_id in removed:
            shutil.rmtree(self._snapshot_dir(snapshot_id), ignore_errors=True)
        remaining = {s: t for s, t in published.items() if s not in removed}
        if remaining != published:
            _write_atomically(self.root / PUBLISH_LOG, _log_lines(remaining))
        return removed

    def _published_at(self) -> dict[str, float]:
        """Publish times by snapshot id; a damaged log only shortens the grace period."""
        try:
            lines = (self.root / PUBLISH_LOG).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return {}
        published = {}
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                published[str(entry["snapshot"])] = float(entry["published_at"])
        return published


def _log_lines(published: Mapping[str, float]) -> str:
    return "".join(
        json.dumps({"snapshot": s, "published_at": t}) + "\n" for s, t in sorted(published.items())
    )
