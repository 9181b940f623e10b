"""Benchmark queries: HTTP against the in-process torch floor, under load and during a rebuild.

    python scripts/bench_query.py [--articles 200] [--clients 1,4,16] [--workers 1] [--json]
                                  [--phases all|latency|features|similar] [--index DIR]
                                  [--wrk-seconds 10]

Corpus: the seed files plus N BBC articles, built once with the default settings. Queries: the
dev sets plus SciFact's test queries, each sent once per phase (the server restarts between
phases, so no answer comes from its query cache). Every figure is measured in this one run on
this machine, so ratios hold while absolute times drift with the machine's load.

- floor: torch ``model.encode`` + FAISS flat search in this process, per query;
- HTTP, 1 client: the default request (``GET /search?q=``), interleaved with the floor query by
  query so both see the same load; p50/p95/p99; the p50 of each stage the server reports in
  its ``Server-Timing`` header (encode, dense, lexical, fuse, fetch, evidence, serialize);
  p50 per mode;
- throughput at each client count: that many Python client threads, a new connection per
  request, each distinct query once; queries served per second, and per floor-time (x floor
  p50);
- wrk (``--wrk-seconds``, when Debian's ``wrk`` is installed): the same at the most clients
  from a load generator that steals far less CPU (keep-alive connections, a Lua script over
  the distinct queries);
- ``--phases latency`` runs only the phases above;
- during a rebuild: p99 at 1 and 4 clients while ``python -m indexer build --full`` runs,
  against the idle p99 of the same phase sizes;
- workers (``--scaling 1,2``): with each count of worker processes, throughput at the most
  clients, the CPU cores the server's processes kept busy meanwhile, and their memory after
  that load: PSS per worker, of the rest (supervisor, helpers) and in total (each shared page,
  such as the memory-mapped snapshot, divided among the processes that map it), each against
  the first count;
- features (``--phases features`` runs only this one): over the same articles given datelines
  (search_api.evaluation.write_dated_archive, so the date sort and recency have dates to
  order), 1 client, p50 of the default request, of ``facets=month,source,kind``, of every
  time feature at once (those facets, ``sort=date``, ``recency_half_life_days=30``) and of
  every feature at once (those, a ``date_from`` filter, ``collapse``, ``explain`` and a
  ``-word`` exclusion in the query), each over the default's p50. The four are interleaved
  query by query, each query sent to one of them in turn, so no request reuses another's
  cached query vector.
- similar (``--phases similar`` runs only this one): 1 client, p50 of the default request and
  of ``GET /articles/{id}/similar`` (k=5) over every article in turn, interleaved request by
  request, and the similar p50 over the default's; ``--index DIR`` serves an existing index
  (e.g. the seeds + all BBC) instead of building seeds + ``--articles``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    ROOT,
    benchmark_arguments,
    benchmark_queries,
    cpu_seconds,
    is_worker,
    memory_mib,
    print_table,
    process_tree,
    running_server,
    server_process,
    stage_p50s,
    summary_ms,
    write_corpus,
)

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.errors import run_command
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.evaluation import articles_in_turn, write_dated_archive
from search_api.models import MODES
from search_api.timing import parse_server_timing

# The request shapes of the features phase: GET /search parameters beside q.
FEATURE_REQUESTS: dict[str, dict[str, str]] = {
    "default": {},
    "facets": {"facets": "month,source,kind"},
    "time": {"facets": "month,source,kind", "sort": "date", "recency_half_life_days": "30"},
    # Every feature at once: the time features, a date filter every dated passage passes,
    # collapse, explain, and (see EXCLUDED) an exclusion no passage holds.
    "every": {"facets": "month,source,kind", "sort": "date", "recency_half_life_days": "30",
              "date_from": "1990-01-01", "collapse": "true", "explain": "true"},
}  # fmt: skip
# Appended to the query text of the "every" shape: a -word exclusion (query syntax).
EXCLUDED = " -qqzzx"


def torch_floor(index: Path, calibration: Sequence[str]) -> tuple[Callable[[str], float], int]:
    """Seconds for torch ``model.encode`` + FAISS flat search of one query (k=10), with the
    faster of 1 or 2 torch threads on this machine right now (under load, 2 threads can be
    many times slower); returns the timer and the thread count."""
    import torch

    embedder = Embedder(backend="torch")
    snapshot = IndexStore(index).open_snapshot()
    embedder.encode(["warm-up"])

    def timed(query: str) -> float:
        started = time.perf_counter()
        snapshot.nearest(embedder.encode([query]), 10)
        return time.perf_counter() - started

    medians = {}
    for threads in (2, 1):
        torch.set_num_threads(threads)
        medians[threads] = statistics.median(timed(q + " ") for q in calibration)
    threads = min(medians, key=lambda t: medians[t])
    torch.set_num_threads(threads)
    return timed, threads


def get(
    client: httpx.Client,
    query: str,
    mode: str | None = None,
    extra: dict[str, str] | None = None,
    stages: list[dict[str, float]] | None = None,
) -> float:
    """Seconds one search takes; its Server-Timing stages (ms) go to ``stages`` when given."""
    params = {"q": query} if mode is None else {"q": query, "mode": mode}
    params.update(extra or {})
    started = time.perf_counter()
    response = client.get("/search", params=params).raise_for_status()
    took = time.perf_counter() - started
    if stages is not None:
        stages.append(parse_server_timing(response.headers.get("server-timing", "")))
    return took


def under_load(url: str, queries: Sequence[str], clients: int) -> tuple[list[float], float]:
    """Send every query once from ``clients`` threads, each request on a new connection (as
    independent users' requests arrive); latencies and queries per second."""
    latencies: list[float] = []
    next_query = iter(queries)
    lock = threading.Lock()
    no_reuse = httpx.Limits(max_keepalive_connections=0)

    def client_loop() -> None:
        with httpx.Client(base_url=url, timeout=60, limits=no_reuse) as client:
            while True:
                with lock:
                    query = next(next_query, None)
                if query is None:
                    return
                took = get(client, query)
                with lock:
                    latencies.append(took)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return latencies, len(latencies) / (time.perf_counter() - started)


WRK_SCRIPT = """
-- Each wrk thread walks the distinct request paths from its own starting point.
local paths = {%s}
local at = 0
function setup(thread)
  thread:set("start", at)
  at = at + math.floor(#paths / 2)
end
function init(args)
  at = start or 0
end
function request()
  at = at %% #paths + 1
  return wrk.format("GET", paths[at])
end
"""


def wrk_throughput(url: str, queries: Sequence[str], clients: int, seconds: int) -> dict[str, Any]:
    """Queries per second that ``wrk`` (C, event-driven: it steals far less CPU from the
    server than Python clients) measures with ``clients`` keep-alive connections over the
    distinct queries. Each query is also sent upper-cased and title-cased: the same work
    (the model is uncased, FTS5 case-blind) under another query-cache key, so no request
    within a run is answered from the cache."""
    from urllib.parse import urlencode

    variants = [v for q in queries for v in (q, q.upper(), q.title())]
    paths = ", ".join(json.dumps("/search?" + urlencode({"q": q})) for q in variants)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % paths)
    try:
        done = subprocess.run(
            ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", script.name, url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        )  # fmt: skip
    finally:
        Path(script.name).unlink()
    qps = float(
        next(line for line in done.stdout.splitlines() if "Requests/sec" in line).split()[1]
    )
    sent = int(next(line for line in done.stdout.splitlines() if "requests in" in line).split()[0])
    return {"qps": qps, "requests": sent, "distinct": len(variants)}


def during_rebuild(
    index: Path, seeds: Path, queries: Sequence[str], clients: int, server_args: Sequence[str]
) -> list[float]:
    """Latencies of the queries sent while a full rebuild of the same index runs."""
    with running_server(index, *server_args) as url:
        build = subprocess.Popen(
            [sys.executable, "-m", "indexer", "build", "--full", "--seeds", str(seeds),
             "--index", str(index), "--json"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(3)  # past the build's start-up, into parsing and embedding
            latencies, _ = under_load(url, queries, clients)
            still_building = build.poll() is None
        finally:
            build.wait(timeout=1800)
    if not still_building:
        print("warning: the rebuild ended before the queries did", file=sys.stderr)
    return latencies


def scaling(
    index: Path, queries: Sequence[str], clients: int, worker_counts: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """Queries per second and memory (MiB) with each count of worker processes."""
    result = {}
    for workers in worker_counts:
        extra = ["--workers", str(workers)] if workers > 1 else []
        with server_process(index, *extra) as (url, server):
            processes = process_tree(server.pid)
            cpu_before = cpu_seconds(processes)
            answered, qps = under_load(url, queries, clients)
            busy_cores = (cpu_seconds(processes) - cpu_before) * qps / len(answered)
            memory = {pid: memory_mib(pid) for pid in processes}
            per_worker = [m["pss"] for pid, m in memory.items() if workers == 1 or is_worker(pid)]
        pss_total = round(sum(m["pss"] for m in memory.values()), 1)
        result[workers] = {
            "qps": round(qps, 1),
            "busy_cores": round(busy_cores, 2),
            "pss_per_worker_mib": per_worker,
            "pss_others_mib": round(pss_total - sum(per_worker), 1),  # supervisor and helpers
            "pss_total_mib": pss_total,
            "rss_total_mib": round(sum(m["rss"] for m in memory.values()), 1),
        }
    return result


def features(
    bbc: Path, articles: int, scratch: Path, queries: Sequence[str], server_args: Sequence[str]
) -> dict[str, Any]:
    """The features phase over the seeds and ``articles`` dated BBC articles: latency of each
    request shape of ``FEATURE_REQUESTS``, query by query in turn, and each p50 over the
    default's."""
    seeds, index = scratch / "dated-seeds", scratch / "dated-index"
    write_corpus(seeds, [])
    write_dated_archive(bbc, seeds, articles)
    report = build_index(Settings(seeds_dir=seeds, index_dir=index), notify=lambda m: None)
    names = list(FEATURE_REQUESTS)
    times: dict[str, list[float]] = {name: [] for name in names}
    with running_server(index, *server_args) as url, httpx.Client(base_url=url) as client:
        for name in names:  # each shape's first request pays for nothing the others do
            get(client, f"warm-up {name}", extra=FEATURE_REQUESTS[name])
        for number, query in enumerate(queries):
            name = names[number % len(names)]
            text = query + EXCLUDED if name == "every" else query
            times[name].append(get(client, text, extra=FEATURE_REQUESTS[name]))
    summaries = {name: summary_ms(times[name]) for name in names}
    default_p50 = summaries["default"]["p50_ms"]
    return {
        "chunks": report.chunks, **summaries,
        **{f"{name}_p50_over_default": round(summaries[name]["p50_ms"] / default_p50, 3)
           for name in names if name != "default"},
    }  # fmt: skip


def similar(index: Path, queries: Sequence[str], server_args: Sequence[str]) -> dict[str, Any]:
    """The similar phase: the default search and ``/articles/{id}/similar`` in turn."""
    snapshot = IndexStore(index).open_snapshot()
    articles, chunks = list(snapshot.columns.article_ids), snapshot.manifest.chunks
    snapshot.close()
    search_times, similar_times = [], []
    with running_server(index, *server_args) as url, httpx.Client(base_url=url) as client:
        get(client, "warm-up")
        client.get(f"/articles/{articles[0]}/similar").raise_for_status()
        for number, query in enumerate(queries):
            search_times.append(get(client, query))
            started = time.perf_counter()
            article = articles[(number + 1) % len(articles)]
            client.get(f"/articles/{article}/similar", params={"k": 5}).raise_for_status()
            similar_times.append(time.perf_counter() - started)
    default, related = summary_ms(search_times), summary_ms(similar_times)
    return {
        "chunks": chunks, "articles": len(articles), "default": default, "similar": related,
        "similar_p50_over_default": round(related["p50_ms"] / default["p50_ms"], 3),
    }  # fmt: skip


def feature_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("features: default request", f"{_ms(result['default'])}  ({result['chunks']} chunks, dated)"),
        ("facets=month,source,kind", f"{_ms(result['facets'])}  p50 / default p50 "
         f"{result['facets_p50_over_default']:.2f}"),
        ("facets + sort=date + recency 30", f"{_ms(result['time'])}  p50 / default p50 "
         f"{result['time_p50_over_default']:.2f}"),
        ("every feature (+ date filter, collapse, explain, -word)",
         f"{_ms(result['every'])}  p50 / default p50 {result['every_p50_over_default']:.2f}"),
    ]  # fmt: skip


def bench(args: argparse.Namespace) -> int:
    queries = benchmark_queries()
    client_counts = [int(c) for c in args.clients.split(",")]
    server_args = ["--workers", str(args.workers)] if args.workers > 1 else []
    if args.phases == "similar":
        with tempfile.TemporaryDirectory(prefix="bench-query-") as scratch:
            index = args.index
            if index is None:
                seeds, index = Path(scratch) / "seeds", Path(scratch) / "index"
                write_corpus(seeds, articles_in_turn(args.bbc, args.articles))
                build_index(Settings(seeds_dir=seeds, index_dir=index), notify=lambda m: None)
            found = similar(index, queries, server_args)
        if not args.json:
            print_table("bench_query (similar)", [
                ("default request", f"{_ms(found['default'])}  ({found['chunks']} chunks)"),
                ("/articles/{id}/similar k=5", f"{_ms(found['similar'])}  p50 / default p50 "
                 f"{found['similar_p50_over_default']:.2f}  ({found['articles']} articles)"),
            ])  # fmt: skip
        print(json.dumps({"queries": len(queries), "workers": args.workers, "similar": found}))
        return 0
    if args.phases == "features":
        with tempfile.TemporaryDirectory(prefix="bench-query-") as scratch:
            only = features(args.bbc, args.articles, Path(scratch), queries, server_args)
        if not args.json:
            print_table("bench_query (features)", feature_rows(only))
        print(json.dumps({"queries": len(queries), "workers": args.workers, "features": only}))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-query-") as scratch:
        seeds, index = Path(scratch) / "seeds", Path(scratch) / "index"
        write_corpus(seeds, articles_in_turn(args.bbc, args.articles))
        report = build_index(Settings(seeds_dir=seeds, index_dir=index), notify=lambda m: None)
        floor, floor_threads = torch_floor(index, queries[:30])

        floor_times, http_times, stages = [], [], list[dict[str, float]]()
        with running_server(index, *server_args) as url, httpx.Client(base_url=url) as client:
            get(client, "warm-up")
            for query in queries:
                floor_times.append(floor(query))
                http_times.append(get(client, query, stages=stages))
        floor_p50 = summary_ms(floor_times)["p50_ms"] / 1000

        # --phases latency: the floor, one client, the client counts and wrk only.
        everything = args.phases == "all"
        per_mode = {}
        for mode in MODES if everything else ():
            with running_server(index, *server_args) as url, httpx.Client(base_url=url) as client:
                get(client, "warm-up", mode)
                per_mode[mode] = summary_ms([get(client, q, mode) for q in queries])

        load = {}
        for clients in client_counts:
            with running_server(index, *server_args) as url:
                latencies, qps = under_load(url, queries, clients)
            load[clients] = {**summary_ms(latencies), "qps": round(qps, 1),
                             "x_floor": round(qps * floor_p50, 2)}  # fmt: skip
        wrk = {}
        if shutil.which("wrk") and args.wrk_seconds:
            with running_server(index, *server_args) as url:
                wrk = wrk_throughput(url, queries, max(client_counts), args.wrk_seconds)
            wrk["x_floor"] = round(wrk["qps"] * floor_p50, 2)

        rebuild = {
            clients: summary_ms(during_rebuild(index, seeds, queries, clients, server_args))
            for clients in ((1, 4) if everything else ())
        }
        worker_counts = [int(w) for w in args.scaling.split(",") if w and everything]
        by_workers = scaling(index, queries, max(client_counts), worker_counts)
        first = by_workers[worker_counts[0]] if worker_counts else {}
        by_feature = (
            features(args.bbc, args.articles, Path(scratch), queries, server_args)
            if everything
            else {}
        )

    http = summary_ms(http_times)
    result = {
        "chunks": report.chunks, "queries": len(queries), "workers": args.workers,
        "floor_torch_threads": floor_threads,
        "floor": summary_ms(floor_times), "http": http,
        "http_p50_over_floor_p50": round(http["p50_ms"] / (floor_p50 * 1000), 3),
        "http_p99_over_p50": round(http["p99_ms"] / http["p50_ms"], 3),
        "stage_p50_ms": stage_p50s(stages), "modes": per_mode, "load": load, "wrk": wrk,
        "rebuild_p99_over_idle_p99": {
            c: round(rebuild[c]["p99_ms"] / load.get(c, {"p99_ms": http["p99_ms"]})["p99_ms"], 2)
            for c in rebuild
        },
        "rebuild": rebuild,
        "scaling": {
            n: {**w, "x_floor": round(w["qps"] * floor_p50, 2),
                "qps_over_first": round(w["qps"] / first["qps"], 2),
                "pss_over_first": round(w["pss_total_mib"] / first["pss_total_mib"], 2)}
            for n, w in by_workers.items()
        },
        "features": by_feature,
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    rows = [
        ("corpus", f"{report.chunks} chunks, {len(queries)} distinct queries, {args.workers} worker(s)"),
        ("torch floor", f"{_ms(result['floor'])}  ({floor_threads} torch thread(s))"),
        ("HTTP, 1 client", _ms(http)),
        ("HTTP p50 / floor p50", f"{result['http_p50_over_floor_p50']:.2f}   (goal <= 0.5)"),
        ("HTTP p99 / p50", f"{result['http_p99_over_p50']:.2f}   (goal <= 1.5)"),
        ("stage p50s (Server-Timing)", "  ".join(
            f"{name} {ms:.2f}" for name, ms in result["stage_p50_ms"].items()) + "  ms"),
        *((f"mode {m}, 1 client", _ms(per_mode[m])) for m in per_mode),
        *((f"{c} clients", f"{_ms(load[c])}  {load[c]['qps']} q/s  x floor p50 {load[c]['x_floor']}")
          for c in client_counts),
        *((f"wrk, {max(client_counts)} connections", f"{wrk['qps']} q/s  x floor p50 "
           f"{wrk['x_floor']}  ({wrk['requests']} requests over {wrk['distinct']} distinct)")
          for _ in [1] if wrk),
        *((f"during rebuild, {c} clients", f"{_ms(rebuild[c])}  p99 / idle p99 "
           f"{result['rebuild_p99_over_idle_p99'][c]:.2f}") for c in rebuild),
        *((f"{n} worker(s), {max(client_counts)} clients",
           f"{w['qps']} q/s (x floor p50 {w['x_floor']}, x first {w['qps_over_first']}, "
           f"{w['busy_cores']} cores busy)  "
           f"PSS {w['pss_total_mib']} MiB (x first {w['pss_over_first']}): per worker "
           f"{', '.join(map(str, w['pss_per_worker_mib']))}, others {w['pss_others_mib']}; "
           f"RSS sum {w['rss_total_mib']} MiB")
          for n, w in result["scaling"].items()),
        *(feature_rows(by_feature) if by_feature else []),
    ]  # fmt: skip
    print_table("bench_query", rows)
    print(json.dumps(result))
    return 0


def _ms(summary: dict[str, float]) -> str:
    return f"p50 {summary['p50_ms']:.2f} ms  p95 {summary['p95_ms']:.2f} ms  p99 {summary['p99_ms']:.2f} ms"


def main() -> int:
    parser = benchmark_arguments(__doc__)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--scaling", default="1,2", help="worker counts to compare ('' to skip that phase)"
    )
    parser.add_argument(
        "--phases", choices=("all", "latency", "features", "similar"), default="all",
        help="every phase (default); only the floor, one client, the client counts and wrk; or "
        "only the time features' or /similar's cost against the default request",
    )  # fmt: skip
    parser.add_argument(
        "--index", type=Path, help="--phases similar: serve this index instead of building one"
    )
    parser.add_argument(
        "--wrk-seconds", type=int, default=10,
        help="length of the wrk run at the most clients (0: skip; needs Debian's wrk)",
    )  # fmt: skip
    args = parser.parse_args()
    return run_command(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
