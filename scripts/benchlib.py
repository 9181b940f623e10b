"""Helpers the benchmark scripts share: the benchmark corpus, the query set, a live server."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from search_api.timing import STAGES

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BBC = SHARED / "corpora" / "bbc"
SCIFACT = SHARED / "corpora" / "scifact"
DEV_SETS = (SHARED / "eval" / "seed_dev_queries.jsonl", SHARED / "eval" / "bbc_dev_queries.jsonl")


def benchmark_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options every benchmark shares: corpus size, corpus folder, JSON only."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=200, help="BBC articles beside the seeds")
    parser.add_argument("--bbc", type=Path, default=BBC, help="the BBC corpus folder")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def wall(command: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds one command takes from the project root; its output is kept from the terminal,
    and a failure raises with what it printed to stderr."""
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed: {done.stderr.strip()}")
    return time.perf_counter() - started


def write_corpus(seeds: Path, articles: Sequence[Path]) -> None:
    """A seeds folder: the project's seed files plus the given BBC articles."""
    seeds.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        shutil.copy(path, seeds / path.name)
    for path in articles:
        shutil.copy(path, seeds / f"{path.parent.name}-{path.name}")


def benchmark_queries(every_scifact_query: bool = False) -> list[str]:
    """The dev sets plus SciFact's test queries (or all its queries): distinct, in a fixed
    order."""
    queries = [
        json.loads(line)["query"]
        for path in DEV_SETS
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    with (SCIFACT / "qrels" / "test.tsv").open(encoding="utf-8", newline="") as handle:
        test_ids = {row["query-id"] for row in csv.DictReader(handle, delimiter="\t")}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            query = json.loads(line)
            if every_scifact_query or query["_id"] in test_ids:
                queries.append(query["text"])
    return list(dict.fromkeys(q.strip()[:500] for q in queries if q.strip()))


def stage_p50s(stages: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each search stage's p50 in ms over searches' ``Server-Timing`` stages (a stage a search
    skipped counts as 0)."""
    return {
        name: round(statistics.median(found.get(name, 0.0) for found in stages), 3)
        for name in STAGES
    }


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(percentile(values, 0.95) * 1000, 3),
        "p99_ms": round(percentile(values, 0.99) * 1000, 3),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server(index: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``python -m search_api`` on a free loopback port, healthy, stopped afterwards."""
    with server_process(index, *extra, env=env) as (url, _):
        yield url


@contextlib.contextmanager
def server_process(
    index: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``running_server`` that also hands over the server's process."""
    port = free_port()
    # The server's log goes to a file, not the terminal: a start-up failure quotes its end.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "search_api", "--port", str(port), "--index", str(index),
             *extra],
            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_healthy(url, server)
            except SystemExit as failure:
                log.seek(0)
                lines = [line for line in log if '"GET /healthz' not in line]  # its polls
                raise SystemExit(f"{failure}; its log ends:\n{''.join(lines[-30:])}") from None
            yield url, server
        finally:
            server.terminate()
            server.wait(timeout=60)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return [pid, *(p for child in children for p in process_tree(child))]


def memory_mib(pid: int) -> dict[str, float]:
    """A process's resident memory (RSS) and its proportional share (PSS: each shared page
    divided among the processes that map it, so PSS adds up across processes)."""
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    )
    return {name.lower(): round(int(fields[name].split()[0]) / 1024, 1) for name in ("Rss", "Pss")}


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time these processes have used so far (Linux /proc)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return ticks / os.sysconf("SC_CLK_TCK")


def is_worker(pid: int) -> bool:
    """A uvicorn worker process (spawned by multiprocessing), not the supervisor or helpers."""
    return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()


def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 180) -> float:
    """Poll /healthz until it answers 200; returns the seconds waited."""
    started = time.perf_counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.05)
    raise SystemExit("server did not become healthy")


def print_table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(title)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
