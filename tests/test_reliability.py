"""Damaged snapshots are refused and named, `indexer verify` checks them in full, `indexer
rollback` makes the previous snapshot live again, and a server that refuses the snapshot CURRENT
names says it is degraded while it keeps serving the one it has."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import (
    API_KEY,
    ROOT,
    HashEmbedder,
    Server,
    bbc_files,
    new_corpus,
    run_python,
    running_server,
)

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.errors import EXIT_FAILURE, SnapshotError
from indexer.faults import FAULT_POINTS, FAULT_VARIABLE
from indexer.settings import Settings
from indexer.store import IndexStore, JobRecords
from search_api.models import SearchRequest
from search_api.searcher import Searcher

DATA_FILES = (
    "vectors.faiss", "chunks.sqlite", "sentences.npy", "articles.npy", "columns.npy", "columns.json",
    "sentence_spans.npy",
)  # fmt: skip
RELOAD_SECONDS = 30


@pytest.fixture
def two_snapshots(tmp_path: Path) -> tuple[IndexStore, str, str]:
    """An index root with two published snapshots (the second one live), built by the
    deterministic stand-in model."""
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    first = build_index(settings, embedder=HashEmbedder()).snapshot
    (settings.seeds_dir / "extra.txt").write_text("Extra headline\n\nOne more paragraph.\n")
    second = build_index(settings, embedder=HashEmbedder()).snapshot
    return IndexStore(settings.index_dir), first, second


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "missing":
        path.unlink()
    else:  # one byte flipped: same size, different content
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


def test_the_manifest_records_every_data_files_size_and_digest(
    two_snapshots: tuple[IndexStore, str, str],
) -> None:
    store, _, live = two_snapshots
    records = {f.name: f for f in store.manifest().data_files}
    assert set(records) == set(DATA_FILES)
    assert records == {f.name: f for f in store.verify(live).data_files}
    for name, size in store.file_sizes(live).items():
        assert name == "manifest.json" or records[name].size == size


@pytest.mark.parametrize("name", DATA_FILES)
@pytest.mark.parametrize("how", ["truncated", "missing"])
def test_a_server_refuses_a_snapshot_whose_files_changed_size(
    two_snapshots: tuple[IndexStore, str, str], name: str, how: str
) -> None:
    store, _, live = two_snapshots
    _damage(store.root / "snapshots" / live / name, how)
    with pytest.raises(SnapshotError, match=name):
        store.open_snapshot()


@pytest.mark.parametrize("name", DATA_FILES)
def test_verify_finds_what_the_size_check_cannot(
    two_snapshots: tuple[IndexStore, str, str], name: str
) -> None:
    store, _, live = two_snapshots
    index = str(store.root)
    assert run_python("-m", "indexer", "verify", "--index", index).returncode == 0
    _damage(store.root / "snapshots" / live / name, "flipped")
    try:
        store.open_snapshot().close()  # sizes still match: loading stays cheap
    except SnapshotError as error:  # a file read whole when a snapshot opens may show it
        assert name == "columns.json" and name in str(error)
    done = run_python("-m", "indexer", "verify", "--index", index)
    assert done.returncode == EXIT_FAILURE
    assert done.stderr.strip() == f"error: snapshot {live}: {name} does not match its sha256"
    other = run_python("-m", "indexer", "verify", "--index", index, "--snapshot", two_snapshots[1])
    assert other.returncode == 0 and "is intact" in other.stdout


def test_a_manifest_that_does_not_match_its_files_is_refused(
    two_snapshots: tuple[IndexStore, str, str],
) -> None:
    store, first, live = two_snapshots
    manifest = store.root / "snapshots" / live / "manifest.json"
    records = json.loads(manifest.read_text())
    records["data_files"] = json.loads((store.root / "snapshots" / first / "manifest.json")
                                       .read_text())["data_files"]  # fmt: skip
    manifest.write_text(json.dumps(records))
    with pytest.raises(SnapshotError, match="the manifest says"):
        store.open_snapshot()


def test_rollback_makes_the_previous_snapshot_live_and_back(
    two_snapshots: tuple[IndexStore, str, str],
) -> None:
    store, first, second = two_snapshots
    index = str(store.root)
    done = run_python("-m", "indexer", "rollback", "--index", index)
    assert done.returncode == 0, done.stderr
    assert store.current_id() == first and f"now {first} (was {second})" in done.stdout
    # The one rolled back from is now "the previous" one: a second rollback undoes the first.
    assert run_python("-m", "indexer", "rollback", "--index", index).returncode == 0
    assert store.current_id() == second
    done = run_python("-m", "indexer", "rollback", "--index", index, "--to", first)
    assert done.returncode == 0 and store.current_id() == first


def test_rollback_refuses_a_missing_a_live_or_a_damaged_target(
    two_snapshots: tuple[IndexStore, str, str], tmp_path: Path
) -> None:
    store, first, second = two_snapshots
    index = str(store.root)
    for target, message in [("20990101T000000000000Z", "present: "), (second, "already live")]:
        done = run_python("-m", "indexer", "rollback", "--index", index, "--to", target)
        assert done.returncode == EXIT_FAILURE and message in done.stderr
    _damage(store.root / "snapshots" / first / "chunks.sqlite", "flipped")
    done = run_python("-m", "indexer", "rollback", "--index", index)
    assert done.returncode == EXIT_FAILURE and "chunks.sqlite does not match" in done.stderr
    assert store.current_id() == second
    alone = Settings(seeds_dir=new_corpus(tmp_path / "alone"), index_dir=tmp_path / "alone-index")
    build_index(alone, embedder=HashEmbedder())
    done = run_python("-m", "indexer", "rollback", "--index", str(alone.index_dir))
    assert done.returncode == EXIT_FAILURE and "no earlier snapshot" in done.stderr


def _health(server: Server) -> dict[str, str]:
    response = httpx.get(f"{server.url}/healthz", timeout=30)
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


def _wait_for(server: Server, status: str) -> dict[str, str]:
    deadline = time.monotonic() + RELOAD_SECONDS
    while time.monotonic() < deadline:
        if (health := _health(server))["status"] == status:
            return health
        time.sleep(0.1)
    raise TimeoutError(f"/healthz never said {status!r}")


def test_a_server_refusing_the_current_snapshot_is_degraded_until_rolled_back(
    server: Server,
) -> None:
    store = IndexStore(server.index_dir)
    good = store.live_id()
    assert _health(server) == {"status": "ok", "snapshot": good}
    # A copy of the live snapshot under a new id, with its vectors cut short, made live.
    damaged = "20990101T000000000000Z"
    shutil.copytree(store.root / "snapshots" / good, store.root / "snapshots" / damaged)
    manifest = store.root / "snapshots" / damaged / "manifest.json"
    manifest.write_text(manifest.read_text().replace(good, damaged))
    _damage(store.root / "snapshots" / damaged / "vectors.faiss", "truncated")
    store.publish(damaged)
    try:
        health = _wait_for(server, "degraded")
        assert health["snapshot"] == good and "vectors.faiss" in health["reason"]
        answer = httpx.get(f"{server.url}/search", params={"q": "flood evacuations"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["snapshot"] == good
    finally:
        done = run_python("-m", "indexer", "rollback", "--index", str(store.root), "--to", good)
    assert done.returncode == 0, done.stderr
    assert _wait_for(server, "ok") == {"status": "ok", "snapshot": good}
    shutil.rmtree(store.root / "snapshots" / damaged)


def test_sigterm_lets_requests_in_flight_finish_and_exits_0(
    seed_settings: Settings, tmp_path: Path
) -> None:
    """A rebuild through /admin/reindex (a child process) and a stream of searches are running
    when SIGTERM arrives: the server waits for the rebuild, which finishes and publishes, no
    search gets a 5xx or a cut-off answer, and the process exits 0."""
    seeds = new_corpus(tmp_path / "seeds", *bbc_files(16))
    index = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index)
    before = IndexStore(index).current_id()
    environment = {"SEEDSEARCH_API_KEY": API_KEY, "SEEDSEARCH_SEEDS_DIR": str(seeds)}
    statuses: list[int | str] = []
    stop = threading.Event()
    with running_server(index, tmp_path / "server.log", environment) as (url, process):

        def search_until_refused() -> None:
            with httpx.Client(base_url=url, timeout=60) as client:
                for _ in range(2_000):  # bounded; ends at the first refused connection
                    try:
                        answer = client.get("/search", params={"q": "flood evacuations"})
                        answer.json()
                        statuses.append(answer.status_code)
                    except httpx.TransportError as error:
                        statuses.append(type(error).__name__)
                        return
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=search_until_refused) for _ in range(2)]
        for thread in threads:
            thread.start()
        rebuild = httpx.post(f"{url}/admin/reindex", headers={"X-API-Key": API_KEY}, timeout=60)
        time.sleep(1.5)  # the rebuild is embedding the new articles by now
        status = httpx.get(f"{url}/admin/reindex/{rebuild.json()['job']}",
                           headers={"X-API-Key": API_KEY}, timeout=60).json()  # fmt: skip
        assert status["state"] == "running"  # still in flight when the signal comes
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=300) == 0
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert rebuild.status_code == 202, rebuild.text
    served = [status for status in statuses if isinstance(status, int)]
    assert served and set(served) == {200}
    # The rebuild ran to the end before the process exited: a new snapshot with the articles.
    store = IndexStore(index)
    assert store.current_id() != before
    assert len(store.manifest().files) == 17
    job = JobRecords(store).get(rebuild.json()["job"])  # for the next server to tell
    assert job is not None and job.state == "succeeded" and job.report is not None
    assert job.report["snapshot"] == store.current_id()


def test_a_command_line_build_runs_at_a_lower_priority(tmp_path: Path) -> None:
    seeds = new_corpus(tmp_path / "seeds")
    process = subprocess.Popen(
        [sys.executable, "-m", "indexer", "build", "--seeds", str(seeds),
         "--index", str(tmp_path / "index"), "--json"],
        cwd=ROOT, env={**os.environ, "SEEDSEARCH_BUILD_NICE": "7"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seen = set()
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        # Field 19 of /proc/<pid>/stat is the niceness (the name field has no spaces here).
        with contextlib.suppress(OSError, IndexError):
            seen.add(int(Path(f"/proc/{process.pid}/stat").read_text().split()[18]))
        time.sleep(0.02)
    assert process.wait(timeout=60) == 0
    assert os.nice(0) + 7 in seen


@pytest.fixture
def live_seed_index(seed_settings: Settings, tmp_path: Path) -> Settings:
    """A copy of the seed index (one live snapshot) and a seeds folder with one file more."""
    index = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index)
    seeds = new_corpus(tmp_path / "seeds", *bbc_files(2))
    return Settings(seeds_dir=seeds, index_dir=index, prune_grace_seconds=0)


def _build_with_fault(settings: Settings, fault: str) -> subprocess.CompletedProcess[str]:
    return run_python(
        "-m", "indexer", "build", "--seeds", str(settings.seeds_dir),
        "--index", str(settings.index_dir), "--json", env={FAULT_VARIABLE: fault},
    )  # fmt: skip


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_build_killed_at_any_step_leaves_a_servable_index_and_the_next_build_publishes(
    live_seed_index: Settings, embedder: Embedder, point: str
) -> None:
    store = IndexStore(live_seed_index.index_dir)
    live = store.live_id()
    done = _build_with_fault(live_seed_index, f"{point}:kill")
    assert done.returncode == -signal.SIGKILL, done.stderr
    served = store.current_id()
    # Killed before CURRENT moved, the old snapshot is live; after, the new one, complete.
    assert (served == live) == (point != "published")
    searcher = Searcher.open(store, embedder)
    assert searcher.search(SearchRequest(query="flood evacuations", k=1)).results
    searcher.close()
    store.verify(served)
    # The killed build's lock is released by the kernel; its partial directory goes, and the
    # next build publishes, reusing what the killed one cached.
    report = build_index(live_seed_index, embedder=embedder, wait_seconds=0)
    assert report.published == (point != "published")
    if report.published:
        assert report.computed == 0 or point in ("read", "embedding")
    assert set(store.snapshot_ids()) <= {live, served, store.live_id()}
    store.verify()


@pytest.mark.parametrize(
    ("point", "error"),
    [("embedding", "enospc"), ("vectors", "enospc"), ("chunks", "enospc"),
     ("manifest", "enospc"), ("publish", "enospc"), ("vectors", "erofs"), ("publish", "erofs")],
)  # fmt: skip
def test_a_full_disk_or_read_only_root_fails_clearly_and_publishes_nothing(
    live_seed_index: Settings, point: str, error: str
) -> None:
    store = IndexStore(live_seed_index.index_dir)
    live = store.live_id()
    done = _build_with_fault(live_seed_index, f"{point}:{error}")
    assert done.returncode == EXIT_FAILURE
    message = done.stderr.strip()
    reason = "No space left on device" if error == "enospc" else "Read-only file system"
    assert message.startswith("error: cannot write the ") and reason in message
    assert f"the live snapshot {live} is untouched" in message and len(message.splitlines()) == 1
    assert store.current_id() == live and store.snapshot_ids() == [live]
    store.verify()


def test_a_burst_past_the_in_flight_bound_gets_503_with_retry_after(
    seed_settings: Settings, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index)
    environment = {"SEEDSEARCH_MAX_SEARCHES_IN_FLIGHT": "2"}
    with running_server(index, tmp_path / "server.log", environment) as (url, _):
        answers: list[httpx.Response] = []
        start = threading.Barrier(24)

        def one_search(number: int) -> None:
            start.wait(timeout=60)
            params = {"q": f"flood evacuations {number}", "k": 100, "explain": "true"}
            answers.append(httpx.get(f"{url}/search", params=params, timeout=60))

        threads = [threading.Thread(target=one_search, args=(n,)) for n in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        refused = [a for a in answers if a.status_code == 503]
        assert len(answers) == 24 and {a.status_code for a in answers} <= {200, 503}
        assert refused and len(refused) < 24
        assert all(a.headers["retry-after"] == "1" for a in refused)
        assert "too many searches" in refused[0].json()["detail"]
        after = httpx.get(f"{url}/search", params={"q": "flood evacuations"}, timeout=60)
        assert after.status_code == 200


def test_a_seed_file_that_changes_while_it_is_read_is_indexed_as_read(
    live_seed_index: Settings, embedder: Embedder
) -> None:
    """The manifest records the digest of the bytes parsed, not of the bytes scanned: the
    paragraph written mid-build is indexed, and the next build finds nothing to redo."""
    done = _build_with_fault(live_seed_index, "read:append")
    assert done.returncode == 0, done.stderr
    store = IndexStore(live_seed_index.index_dir)
    recorded = {f.path: f.sha256 for f in store.manifest().files}
    for path in live_seed_index.seeds_dir.rglob("*.txt"):
        source = path.relative_to(live_seed_index.seeds_dir).as_posix()
        assert recorded[source] == hashlib.sha256(path.read_bytes()).hexdigest()
    searcher = Searcher.open(store, embedder)
    request = SearchRequest(query="a paragraph written while the build was reading", k=1)
    assert "written while the build" in searcher.search(request).results[0].text
    searcher.close()
    assert not build_index(live_seed_index, embedder=embedder).published
