"""Rebuilds through the API run as ``python -m indexer build`` child processes that hold the
build lock for their whole run. Their job records live under the index root, so every server
process, and a restarted server, tells the same story of a job; a build that died reads as
failed, never as running forever."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API_KEY, Server, bbc_files, eventually, new_corpus, run_python, running_server

from indexer.errors import EXIT_LOCKED, BuildLockedError, JobRecordError, UsageError
from indexer.settings import Settings
from indexer.store import (
    KEPT_JOBS,
    IndexStore,
    JobRecord,
    JobRecords,
    check_job_id,
    new_job_id,
)
from search_api.jobs import Rebuilds, RebuildStartError

ADMIN = {"X-API-Key": API_KEY}


def _dead_pid() -> int:
    """A pid no process has (counting down from the highest the kernel hands out)."""
    for pid in range(int(Path("/proc/sys/kernel/pid_max").read_text()) - 1, 1, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise AssertionError("every pid is taken")


def _running(job_id: str, pid: int) -> JobRecord:
    return JobRecord(job_id, "running", time.time(), pid=pid, host=socket.gethostname())


# The records, in the store


def test_a_record_left_running_by_a_process_that_is_gone_reads_as_failed(tmp_path: Path) -> None:
    records = JobRecords(IndexStore(tmp_path / "index"))
    job = _running(new_job_id(), _dead_pid())
    records.write(job)
    found = records.get(job.job)
    assert found is not None and found.state == "failed"
    assert found.error == f"the build process (pid {job.pid} on {job.host}) ended without finishing"
    assert found.started_at == job.started_at
    assert (tmp_path / "index" / "jobs" / f"{job.job}.json").is_file()  # jobs/<id>.json


def test_a_running_record_is_running_only_while_some_build_holds_the_lock(tmp_path: Path) -> None:
    """A live pid is not enough (after a reboot pids are reused): the build holds the lock."""
    store = IndexStore(tmp_path / "index")
    records = JobRecords(store)
    job = _running(new_job_id(), os.getpid())
    records.write(job)
    with IndexStore(store.root).build_lock(wait_seconds=0, notify=print):
        assert records.get(job.job) == job
    found = records.get(job.job)
    assert found is not None and found.state == "failed"
    assert found.error is not None and "no build holds the lock" in found.error


def test_a_finished_record_reads_as_written(tmp_path: Path) -> None:
    records = JobRecords(IndexStore(tmp_path / "index"))
    job = _running(new_job_id(), _dead_pid())
    done = job.succeeded({"snapshot": "s1", "embedded": 3}, finished_at=job.started_at + 1)
    records.write(done)
    assert records.get(job.job) == done
    failed = job.failed("nothing to index in seeds", finished_at=job.started_at + 1)
    records.write(failed)
    assert records.get(job.job) == failed


def test_only_the_newest_records_are_kept(tmp_path: Path) -> None:
    records = JobRecords(IndexStore(tmp_path / "index"))
    started = time.time()
    ids = [new_job_id() for _ in range(KEPT_JOBS + 5)]
    for n, job_id in enumerate(ids):
        records.write(JobRecord(job_id, "running", started + n).failed("stopped", started + n))
        records.write(JobRecord(job_id, "running", started + n))  # a new job prunes
    kept = {path.stem for path in (tmp_path / "index" / "jobs").glob("*.json")}
    assert kept == set(ids[-KEPT_JOBS:])


def test_ids_no_job_has_are_none_and_a_damaged_record_is_named(tmp_path: Path) -> None:
    records = JobRecords(IndexStore(tmp_path / "index"))
    assert records.get(new_job_id()) is None
    assert records.get("../CURRENT") is None and records.get("") is None
    with pytest.raises(UsageError, match="not a job id"):
        check_job_id("../CURRENT")
    job_id = new_job_id()
    (tmp_path / "index" / "jobs").mkdir(parents=True)
    (tmp_path / "index" / "jobs" / f"{job_id}.json").write_text("{not json")
    with pytest.raises(JobRecordError, match=f"{job_id}.json"):
        records.get(job_id)


def test_the_build_lock_is_reentrant_for_the_store_that_holds_it(tmp_path: Path) -> None:
    """The command line takes the lock first, then ``build_index`` takes it again."""
    store = IndexStore(tmp_path / "index")
    with store.build_lock(0, print), store.build_lock(0, print):
        assert not _lock_is_free(store.root)
    assert _lock_is_free(store.root)


def _lock_is_free(root: Path) -> bool:
    """Whether no build holds the lock (asked through a store of its own)."""
    try:
        with IndexStore(root).build_lock(wait_seconds=0, notify=print):
            return True
    except BuildLockedError:
        return False


# The command line


def test_build_no_wait_exits_4_at_once_while_another_build_holds_the_lock(tmp_path: Path) -> None:
    """It takes the lock before anything else: a model that cannot load is not reached."""
    index = tmp_path / "index"
    seeds = str(new_corpus(tmp_path / "seeds"))
    with IndexStore(index).build_lock(wait_seconds=0, notify=print):
        refused = run_python(
            "-m", "indexer", "build", "--no-wait", "--seeds", seeds, "--index", str(index),
            "--model", "./no-such-model", "--json",
        )  # fmt: skip
        renamed = run_python(
            "-m", "indexer", "build", "--no-wait", "--seeds", seeds, "--index", str(index),
            "--workers", "1",
        )  # fmt: skip
    assert refused.returncode == EXIT_LOCKED and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: another build is running (lock {index / 'build.lock'})"
    ]
    # The Ray flag's old name still works, with a notice.
    assert renamed.returncode == EXIT_LOCKED
    assert renamed.stderr.splitlines()[0] == "note: --workers is now --ray-actors"
    assert len(renamed.stderr.splitlines()) == 2


# The API, on real servers


def _job(url: str, job_id: str) -> dict[str, Any]:
    """A job as the API tells it, on a fresh connection (so any worker may answer)."""
    answer = httpx.get(f"{url}/admin/reindex/{job_id}", headers=ADMIN, timeout=30)
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def _follow(url: str, job_id: str) -> list[dict[str, Any]]:
    """Every answer about a job, each on a fresh connection, until it is no longer running."""
    answers = [_job(url, job_id)]
    deadline = time.monotonic() + 300
    while answers[-1]["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        answers.append(_job(url, job_id))
    return answers


def _served(url: str) -> set[str]:
    """The snapshots six fresh connections find served."""
    return {httpx.get(f"{url}/stats", timeout=30).json()["snapshot"] for _ in range(6)}


def _reindex(url: str) -> httpx.Response:
    return httpx.post(f"{url}/admin/reindex", headers=ADMIN, timeout=120)


def _records(index: Path) -> list[str]:
    return sorted(path.name for path in (index / "jobs").glob("*.json"))


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory, seed_settings: Settings
) -> Iterator[Server]:
    """``--workers 2`` over a copy of the seed index, whose seeds folder has four more
    articles to embed."""
    root = tmp_path_factory.mktemp("two-workers")
    shutil.copytree(seed_settings.index_dir, root / "index")
    seeds = new_corpus(root / "seeds", *bbc_files(4))
    environment = {"SEEDSEARCH_API_KEY": API_KEY, "SEEDSEARCH_SEEDS_DIR": str(seeds),
                   "SEEDSEARCH_RELOAD_INTERVAL_SECONDS": "0.2"}  # fmt: skip
    with running_server(root / "index", root / "server.log", environment, "--workers", "2") as (
        url,
        _,
    ):
        yield Server(url, seeds, root / "index")


def test_one_rebuild_at_a_time_and_every_connection_reads_the_same_job(
    two_workers: Server,
) -> None:
    url, index = two_workers.url, two_workers.index_dir
    first = _reindex(url)
    second = _reindex(url)  # while the first builds: refused, never queued, no job
    assert first.status_code == 202, first.text
    job = first.json()
    assert job["state"] == "running" and first.headers["location"] == f"/admin/reindex/{job['job']}"
    assert second.status_code == 409, second.text
    assert "another build is running" in second.json()["detail"]
    assert _records(index) == [f"{job['job']}.json"]

    answers = [job, *_follow(url, job["job"]), *(_job(url, job["job"]) for _ in range(8))]
    states = [answer["state"] for answer in answers]
    ended = states.index("succeeded")
    assert set(states[:ended]) == {"running"} and set(states[ended:]) == {"succeeded"}
    assert {(a["job"], a["started_at"]) for a in answers} == {(job["job"], job["started_at"])}
    assert all(a["report"] is None and a["finished_at"] is None for a in answers[:ended])
    assert all(a == answers[-1] for a in answers[ended:])  # one report, whoever answers
    report = answers[-1]["report"]
    assert report["published"] and report["files"] == 5 and report["embedded"] > 0
    assert answers[-1]["finished_at"] >= job["started_at"]
    assert eventually(lambda: _served(url) == {report["snapshot"]}, 30)


def test_a_build_holding_the_lock_turns_a_rebuild_away_within_seconds(
    two_workers: Server,
) -> None:
    """A build from the command line (or another server) holds the lock: 409, not a wait
    for it and not a failed job."""
    index = two_workers.index_dir
    before = _records(index)
    with IndexStore(index).build_lock(wait_seconds=0, notify=print):
        started = time.monotonic()
        answer = _reindex(two_workers.url)
        seconds = time.monotonic() - started
    assert answer.status_code == 409, answer.text
    assert "another build is running" in answer.json()["detail"]
    assert seconds < 15, seconds  # the child's start-up (about 2 s idle), never the build
    assert _records(index) == before


def test_a_rebuild_runs_at_build_priority_and_when_killed_reads_as_failed(
    two_workers: Server,
) -> None:
    url, index = two_workers.url, two_workers.index_dir
    for path in bbc_files(8, "sport"):  # enough to embed that it is killed part-way
        shutil.copy(path, two_workers.seeds_dir / f"sport-{path.name}")
    live = IndexStore(index).current_id()
    answer = _reindex(url)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job"]
    record = JobRecords(IndexStore(index)).get(job_id)
    assert record is not None and record.pid is not None, record
    # Field 19 of /proc/<pid>/stat is the niceness: SEEDSEARCH_BUILD_NICE (10) below the server's.
    niceness = int(Path(f"/proc/{record.pid}/stat").read_text().split()[18])
    os.kill(record.pid, signal.SIGKILL)
    assert niceness == min(19, os.nice(0) + 10), niceness
    # Its server reaps it and says how it ended (another worker, meanwhile, that it ended).
    assert eventually(lambda: "SIGKILL" in (_job(url, job_id)["error"] or ""), 30)
    failed = _job(url, job_id)
    assert failed["state"] == "failed" and failed["report"] is None
    assert failed["error"].startswith(f"the build process (pid {record.pid}) was stopped")
    assert IndexStore(index).current_id() == live
    assert _lock_is_free(index)


def test_a_job_survives_a_restart_and_one_whose_build_died_reads_as_failed(
    seed_settings: Settings, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "broken.txt").write_bytes(b"\xff\xfe\x00 not text")
    environment = {"SEEDSEARCH_API_KEY": API_KEY, "SEEDSEARCH_SEEDS_DIR": str(seeds)}
    with running_server(index, tmp_path / "first.log", environment) as (url, _):
        answer = _reindex(url)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job"]
        failed = _follow(url, job_id)[-1]
    assert failed["state"] == "failed" and f"nothing to index in {seeds}" in failed["error"]
    assert failed["finished_at"] >= failed["started_at"]
    # A build that died with its server left its record running.
    orphan = _running(new_job_id(), _dead_pid())
    JobRecords(IndexStore(index)).write(orphan)
    with running_server(index, tmp_path / "second.log", environment) as (url, _):
        assert _job(url, job_id) == failed
        died = _job(url, orphan.job)
        unknown = httpx.get(f"{url}/admin/reindex/{new_job_id()}", headers=ADMIN, timeout=30)
    assert died["state"] == "failed"
    assert (
        died["error"]
        == f"the build process (pid {orphan.pid} on {orphan.host}) ended without finishing"
    )
    assert unknown.status_code == 404


# The server's side, with a stand-in for the build's process


def _stand_in_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int, said: str
) -> None:
    """Make the server's rebuilds run a script that says ``said`` and exits at once."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\necho 'error: {said}' >&2\nexit {exit_code}\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(script))


def test_a_rebuild_that_ends_before_taking_the_lock_is_an_error_and_a_failed_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No build ran: the route answers 500 at once with why, and the record keeps it."""
    _stand_in_build(tmp_path, monkeypatch, 1, "cannot create /read-only/index")
    rebuilds = Rebuilds(Settings(index_dir=tmp_path / "index"))
    with pytest.raises(RebuildStartError, match="exited with code 1: cannot create") as raised:
        rebuilds.start()
    [job_id] = [path.stem for path in (tmp_path / "index" / "jobs").glob("*.json")]
    assert f"rebuild {job_id} did not start" in str(raised.value)
    job = rebuilds.get(job_id)
    assert job is not None and job.state == "failed" and job.finished_at is not None
    assert job.error is not None and job.error.endswith(": cannot create /read-only/index")


def test_a_rebuild_refused_the_lock_is_a_conflict_and_no_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in_build(tmp_path, monkeypatch, EXIT_LOCKED, "another build is running (lock L)")
    rebuilds = Rebuilds(Settings(index_dir=tmp_path / "index"))
    with pytest.raises(BuildLockedError, match=r"^another build is running \(lock L\)$"):
        rebuilds.start()
    assert not (tmp_path / "index" / "jobs").exists()
