"""Benchmark the HTTP service against its in-process floor, on the same queries, in one run.

    python scripts/bench_api.py [--index var/index] [--queries FILE] [--rounds 20] [--mode hybrid]

Starts `python -m search_api` on a free loopback port over the given index. Each query is then
asked once in-process (`Searcher.search`, the floor) and once over HTTP (a keep-alive client),
interleaved so both see the same machine load. The query-embedding cache is warm for both,
so the ratio isolates what HTTP, FastAPI and JSON add to retrieval.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from indexer.embed import Embedder
from indexer.errors import run_command
from indexer.store import IndexStore
from search_api.evaluation import load_queries
from search_api.models import MODES, SearchRequest
from search_api.searcher import Searcher

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(
    client: httpx.Client, process: subprocess.Popen[bytes], seconds: float = 180
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become healthy")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bench() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=ROOT / "var" / "index")
    parser.add_argument(
        "--queries", type=Path, default=ROOT.parent / "shared" / "eval" / "seed_dev_queries.jsonl"
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--mode", default="hybrid", choices=MODES)
    args = parser.parse_args()
    queries = [q.query for q in load_queries(args.queries)]
    store = IndexStore(args.index)
    searcher = Searcher.open_live(store, Embedder(model_file=store.model_file, export=False))

    port = free_port()
    command = [sys.executable, "-m", "search_api", "--port", str(port), "--index", str(args.index)]
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    in_process: list[float] = []
    over_http: list[float] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_healthy(client, server)
            for query in queries:  # warm both query caches
                searcher.search(SearchRequest(query=query, mode=args.mode))
                client.get("/search", params={"q": query, "mode": args.mode}).raise_for_status()
            for _ in range(args.rounds):
                for query in queries:
                    started = time.perf_counter()
                    searcher.search(SearchRequest(query=query, mode=args.mode))
                    in_process.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    client.get("/search", params={"q": query, "mode": args.mode}).raise_for_status()
                    over_http.append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(timeout=30)

    chunks = searcher.snapshot.manifest.chunks
    print(
        f"index: {args.index} ({chunks} chunks), mode {args.mode}, {len(in_process)} queries each way"
    )
    for name, share in (("median", 0.5), ("p95", 0.95)):
        floor = statistics.median(in_process) if share == 0.5 else percentile(in_process, share)
        http = statistics.median(over_http) if share == 0.5 else percentile(over_http, share)
        print(
            f"{name:6}  in-process {floor * 1000:7.2f} ms   HTTP {http * 1000:7.2f} ms   HTTP / in-process {http / floor:5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_command(bench))
