"""Watching the seeds folder: an incremental build once the changed files have been quiet.

``python -m search_api --watch`` (or ``SEEDSEARCH_WATCH=true``) runs one ``SeedsWatcher`` in
the process that serves (the supervisor under ``--workers N``), and only while it holds the
watcher lock of the index root, so one process per root watches and builds; every worker
serves the new snapshot at its next check of CURRENT.

- A change counts when the build could read the path: a ``.txt`` or ``.md`` file (or a
  folder) outside hidden folders and not under a temporary name (``is_temporary_name``), so
  a file copied as ``NAME.part`` counts once it is renamed, never before.
- A changed path is quiet once its size and mtime have stayed the same for
  ``watch_quiet_seconds``; a batch is built once every path in it is quiet. Paths still
  changing ``BUSY_FACTOR`` quiet periods after the batch began are left for the next round
  (the build reads whatever they hold then, and the next round reads them again).
- The build is the rebuild path of ``POST /admin/reindex`` (``search_api.jobs``): a child
  process at build niceness holding the build lock, one at a time. Changes noted while it runs
  wait for the next build, so none is lost; when another build holds the lock the batch waits.
- Each build's result is written to ``watch.json`` under the index root (``/healthz`` shows
  it) and logged. A failed build is recorded, never raised: the watch goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import watchfiles

from indexer.errors import BuildLockedError, SeedsearchError
from indexer.plan import is_seed_name, is_temporary_name
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.jobs import REBUILD_SHUTDOWN_SECONDS, Rebuilds, ReindexJob

log = logging.getLogger("seedsearch")
# A path changing for longer than this many quiet periods no longer holds its batch back.
BUSY_FACTOR = 10
# Always build the whole folder once at start: it may have changed while nothing watched.
STARTUP = "."
POLL_DELAY_MS = 500  # how often polling looks at the folder
TICK_MS = 250  # how often the loop looks at pending paths when no event arrives
LOCKED_RETRY_SECONDS = 1.0  # another build holds the lock: try again after it
FAILED_START_RETRY_SECONDS = 10.0  # the build process did not start: try again later
_JOB_POLL_SECONDS = 0.2
# File systems that send no events for changes made by other machines.
NETWORK_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre",
     "gpfs", "davfs", "fuse.sshfs", "fuse.glusterfs", "fuse.rclone", "fuse.s3fs"}
)  # fmt: skip

# (size, mtime in ns), or None when the path does not exist (deleted, renamed away).
Signature = tuple[int, int] | None


def counts(relative: str, is_folder: bool) -> bool:
    """Whether a change at ``relative`` (a path under the seeds folder) can change a build."""
    parts = PurePosixPath(relative).parts
    if not parts or any(part.startswith(".") for part in parts[:-1]):
        return False  # the build's scan skips hidden folders
    name = parts[-1]
    if is_temporary_name(name):
        return False
    # A folder created, renamed or deleted changes the files under it; a deleted one can no
    # longer be told from a file, and a name without a suffix is most likely a folder.
    return is_folder or is_seed_name(name) or not PurePosixPath(name).suffix


@dataclass(frozen=True)
class _Seen:
    first: float  # when the path joined the batch
    changed: float  # when its signature last changed
    signature: Signature


@dataclass(frozen=True)
class Batch:
    """Changed paths waiting for a build, and when each last changed. Pure: every change
    returns a new batch."""

    quiet_seconds: float
    paths: Mapping[str, _Seen] = field(default_factory=dict)

    def changed(self, path: str, signature: Signature, now: float) -> Batch:
        """An event at ``path``: it must be quiet again from ``now``."""
        seen = self.paths.get(path)
        first = seen.first if seen else now
        return replace(self, paths={**self.paths, path: _Seen(first, now, signature)})

    def looked(self, signatures: Mapping[str, Signature], now: float) -> Batch:
        """A look at the pending paths: those whose size or mtime moved are not quiet yet."""
        paths = dict(self.paths)
        for path, signature in signatures.items():
            seen = paths.get(path)
            if seen is not None and seen.signature != signature:
                paths[path] = _Seen(seen.first, now, signature)
        return replace(self, paths=paths)

    def ready(self, now: float) -> tuple[str, ...]:
        """The paths to build now: all of them once all are quiet, or the quiet ones once the
        batch has waited ``BUSY_FACTOR`` quiet periods for the rest; else none."""
        quiet = sorted(p for p, s in self.paths.items() if now - s.changed >= self.quiet_seconds)
        if len(quiet) == len(self.paths):
            return tuple(quiet)
        waited = max((now - self.paths[p].first for p in quiet), default=0.0)
        return tuple(quiet) if waited >= BUSY_FACTOR * self.quiet_seconds else ()

    def without(self, paths: Iterable[str]) -> Batch:
        gone = set(paths)
        return replace(self, paths={p: s for p, s in self.paths.items() if p not in gone})


def mount_type(path: str, mounts: str) -> str:
    """The file system type of ``path`` (absolute, resolved) by a ``/proc/mounts`` text."""
    best, kind = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def polling_reason(settings: Settings, mounts: str) -> str | None:
    """Why the watcher polls rather than waits for events, or None when it waits."""
    if settings.watch_polling:
        return "SEEDSEARCH_WATCH_POLLING is set"
    kind = mount_type(os.path.realpath(settings.seeds_dir), mounts)
    if kind in NETWORK_FILE_SYSTEMS:
        return f"the seeds folder is on {kind}, which sends no events for other machines' changes"
    return None


WatchResult = Literal["ok", "errors", "failed"]


@dataclass(frozen=True)
class WatchRecord:
    """One watch build's result, as ``watch.json`` and ``/healthz`` give it."""

    result: WatchResult  # "errors": published, with per-file errors; "failed": no build
    finished_at: float
    changed: list[str]  # the paths that started it (the first 20)
    builds: int  # watch builds since this watcher started
    mode: Literal["events", "polling"]
    job: str | None = None  # its record: GET /admin/reindex/{job}
    snapshot: str | None = None
    published: bool = False
    embedded: int = 0
    reused: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)  # per file: file, error
    error: str | None = None  # why the build failed


