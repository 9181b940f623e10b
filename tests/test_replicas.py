"""Serving as replicas: two server processes over one index root (as several hosts would read
one root on shared storage) both switch to a rebuilt snapshot, under load, with no failed
request."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from conftest import ROOT, free_port, new_corpus, wait_until_healthy

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.settings import Settings
from indexer.store import IndexStore


def _serve(index: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "search_api", "--port", str(port), "--index", str(index)],
            cwd=ROOT, env={**os.environ, "SEEDSEARCH_RELOAD_INTERVAL_SECONDS": "0.2"},
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def test_two_servers_over_one_index_root_both_switch_under_load(
    seed_settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """Two server processes (two replicas) read one index root; a rebuild under load from
    both reaches both with no failed request."""
    index = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, index)
    seeds = new_corpus(tmp_path / "seeds")
    replicas = [_serve(index, tmp_path / f"server-{n}.log") for n in range(2)]
    try:
        for (process, url), n in zip(replicas, range(2), strict=True):
            wait_until_healthy(url, process, tmp_path / f"server-{n}.log")  # type: ignore[arg-type]
        before = IndexStore(index).live_id()
        statuses: list[int] = []
        seen: dict[str, set[str]] = {url: set() for _, url in replicas}
        stop = threading.Event()

        def load(url: str) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                for _ in range(3_000):  # bounded; ends once the rebuild is served
                    answer = client.get("/search", params={"q": "glacier meltwater", "k": 3})
                    statuses.append(answer.status_code)
                    seen[url].add(answer.json().get("snapshot", ""))
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=load, args=(url,)) for _, url in replicas]
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
    finally:
        for process, _ in replicas:
            process.terminate()
            process.wait(timeout=60)
    assert statuses and set(statuses) == {200}
    assert all({before, report.snapshot} <= snapshots for snapshots in seen.values())
