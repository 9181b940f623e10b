"""Rebuild job records: one small JSON file per job under the index root, so every server
process (and every host that reads the root) gives the same answer about a job.

Layout::

    jobs/<id>.json           one rebuild's record (replaced atomically); the newest
                             KEPT_JOBS are kept

The build a job names writes its record itself, while it holds the build lock: ``running``
right after taking the lock, then ``succeeded`` (with its report) or ``failed`` (with why)
before letting go. So a record still ``running`` while its process is gone, or while no build
holds the lock, belongs to a build that died (killed, out of memory, the machine rebooted):
it reads as ``failed``, with that reason, never as ``running`` forever.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import uuid
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from indexer.errors import BuildLockedError, JobRecordError, UsageError
from indexer.store._files import write_atomically
from indexer.store._root import IndexStore

JobState = Literal["running", "succeeded", "failed"]
JOB_STATES: tuple[JobState, ...] = ("running", "succeeded", "failed")
JOBS_DIR = "jobs"
KEPT_JOBS = 20  # finished jobs stay readable until this many newer ones exist
_JOB_ID = re.compile(r"[0-9a-f]{12}")


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def check_job_id(job_id: str) -> str:
    """``job_id`` when it has the shape ``new_job_id`` gives; ``UsageError`` otherwise."""
    if not _JOB_ID.fullmatch(job_id):
        raise UsageError(f"{job_id!r} is not a job id (12 lowercase hex digits)")
    return job_id


@dataclass(frozen=True)
class JobRecord:
    """One rebuild: its state, when it ran, and its report or why it failed."""

    job: str
    state: JobState
    started_at: float
    finished_at: float | None = None
    report: dict[str, Any] | None = None  # the build report, once it succeeded
    error: str | None = None  # why it failed
    pid: int | None = None  # the build process, and the host it runs on
    host: str | None = None

    @classmethod
    def running(cls, job_id: str, started_at: float) -> JobRecord:
        """The record of a job this process is about to run."""
        return cls(job_id, "running", started_at, pid=os.getpid(), host=socket.gethostname())

    def succeeded(self, report: dict[str, Any], finished_at: float) -> JobRecord:
        return replace(self, state="succeeded", report=report, finished_at=finished_at)

    def failed(self, error: str, finished_at: float | None) -> JobRecord:
        return replace(self, state="failed", error=error, finished_at=finished_at)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> JobRecord:
        """Parse a record; ``ValueError`` (or ``TypeError``) names what is wrong with it."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("state") not in JOB_STATES:
            raise ValueError("not a job record")
        known = {field.name for field in fields(cls)}
        record = cls(**{key: value for key, value in data.items() if key in known})
        if not isinstance(record.job, str) or not isinstance(record.started_at, int | float):
            raise ValueError("not a job record")
        return record


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


class JobRecords:
    """The job records of one index root."""

    def __init__(self, store: IndexStore) -> None:
        self._store = store
        self._folder = store.root / JOBS_DIR

    def _path(self, job_id: str) -> Path:
        return self._folder / f"{job_id}.json"

    def write(self, record: JobRecord) -> None:
        """Write a record atomically; a new job's (``running``) also prunes the oldest."""
        check_job_id(record.job)
        self._folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self._path(record.job), record.to_json())
        if record.state == "running":
            self._prune()

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None when there is none (never was, or pruned). A record left
        ``running`` by a build that is gone reads as ``failed``, saying so."""
        record = self.written(job_id)
        if record is None or record.state != "running":
            return record
        reason = self._why_gone(record)
        if reason is None:
            return record
        # The build writes its last record before it exits and lets go of the lock: read again,
        # in case it finished between the first read and the check.
        again = self.written(job_id)
        if again is None or again.state != "running":
            return again
        return again.failed(reason, finished_at=None)

    def written(self, job_id: str) -> JobRecord | None:
        """The record as last written, without ``get``'s check that its build still runs."""
        if not _JOB_ID.fullmatch(job_id):
            return None  # no file could hold it, and no path is built from it
        path = self._path(job_id)
        try:
            return JobRecord.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as error:
            raise JobRecordError(f"cannot read the job record {path}: {error}") from error

    def _why_gone(self, record: JobRecord) -> str | None:
        """Why a ``running`` record's build cannot still be running, or None when it may be."""
        where = f"pid {record.pid} on {record.host}"
        if record.host == socket.gethostname() and record.pid and not process_alive(record.pid):
            return f"the build process ({where}) ended without finishing"
        if not self._build_running():  # e.g. its pid was reused after a reboot
            return f"the build process ({where}) ended without finishing: no build holds the lock"
        return None

    def _build_running(self) -> bool:
        """Whether some build holds the lock (True when that cannot be told). A fresh store,
        since the lock is reentrant for the store object that holds it. Taking the free lock
        for a moment can turn away a ``--no-wait`` build starting in that very moment."""
        try:
            with IndexStore(self._store.root).build_lock(0, lambda message: None):
                return False
        except BuildLockedError:
            return True
        except OSError:  # e.g. a read-only root: the record is all there is to go by
            return True

    def _prune(self) -> None:
        """Delete all but the newest KEPT_JOBS records, by start time (unreadable ones first)."""
        started: list[tuple[float, Path]] = []
        for path in self._folder.glob("*.json"):
            try:
                started.append((JobRecord.from_json(path.read_text("utf-8")).started_at, path))
            except FileNotFoundError:
                continue
            except (OSError, ValueError, TypeError):
                started.append((-math.inf, path))
        for _, path in sorted(started)[:-KEPT_JOBS]:
            path.unlink(missing_ok=True)
