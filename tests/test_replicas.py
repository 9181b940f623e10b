"""Serving as replicas: two server processes over one index root (as several hosts would read
one root on shared storage) both switch to a rebuilt snapshot, under load, with no failed
request."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from pathlib import Path

import httpx
from conftest import new_corpus, running_server

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
        (seeds / "glacier.txt").write_text("Glacier Update\n\nMeltwater lakes are drained.\n")
        report = build_index(Settings(seeds_dir=seeds, index_dir=index), embedder=embedder)
        deadline = time.monotonic() + 60
        while not all(report.snapshot in s for s in seen.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert statuses and set(statuses) == {200}
    assert all({before, report.snapshot} <= snapshots for snapshots in seen.values())
