"""Watching the seeds folder: which paths count, when a batch is quiet (pure), and a real
server under SEEDSEARCH_WATCH=true building as real files arrive, change and go."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import BBC, eventually, new_corpus, running_server, shared

from indexer.build import build_index, seed_files
from indexer.embed import Embedder
from indexer.plan import is_seed_name, is_temporary_name
from indexer.settings import Settings
from search_api.evaluation import write_dated_archive
from search_api.watch import BUSY_FACTOR, Batch, counts, mount_type, polling_reason

QUIET = 1.5
BOUND = 180.0  # generous: a build under load loads the model and embeds


# The temporary-name rule (the watcher's and the build's scan)


@pytest.mark.parametrize(
    "name", [".report.txt", "report.txt.part", "report.txt.tmp", "report.txt.crdownload",
             "report.txt~", "REPORT.TXT.PART", ".report.txt.Xy12ab"],
)  # fmt: skip
def test_names_copy_tools_write_to_are_temporary(name: str) -> None:
    assert is_temporary_name(name) and not is_seed_name(name)


@pytest.mark.parametrize("name", ["report.txt", "notes.MD", "part.txt", "tmp-notes.md"])
def test_ordinary_seed_names_are_read(name: str) -> None:
    assert is_seed_name(name) and not is_temporary_name(name)


def test_the_build_scan_skips_files_still_being_copied(tmp_path: Path) -> None:
    for name in ("a.txt", ".b.txt", "c.txt.part", "d.txt~", "e.tmp", "f.md"):
        (tmp_path / name).write_text("Headline\n\nBody.\n", encoding="utf-8")
    assert [p.name for p in seed_files(tmp_path)] == ["a.txt", "f.md"]


def test_a_change_counts_for_seed_files_and_folders_only() -> None:
    assert counts("world/flood.txt", is_folder=False)
    assert counts("world", is_folder=True)
    assert counts("renamed-away", is_folder=False)  # a deleted folder looks like this
    assert not counts("flood.txt.part", is_folder=False)
    assert not counts(".flood.txt", is_folder=False)
    assert not counts(".git/flood.txt", is_folder=False)
    assert not counts("photo.jpg", is_folder=False)


# Quiet-period batching


def test_a_batch_is_ready_once_every_path_has_been_quiet() -> None:
    batch = Batch(2.0).changed("a.txt", (10, 1), now=0.0).changed("b.txt", (5, 1), now=1.0)
    assert batch.ready(2.5) == ()  # b changed 1.5 s ago
    assert batch.ready(3.0) == ("a.txt", "b.txt")


def test_a_file_whose_size_or_mtime_moves_waits_again() -> None:
    batch = Batch(2.0).changed("a.txt", (10, 1), now=0.0)
    batch = batch.looked({"a.txt": (20, 2)}, now=1.9)  # still being written
    assert batch.ready(3.0) == ()
    batch = batch.looked({"a.txt": (20, 2)}, now=3.0)  # unchanged since
    assert batch.ready(3.9) == ("a.txt",)


def test_a_file_still_changing_after_the_longer_bound_is_left_for_the_next_round() -> None:
    batch = Batch(1.0).changed("quiet.txt", (1, 1), now=0.0)
    for step in range(1, BUSY_FACTOR + 1):  # busy.txt grows all the while
        batch = batch.changed("busy.txt", (step, step), now=float(step))
    assert batch.ready(float(BUSY_FACTOR) - 0.5) == ()
    assert batch.ready(float(BUSY_FACTOR)) == ("quiet.txt",)
    left = batch.without(["quiet.txt"])
    assert set(left.paths) == {"busy.txt"} and left.ready(BUSY_FACTOR + 1.0) == ("busy.txt",)


def test_a_deleted_file_is_quiet_from_its_event() -> None:
    batch = Batch(2.0).changed("gone.txt", None, now=0.0).looked({"gone.txt": None}, now=1.0)
    assert batch.ready(2.0) == ("gone.txt",)


def test_network_file_systems_are_polled() -> None:
    mounts = "/dev/sda1 / ext4 rw 0 0\nserver:/export /mnt/news nfs4 rw 0 0\n"
    assert mount_type("/mnt/news/seeds", mounts) == "nfs4"
    assert mount_type("/mnt/newsroom", mounts) == "ext4"
    on_nfs = Settings(seeds_dir=Path("/mnt/news/seeds"))
    reason = polling_reason(on_nfs, mounts)
    assert reason is not None and "nfs4" in reason
    assert polling_reason(Settings(seeds_dir=Path("/srv/seeds")), mounts) is None
    assert polling_reason(Settings(watch_polling=True), mounts) is not None


# A real server watching real files


@dataclass(frozen=True)
class Watched:
    url: str
    seeds: Path
    log: Path


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Watched]:
    root = tmp_path_factory.mktemp("watched")
    settings = Settings(seeds_dir=new_corpus(root / "seeds"), index_dir=root / "index")
    build_index(settings, embedder=embedder)
    environment = {
        "SEEDSEARCH_WATCH": "true",
        "SEEDSEARCH_WATCH_QUIET_SECONDS": str(QUIET),
        "SEEDSEARCH_RELOAD_INTERVAL_SECONDS": "0.2",
        "SEEDSEARCH_SEEDS_DIR": str(settings.seeds_dir),
    }
    log = root / "server.log"
    with running_server(settings.index_dir, log, environment) as (url, _):
        served = Watched(url, settings.seeds_dir, log)
        assert eventually(lambda: _watch(served) is not None, BOUND), "no start-up build"
        yield served


def _watch(server: Watched) -> dict[str, Any] | None:
    body = httpx.get(f"{server.url}/healthz", timeout=30).json()
    record: dict[str, Any] | None = body.get("watch")
    return record


def _builds(server: Watched) -> int:
    record = _watch(server)
    return int(record["builds"]) if record else 0


def _sources(server: Watched, query: str) -> set[str]:
    answer = httpx.get(f"{server.url}/search", params={"q": query, "k": 20}, timeout=30).json()
    return {result["source"] for result in answer["results"]}


def _passages(server: Watched, query: str, source: str) -> list[str]:
    answer = httpx.get(f"{server.url}/search", params={"q": query, "k": 20}, timeout=30).json()
    article = next(r["article_id"] for r in answer["results"] if r["source"] == source)
    found = httpx.get(f"{server.url}/articles/{article}", timeout=30).json()
    return [passage["text"] for passage in found["passages"]]


def _settled(server: Watched) -> int:
    """The build count once no watch build has finished for a few quiet periods."""
    seen = [_builds(server), time.monotonic()]

    def still() -> bool:
        now = _builds(server)
        if now != seen[0]:
            seen[:] = [now, time.monotonic()]
        return time.monotonic() - seen[1] > 4 * QUIET

    assert eventually(still, BOUND)
    return int(seen[0])


HEADLINE = "Lighthouse keepers of Skerryvore mark a centenary"
FIRST = (
    "The lighthouse keepers of Skerryvore gathered on the rock to mark one hundred years "
    "since the tower's lamp was converted to paraffin."
)
SECOND = (
    "A brass band played on the landing stage while the keepers' grandchildren read "
    "the logbooks aloud to visitors who came by ferry."
)


def _article(*paragraphs: str) -> str:
    return HEADLINE + "\n\n" + "\n\n".join(paragraphs) + "\n"


def test_a_new_file_becomes_searchable_and_healthz_says_how_the_build_went(
    watched: Watched,
) -> None:
    (watched.seeds / "skerryvore.txt").write_text(_article(FIRST, SECOND), encoding="utf-8")
    assert eventually(lambda: "skerryvore.txt" in _sources(watched, "Skerryvore keepers"), BOUND)
    health = httpx.get(f"{watched.url}/healthz", timeout=30)
    assert health.status_code == 200
    assert health.json()["watch"]["result"] == "ok"
    assert "watch build" in watched.log.read_text(encoding="utf-8")


def test_an_edit_re_embeds_only_its_changed_paragraph(watched: Watched) -> None:
    path = watched.seeds / "edited.txt"
    path.write_text(_article(FIRST, SECOND).replace("Skerryvore", "Ardnamurchan"), "utf-8")
    assert eventually(lambda: "edited.txt" in _sources(watched, "Ardnamurchan keepers"), BOUND)
    before = _settled(watched)
    edited = SECOND.replace("brass band", "pipe band")
    path.write_text(_article(FIRST, edited).replace("Skerryvore", "Ardnamurchan"), "utf-8")
    assert eventually(lambda: _builds(watched) > before, BOUND)
    record = _watch(watched)
    assert record is not None and record["changed"] == ["edited.txt"]
    assert record["published"] and record["embedded"] == 1 and record["reused"] > 1


def test_a_deleted_file_disappears(watched: Watched) -> None:
    path = watched.seeds / "deleted.txt"
    path.write_text(_article(FIRST, SECOND).replace("Skerryvore", "Muckle Flugga"), "utf-8")
    assert eventually(lambda: "deleted.txt" in _sources(watched, "Muckle Flugga keepers"), BOUND)
    path.unlink()
    assert eventually(lambda: "deleted.txt" not in _sources(watched, "Muckle Flugga"), BOUND)


def _first_sighting(server: Watched, query: str, source: str) -> list[str]:
    """The article's passages the first time ``source`` is found: polled faster than builds
    can follow each other, so a half-indexed file would be seen."""
    assert eventually(lambda: source in _sources(server, query), BOUND, poll=0.1)
    return _passages(server, query, source)


def test_a_file_written_in_two_halves_a_second_apart_is_indexed_whole(watched: Watched) -> None:
    text = _article(FIRST, SECOND).replace("Skerryvore", "Eddystone")
    half = len(text) // 2
    with (watched.seeds / "halves.txt").open("w", encoding="utf-8") as handle:
        handle.write(text[:half])
        handle.flush()
        time.sleep(1.0)  # the writer's pause, shorter than the quiet period
        handle.write(text[half:])
    passages = _first_sighting(watched, "Eddystone keepers", "halves.txt")
    assert passages[-1] == SECOND


def test_a_file_copied_under_a_part_name_is_indexed_once_whole_after_the_rename(
    watched: Watched,
) -> None:
    before = _settled(watched)
    text = _article(FIRST, SECOND).replace("Skerryvore", "Bell Rock")
    partial = watched.seeds / "bellrock.txt.part"
    with partial.open("w", encoding="utf-8") as handle:
        handle.write(text[: len(text) // 2])
        handle.flush()
        time.sleep(3 * QUIET)  # a slow copy: the part file is quiet, and still not built
        handle.write(text[len(text) // 2 :])
    assert _builds(watched) == before
    os.replace(partial, watched.seeds / "bellrock.txt")
    passages = _first_sighting(watched, "Bell Rock keepers", "bellrock.txt")
    assert passages[-1] == SECOND
    assert not any(s.endswith(".part") for s in _sources(watched, "Bell Rock keepers"))
    assert _settled(watched) == before + 1


def test_twenty_files_dropped_at_once_take_one_or_two_builds(
    watched: Watched, tmp_path: Path
) -> None:
    staged = write_dated_archive(shared(BBC), tmp_path / "staged", 20, paragraphs=2)
    before = _settled(watched)
    files = _files(watched)
    for path in staged:
        os.replace(path, watched.seeds / path.name)
    assert eventually(lambda: _files(watched) == files + 20, BOUND)
    assert before + 1 <= _settled(watched) <= before + 2


def _files(server: Watched) -> int:
    return int(httpx.get(f"{server.url}/stats", timeout=30).json()["files"])


def test_a_file_that_cannot_be_indexed_is_reported_in_healthz_and_the_watch_goes_on(
    watched: Watched,
) -> None:
    before = _settled(watched)
    (watched.seeds / "headline-only.txt").write_text("Only a headline\n", encoding="utf-8")
    assert eventually(lambda: _builds(watched) > before, BOUND)
    health = httpx.get(f"{watched.url}/healthz", timeout=30)
    record = health.json()["watch"]
    assert health.status_code == 200 and record["result"] == "errors"
    assert [e["file"] for e in record["errors"]] == ["headline-only.txt"]
    (watched.seeds / "headline-only.txt").unlink()
    assert eventually(lambda: _watch(watched)["result"] == "ok", BOUND)  # type: ignore[index]


def test_under_workers_one_process_watches_and_every_worker_serves_the_new_file(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    build_index(settings, embedder=embedder)
    environment = {
        "SEEDSEARCH_WATCH_QUIET_SECONDS": str(QUIET),
        "SEEDSEARCH_RELOAD_INTERVAL_SECONDS": "0.2",
        "SEEDSEARCH_SEEDS_DIR": str(settings.seeds_dir),
    }
    log = tmp_path / "server.log"
    with running_server(settings.index_dir, log, environment, "--workers", "2", "--watch") as (
        url,
        _,
    ):
        served = Watched(url, settings.seeds_dir, log)
        (settings.seeds_dir / "skerryvore.txt").write_text(_article(FIRST, SECOND), "utf-8")
        # Each request opens a connection of its own, which either worker may accept.
        assert eventually(
            lambda: all("skerryvore.txt" in _sources(served, "Skerryvore") for _ in range(6)),
            BOUND,
        )
    assert log.read_text(encoding="utf-8").count("for changes: ") == 1


def test_files_dropped_during_a_running_build_are_searchable_after_the_next(
    watched: Watched, tmp_path: Path
) -> None:
    staged = write_dated_archive(shared(BBC), tmp_path / "staged", 12, paragraphs=2)
    jobs = watched.seeds.parent / "index" / "jobs"
    _settled(watched)
    files = _files(watched)
    # Names of their own: other tests drop the same BBC articles.
    for path in staged[:10]:
        os.replace(path, watched.seeds / f"during-{path.name}")
    assert eventually(lambda: _a_build_runs(jobs), BOUND, poll=0.02), "no watch build started"
    for path in staged[10:]:  # while that build runs: they wait for the next one
        os.replace(path, watched.seeds / f"during-{path.name}")
    assert eventually(lambda: _files(watched) == files + 12, BOUND)
    for path in staged[10:]:
        dropped = watched.seeds / f"during-{path.name}"
        headline = dropped.read_text(encoding="utf-8").split("\n", 1)[0]
        answer = httpx.get(
            f"{watched.url}/search", params={"q": headline, "k": 20, "dedupe": "false"}
        ).json()  # the other tests' copies of the article are its duplicates
        assert dropped.name in {result["source"] for result in answer["results"]}


def _a_build_runs(jobs: Path) -> bool:
    records = []
    for path in jobs.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):  # a record being replaced
            records.append(json.loads(path.read_text(encoding="utf-8")))
    return any(record.get("state") == "running" for record in records)