def record_of(report: dict[str, Any] | None, error: str | None, **common: Any) -> WatchRecord:
    """A watch record from a finished job's report (or why it failed)."""
    if report is None:
        return WatchRecord("failed", error=error or "the build failed", **common)
    errors = [{"file": str(e["file"]), "error": str(e["error"])} for e in report["errors"]]
    return WatchRecord(
        "errors" if errors else "ok", snapshot=report["snapshot"], published=report["published"],
        embedded=report["embedded"], reused=report["reused"], errors=errors, **common,
    )  # fmt: skip


def _signature(path: Path) -> Signature:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


class SeedsWatcher:
    """Watches the seeds folder and builds once changes are quiet (module docstring)."""

    def __init__(self, settings: Settings, rebuilds: Rebuilds | None = None) -> None:
        self._settings = settings
        self._seeds = settings.seeds_dir.resolve()
        self._store = IndexStore(settings.index_dir, settings.prune_grace_seconds)
        self.rebuilds = rebuilds or Rebuilds(settings)
        self._batch = Batch(settings.watch_quiet_seconds)
        self._building: Future[tuple[str, ...]] | None = None
        self._builder = ThreadPoolExecutor(1, thread_name_prefix="watch-build")
        self._retry_at = 0.0
        self._builds = 0
        self._mode: Literal["events", "polling"] = "events"

    def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set; never raises for a failed build or a missing folder."""
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8")
        except OSError:
            mounts = ""
        reason = polling_reason(self._settings, mounts)
        self._batch = self._batch.changed(STARTUP, None, time.monotonic())
        while not stop.is_set():
            self._mode = "polling" if reason else "events"
            how = f"polling every {POLL_DELAY_MS} ms ({reason})" if reason else "file system events"
            log.info("watching %s for changes: %s", self._seeds, how)
            try:
                self._watch(stop, polling=reason is not None)
            except Exception as error:  # the folder went away, or events ran out: go on
                if not self._seeds.is_dir():
                    log.error("watch: the seeds folder %s is missing; waiting for it", self._seeds)
                    while not stop.wait(1.0) and not self._seeds.is_dir():
                        pass
                    continue
                if reason is None:
                    reason = f"file system events failed: {error}"
                log.error("watching %s failed: %s; watching again", self._seeds, error)
                stop.wait(1.0)
        self._builder.shutdown(wait=False)

    def _watch(self, stop: threading.Event, polling: bool) -> None:
        changes: Iterable[set[tuple[watchfiles.Change, str]]] = watchfiles.watch(
            self._seeds, watch_filter=None, stop_event=stop, force_polling=polling,
            poll_delay_ms=POLL_DELAY_MS, debounce=TICK_MS, rust_timeout=TICK_MS,
            yield_on_timeout=True, raise_interrupt=False, ignore_permission_denied=True,
        )  # fmt: skip
        for found in changes:
            self._tick(found, time.monotonic())
        if not stop.is_set():
            raise OSError("the watch ended")

    def _tick(self, found: set[tuple[watchfiles.Change, str]], now: float) -> None:
        """Note the events, look at the pending paths, and start a build when one is due."""
        for _, raw in found:
            try:
                relative = Path(raw).relative_to(self._seeds).as_posix()
            except ValueError:
                continue
            if counts(relative, Path(raw).is_dir()):
                self._batch = self._batch.changed(relative, _signature(Path(raw)), now)
        pending = {p: _signature(self._seeds / p) for p in self._batch.paths if p != STARTUP}
        self._batch = self._batch.looked(pending, now)
        if self._building is not None:
            if not self._building.done():
                return
            try:
                retry = self._building.result()
            except Exception:  # a bug, not a build's failure: say so and keep watching
                log.exception("watch: the build round failed")
                retry = ()
            self._building = None
            for path in retry:  # it did not build: they wait again
                self._batch = self._batch.changed(path, _signature(self._seeds / path), now)
        ready = self._batch.ready(now) if now >= self._retry_at else ()
        if ready:
            self._batch = self._batch.without(ready)
            self._building = self._builder.submit(self._build, ready)

    def _build(self, paths: tuple[str, ...]) -> tuple[str, ...]:
        """Run one build for ``paths`` and record how it went; the paths to retry, if it did
        not run."""
        shown = [p for p in paths if p != STARTUP] or ["(the whole folder, at start)"]
        try:
            job = self.rebuilds.start()
        except BuildLockedError:
            log.info("watch: another build holds the lock; building after it")
            self._retry_at = time.monotonic() + LOCKED_RETRY_SECONDS
            return paths
        except (SeedsearchError, OSError) as error:
            self._retry_at = time.monotonic() + FAILED_START_RETRY_SECONDS
            self._record(None, None, str(error), shown)
            return paths
        log.info("watch: building for %s (job %s)", ", ".join(shown[:5]), job.job)
        try:
            job = self._finished(job)
        except (SeedsearchError, OSError) as error:
            self._record(job.job, None, f"cannot read its job record: {error}", shown)
            return ()
        self._record(job.job, job.report, job.error, shown)
        return ()

    def _finished(self, job: ReindexJob) -> ReindexJob:
        """The job once it is no longer running (a dead build's record reads as failed)."""
        while job.state == "running":
            time.sleep(_JOB_POLL_SECONDS)
            job = self.rebuilds.get(job.job) or job.model_copy(
                update={"state": "failed", "error": "its job record is gone"}
            )
        return job

    def _record(
        self, job: str | None, report: dict[str, Any] | None, error: str | None,
        changed: list[str],
    ) -> None:  # fmt: skip
        self._builds += 1
        record = record_of(
            report, error, finished_at=time.time(), changed=changed[:20], builds=self._builds,
            mode=self._mode, job=job,
        )  # fmt: skip
        if record.result == "failed":
            log.error("watch build %s failed: %s", job or "-", record.error)
        else:
            verb = "published" if record.published else "unchanged:"
            log.info(
                "watch build %s: %s %s (%d embedded, %d reused)",
                job, verb, record.snapshot, record.embedded, record.reused,
            )  # fmt: skip
            for problem in record.errors:
                log.warning(
                    "watch build %s: skipped %s: %s", job, problem["file"], problem["error"]
                )
        try:
            self._store.record_watch(asdict(record))
        except OSError as unwritten:
            log.error("watch: cannot record the build's result: %s", unwritten)


@contextlib.contextmanager
def watching(settings: Settings) -> Iterator[None]:
    """Watch the seeds folder in a thread of this process while the block runs, if this
    process takes the index root's watcher lock (else say that another one watches). At the
    end, a build still running finishes, or is stopped, as rebuilds are at shutdown."""
    store = IndexStore(settings.index_dir, settings.prune_grace_seconds)
    with store.watch_lock() as mine:
        if not mine:
            log.warning("not watching: another process watches for %s", settings.index_dir)
            yield
            return
        watcher = SeedsWatcher(settings)
        stop = threading.Event()
        thread = threading.Thread(target=watcher.run, args=(stop,), name="watch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)
            watcher.rebuilds.wait(REBUILD_SHUTDOWN_SECONDS)
