"""Serving as replicas: two server processes over one index root (as several hosts would read
one root on shared storage) both switch to a rebuilt snapshot, under load, with no failed
request; and one server's worker processes report their metrics together."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
from conftest import eventually, new_corpus, running_server
from prometheus_client.parser import text_string_to_metric_families

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.settings import Settings
from indexer.store import IndexStore


def test_two_servers_over_one_index_root_both_switch_under_load(
    seed_settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """Two server processes (two replicas) read one index root; a rebuild under load from
    both reaches both with no failed request."""
    index = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index)
    seeds = new_corpus(tmp_path / "seeds")
    reloading = {"SEEDSEARCH_RELOAD_INTERVAL_SECONDS": "0.2"}
    before = IndexStore(index).live_id()
    statuses: list[int] = []
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(running_server(index, tmp_path / f"server-{n}.log", reloading))[0]
            for n in range(2)
        ]
        seen: dict[str, set[str]] = {url: set() for url in urls}

        def load(url: str) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                for _ in range(3_000):  # bounded; ends once the rebuild is served
                    answer = client.get("/search", params={"q": "glacier meltwater", "k": 3})
                    statuses.append(answer.status_code)
                    seen[url].add(answer.json().get("snapshot", ""))
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=load, args=(url,)) for url in urls]
        for thread in threads:
            thread.start()
        # Both under load on the old snapshot first: a quick rebuild could beat a slow start.
        eventually(lambda: all(before in s for s in seen.values()), 60, poll=0.05)
        (seeds / "glacier.txt").write_text("Glacier Update\n\nMeltwater lakes are drained.\n")
        report = build_index(Settings(seeds_dir=seeds, index_dir=index), embedder=embedder)
        eventually(lambda: all(report.snapshot in s for s in seen.values()), 60, poll=0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert statuses and set(statuses) == {200}
    assert all({before, report.snapshot} <= snapshots for snapshots in seen.values())


def _metrics(url: str) -> tuple[float, dict[str, float]]:
    """From ``/metrics`` on a fresh connection (so any worker may answer): GET /search 200s
    counted, and the chunks each live worker serves, by pid."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    searches = sum(
        s.value
        for s in samples
        if s.name == "seedsearch_requests_total"
        and s.labels == {"method": "GET", "route": "/search", "status": "200"}
    )
    chunks = {s.labels["pid"]: s.value for s in samples if s.name == "seedsearch_index_chunks"}
    return searches, chunks


def _both_workers_serve(url: str, chunks: int, gone: set[str] | None = None) -> Callable[[], bool]:
    """Whether exactly two live workers, none of them ``gone``, report a snapshot of
    ``chunks`` passages."""

    def serving() -> bool:
        live = _metrics(url)[1]
        return sorted(live.values()) == [chunks, chunks] and not live.keys() & (gone or set())

    return serving


def test_metrics_cover_every_worker_and_each_reloads_on_its_own(
    seed_settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """``--workers 2``: ``/metrics`` from either worker counts the searches both answered and
    shows both workers' snapshots; a rebuild reaches each; workers that die are replaced,
    their gauges dropped and their counts kept."""
    index = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index)
    seeds = new_corpus(tmp_path / "seeds")
    snapshot = IndexStore(index).open_snapshot()
    served = snapshot.manifest.chunks
    snapshot.close()
    reloading = {"SEEDSEARCH_RELOAD_INTERVAL_SECONDS": "0.2"}
    with running_server(index, tmp_path / "server.log", reloading, "--workers", "2") as (url, _):
        assert eventually(_both_workers_serve(url, served), 60)  # the second may start later
        answers = [httpx.get(f"{url}/search", params={"q": "flood evacuations"}) for _ in range(12)]
        assert {a.status_code for a in answers} == {200}
        assert all(a.json()["results"][0]["title"].startswith("Morocco") for a in answers)
        views = [_metrics(url) for _ in range(6)]
        originals = set(views[0][1])
        assert all(view == (12, dict.fromkeys(originals, served)) for view in views)

        (seeds / "glacier.txt").write_text("Glacier Update\n\nMeltwater lakes are drained.\n")
        rebuilt = build_index(Settings(seeds_dir=seeds, index_dir=index), embedder=embedder)
        assert eventually(_both_workers_serve(url, rebuilt.chunks), 30)

        # Both original workers die in turn, so every search counted after is a dead one's.
        for victim in originals:
            os.kill(int(victim), signal.SIGKILL)
            assert eventually(_both_workers_serve(url, rebuilt.chunks, gone={victim}), 120)
        searches, chunks = _metrics(url)
        assert searches == 12 and not originals & set(chunks)
