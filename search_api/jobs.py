"""Rebuilds started through the API: ``python -m indexer build`` in a child process.

The build runs apart from the server, at build niceness, holding the build lock for its whole
run; its job record lives under the index root, so every worker (and every restart) answers
for it. The route answers only once the child holds the lock, so no build started elsewhere
can slip in between and turn a 409 into a failed job:

1. ``start`` picks a job id and starts ``python -m indexer build --json --no-wait --job ID``
   with the server's settings in its environment, in a session of its own (a Ctrl-C meant
   for the server does not reach it; the server decides).
2. The child takes the build lock at once or exits 4 (``EXIT_LOCKED``). Holding it, it writes
   the job record ``running``, builds, and writes ``succeeded`` with the report (the one
   ``--json`` prints) or ``failed`` with why, before it lets go of the lock.
3. ``start`` waits (at most ``START_SECONDS``) for whichever comes first: the record (202 with
   it), exit 4 (409, ``BuildLockedError``), or any other end before a record: then no build
   ran, so the route writes a failed record with the child's last error line and answers 500
   (``RebuildStartError``) naming it.
4. A thread of this process reaps the child, marks a record it left ``running`` as failed
   (killed, out of memory), and calls ``on_finish`` (the app refreshes the live searcher, so
   the new snapshot is served at once rather than at the next check of CURRENT).

SIGTERM (or Ctrl-C) to the server while a child builds: the server stops taking requests and
``wait`` lets the build finish, for up to ``REBUILD_SHUTDOWN_SECONDS``, then exits 0; a build
still running then is sent SIGTERM and its job reads ``failed``, saying so. Stopping a build
is always safe (it holds the lock and publishes atomically), so this only trades a prompt
exit for a finished rebuild. A SIGTERM sent to the child itself ends the build at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from indexer.errors import EXIT_LOCKED, BuildLockedError, SeedsearchError
from indexer.settings import Settings, settings_to_environment
from indexer.store import IndexStore, JobRecord, JobRecords, JobState, new_job_id

log = logging.getLogger("seedsearch")
START_SECONDS = 30.0  # for the child to take the lock (it imports the indexer first)
REBUILD_SHUTDOWN_SECONDS = 600.0  # at shutdown, how long a running rebuild may still take
_POLL_SECONDS = 0.05


class ReindexJob(BaseModel):
    job: str
    state: JobState
    started_at: float
    finished_at: float | None = None
    report: dict[str, Any] | None = None  # the build report, once it succeeded
    error: str | None = None  # why it failed

    @classmethod
    def of(cls, record: JobRecord) -> ReindexJob:
        """The API's view of a record (which also names the build's process and host)."""
        return cls(**{name: getattr(record, name) for name in cls.model_fields})


class RebuildStartError(SeedsearchError):
    """A rebuild's process ended before it took the build lock: no build ran."""


@dataclass
class _Child:
    """One rebuild process this server started."""

    job: str
    process: subprocess.Popen[str]
    ended: threading.Event = field(default_factory=threading.Event)
    last_line: str = ""  # of its stderr: the error, when it failed
    stopped_because: str = ""  # set when the server itself stopped it

    def outcome(self) -> str:
        """How the process ended, in words, for a failed record."""
        code = self.process.returncode
        if code is not None and code < 0:
            how = f"was stopped by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        said = f": {self.last_line}" if self.last_line else ""
        because = f" {self.stopped_because}" if self.stopped_because else ""
        return f"the build process (pid {self.process.pid}) {how}{because}{said}"


class Rebuilds:
    """Starts rebuilds as child processes and reads their job records."""

    def __init__(self, settings: Settings, on_finish: Callable[[], object] = lambda: None):
        self._settings = settings
        self._records = JobRecords(IndexStore(settings.index_dir, settings.prune_grace_seconds))
        self._on_finish = on_finish
        self._children: dict[str, _Child] = {}
        self._lock = threading.Lock()

    def start(self) -> ReindexJob:
        """Start a rebuild and return its job once the build holds the lock.

        ``BuildLockedError`` when another build holds it; ``RebuildStartError`` when the
        process ended (or did not take the lock within ``START_SECONDS``) without building."""
        job_id = new_job_id()
        process = subprocess.Popen(
            [sys.executable, "-m", "indexer", "build", "--json", "--no-wait", "--job", job_id],
            env={**os.environ, **settings_to_environment(self._settings)},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, errors="replace", start_new_session=True,
        )  # fmt: skip
        child = _Child(job_id, process)
        with self._lock:
            self._children[job_id] = child
        reaper = threading.Thread(
            target=self._reap, args=(child,), name=f"rebuild-{job_id}", daemon=True
        )
        reaper.start()
        deadline = time.monotonic() + START_SECONDS
        while not child.ended.wait(_POLL_SECONDS):
            record = self._records.get(job_id)
            if record is not None:
                return ReindexJob.of(record)
            if time.monotonic() > deadline:
                child.stopped_because = f"before it took the build lock ({START_SECONDS:g} s)"
                process.kill()
                child.ended.wait()
                break
        record = self._records.get(job_id)
        if record is not None:  # it wrote the record and ended since the last look
            return ReindexJob.of(record)
        if process.returncode == EXIT_LOCKED:
            raise BuildLockedError(child.last_line or "another build is running")
        failed = JobRecord(job_id, "failed", time.time(), time.time(), error=child.outcome())
        try:
            self._records.write(failed)
        except OSError as error:  # the answer still says why
            log.error("rebuild %s: cannot record that it did not start: %s", job_id, error)
        raise RebuildStartError(f"rebuild {job_id} did not start: {failed.error}")

    def get(self, job_id: str) -> ReindexJob | None:
        """A job's state, whichever server process started it; None when there is none."""
        record = self._records.get(job_id)
        return ReindexJob.of(record) if record else None

    def _reap(self, child: _Child) -> None:
        """Relay the child's stderr to the log, wait for it, and settle its record."""
        assert child.process.stderr is not None
        for line in child.process.stderr:
            if line.strip():
                child.last_line = line.strip().removeprefix("error: ")
                log.info("rebuild %s: %s", child.job, line.rstrip())
        child.process.wait()
        try:
            self._settle(child)
        finally:
            with self._lock:
                self._children.pop(child.job, None)
            child.ended.set()

    def _settle(self, child: _Child) -> None:
        """After the child ended: fail a record it left ``running`` (it died mid-build), and
        serve what it published."""
        try:
            record = self._records.written(child.job)
            if record is not None and record.state == "running":
                self._records.write(record.failed(child.outcome(), finished_at=time.time()))
        except (SeedsearchError, OSError) as error:
            log.error("rebuild %s: cannot record how it ended: %s", child.job, error)
            return
        if record is None:
            return  # it never took the lock: start() answers for it
        try:
            self._on_finish()
        except Exception:  # the periodic check of CURRENT still picks the snapshot up
            log.exception("rebuild %s: loading the new snapshot failed", child.job)

    def wait(self, seconds: float) -> None:
        """At shutdown: let running rebuilds finish for up to ``seconds``, then stop them."""
        deadline = time.monotonic() + seconds
        with self._lock:
            children = list(self._children.values())
        for child in children:
            if not child.ended.is_set():
                log.info(
                    "waiting up to %g s for rebuild %s (pid %d) to finish",
                    seconds, child.job, child.process.pid,
                )  # fmt: skip
            if child.ended.wait(max(0.0, deadline - time.monotonic())):
                continue
            child.stopped_because = f"when the server shut down, after waiting {seconds:g} s"
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
            if not child.ended.wait(10):
                child.process.kill()
                child.ended.wait()
