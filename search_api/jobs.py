"""Rebuilds started through the API run in the background, one at a time."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from indexer.errors import SeedsearchError

JobState = Literal["running", "succeeded", "failed"]
KEPT_JOBS = 20  # finished jobs stay readable until this many newer ones exist


class ReindexJob(BaseModel):
    job: str
    state: JobState
    started_at: float
    finished_at: float | None = None
    report: dict[str, Any] | None = None  # the build report, once it succeeded
    error: str | None = None  # why it failed


class JobRunningError(SeedsearchError):
    """A rebuild is already running."""


class ReindexJobs:
    """Starts a rebuild in a thread and remembers how the last ones went."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, ReindexJob] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, build: Callable[[], dict[str, Any]]) -> ReindexJob:
        """Run ``build`` in the background; ``JobRunningError`` while one still runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                running = next(j.job for j in self._jobs.values() if j.state == "running")
                raise JobRunningError(f"rebuild {running} is still running")
            job = ReindexJob(job=uuid.uuid4().hex[:12], state="running", started_at=time.time())
            self._jobs[job.job] = job
            while len(self._jobs) > KEPT_JOBS:
                self._jobs.popitem(last=False)
            self._thread = threading.Thread(
                target=self._run, args=(job.job, build), name=f"reindex-{job.job}", daemon=True
            )
            self._thread.start()
            return job.model_copy()

    def _run(self, job_id: str, build: Callable[[], dict[str, Any]]) -> None:
        try:
            outcome: dict[str, Any] = {"state": "succeeded", "report": build()}
        except SeedsearchError as error:
            outcome = {"state": "failed", "error": str(error)}
        except Exception as error:  # reported on the job, and the server carries on
            outcome = {"state": "failed", "error": f"unexpected: {error!r}"}
        with self._lock:
            self._jobs[job_id] = self._jobs[job_id].model_copy(
                update={**outcome, "finished_at": time.time()}
            )

    def get(self, job_id: str) -> ReindexJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.model_copy() if job else None

    def wait(self, seconds: float) -> None:
        """Let a running rebuild finish (at shutdown), for up to ``seconds``."""
        thread = self._thread
        if thread is not None:
            thread.join(seconds)
