"""Benchmark the query encoder's graphs against the exported fp32 one, in one process.

    python scripts/bench_encoder.py [--rounds 400] [--loads 5] [--passages 320] [--json]
    python scripts/bench_encoder.py --grid [--grid-rounds 3] [--json]
    python scripts/bench_encoder.py --build [--passages 320] [--runs 3] [--json]

Graphs (made once in a scratch folder from the shared exported file, as a build makes them):
``exported`` (fp32, as exported, optimised by ONNX Runtime at load), ``fused`` (fp32 with
ONNX Runtime's BERT operators fused offline, what fp32 encodes run on) and ``query-int8``
(``fused`` with 8-bit matrix products, SEEDSEARCH_QUERY_PRECISION=int8, each text alone).

- default: session load time (``--loads`` times each, alternating), one query's encode (the
  benchmark queries in turn, each graph on the same query, the order alternating every round)
  and each graph's cosine to ``exported`` on those queries; as medians and ratios to
  ``exported``;
- ``--grid``: queries per second (median over rounds) and latency through
  ``Embedder.encode_query`` for 1 and 16 calling threads, for ONNX Runtime threads {1, 2} x
  batching lanes {1, 2, 4}, both query precisions; each round gives every configuration the
  next slice of the benchmark queries (so no cache answers), in alternating order;
- ``--build``: a build's batch encode (``encode_spans``, every core) of BBC paragraphs on
  ``exported`` and ``fused``, and torch's ``SentenceTransformer.encode`` of the same texts
  (the reference of scripts/bench_build.py), ``--runs`` times each, alternating.

Every figure is a ratio within one run: absolute times on a shared machine are noise.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from benchlib import BBC, benchmark_queries, print_table, summary_ms

from indexer.embed import FUSED, QUERY_INT8, Embedder, derived_model_file, packaged_model_path
from indexer.encoders import OnnxEncoder
from indexer.errors import run_command
from indexer.parse import Span
from indexer.settings import Precision, Settings
from indexer.store import IndexStore

GRAPHS = ("exported", FUSED, QUERY_INT8)
GRID_THREADS = (1, 2)
GRID_LANES = (1, 2, 4)
GRID_CALLERS = (1, 16)


def graph_files(scratch: Path) -> dict[str, Path]:
    """Each graph's file, made the way a build makes them (the export linked from the shared
    folder, the derived graphs there too)."""
    store = IndexStore(scratch / "index")
    embedder = Embedder(
        query_precision="int8", model_file=store.model_file, export=True,
        exported_models=Settings().exported_models_dir,
    )  # fmt: skip
    exported = store.model_file(embedder.fingerprint)
    embedder.write_onnx(exported)
    return {"exported": exported} | {v: derived_model_file(exported, v) for v in GRAPHS[1:]}


def encoder(graph: str, path: Path, threads: int) -> OnnxEncoder:
    return OnnxEncoder(path, packaged_model_path(), threads, alone=graph == QUERY_INT8)


def alternating(
    rounds: int, names: list[str], run: Callable[[str, int], float]
) -> dict[str, list[float]]:
    """``run(name, round)`` for every name each round, in reverse order every other round."""
    times: dict[str, list[float]] = {name: [] for name in names}
    for turn in range(rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            times[name].append(run(name, turn))
    return times


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def bench_graphs(
    args: argparse.Namespace, files: dict[str, Path], queries: list[str]
) -> dict[str, object]:
    names = list(GRAPHS)
    loads = alternating(args.loads, names, lambda g, _: timed(lambda: encoder(g, files[g], 2)))
    encoders = {g: encoder(g, files[g], 2) for g in names}
    for loaded in encoders.values():
        loaded.encode(queries[:4])
    encodes = alternating(
        args.rounds,
        names,
        lambda g, turn: timed(lambda: encoders[g].encode([queries[turn % len(queries)]])),
    )
    reference = encoders["exported"].encode(queries)
    report: dict[str, object] = {}
    for graph in names:
        cosines = np.sum(encoders[graph].encode(queries) * reference, axis=1)
        report[graph] = {
            "load_s": round(statistics.median(loads[graph]), 3),
            "load_ratio": round(
                statistics.median(loads[graph]) / statistics.median(loads["exported"]), 3
            ),
            "encode": summary_ms(encodes[graph]),
            "encode_ratio": round(
                statistics.median(encodes[graph]) / statistics.median(encodes["exported"]), 3
            ),
            "cosine_to_exported": {
                "min": round(float(cosines.min()), 6),
                "mean": round(float(cosines.mean()), 6),
            },
        }
    return report


def callers_run(embedder: Embedder, queries: list[str], callers: int) -> tuple[float, list[float]]:
    """Every query through ``encode_query`` from ``callers`` threads at once: the queries per
    second and each query's latency."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(query: str) -> None:
        took = timed(lambda: embedder.encode_query(query))
        with lock:
            latencies.append(took)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=callers) as pool:
        list(pool.map(one, queries))
    return len(queries) / (time.perf_counter() - started), latencies


def bench_grid(
    args: argparse.Namespace, files: dict[str, Path], queries: list[str]
) -> dict[str, object]:
    """Each configuration has its own Embedder (its own cache) and never sees a query twice;
    every round runs each configuration on the next slice of queries, in alternating order."""
    exported = files["exported"]
    precisions: tuple[Precision, ...] = ("fp32", "int8")
    embedders = {
        f"{precision}, {threads} thread(s), {lanes} lane(s)": Embedder(
            query_precision=precision, model_file=lambda _: exported, export=False,
            threads=threads, lanes=lanes,
        )
        for precision in precisions for threads in GRID_THREADS for lanes in GRID_LANES
    }  # fmt: skip
    for embedder in embedders.values():
        embedder.warm_up()
    size = len(queries) // (args.grid_rounds * len(GRID_CALLERS))
    runs = [(turn, callers) for turn in range(args.grid_rounds) for callers in GRID_CALLERS]
    rates: dict[tuple[str, int], list[float]] = {}
    latencies: dict[tuple[str, int], list[float]] = {}
    names = list(embedders)
    for slot, (turn, callers) in enumerate(runs):
        chunk = queries[slot * size : (slot + 1) * size]
        for name in names if turn % 2 == 0 else names[::-1]:
            rate, took = callers_run(embedders[name], chunk, callers)
            rates.setdefault((name, callers), []).append(rate)
            latencies.setdefault((name, callers), []).extend(took)
    return {
        name: {
            f"{callers} callers": {
                "queries_per_s": round(statistics.median(rates[name, callers]), 1),
                **summary_ms(latencies[name, callers]),
            }
            for callers in GRID_CALLERS
        }
        for name in names
    }


def bbc_paragraphs(count: int) -> list[str]:
    """The first ``count`` body paragraphs of the BBC corpus, articles taken in name order."""
    paragraphs: list[str] = []
    for path in sorted(BBC.glob("*/*.txt")):
        body = path.read_text(encoding="utf-8", errors="replace").split("\n\n")[1:]
        paragraphs += [p.strip() for p in body if len(p.strip()) > 80]
        if len(paragraphs) >= count:
            break
    return paragraphs[:count]


def bench_build(args: argparse.Namespace, files: dict[str, Path]) -> dict[str, object]:
    from sentence_transformers import SentenceTransformer

    texts = bbc_paragraphs(args.passages)
    spans: list[list[Span]] = [[] for _ in texts]
    onnx = {g: encoder(g, files[g], 0) for g in ("exported", FUSED)}
    torch = SentenceTransformer(str(packaged_model_path()), device="cpu")
    runs: dict[str, Callable[[], object]] = {
        "torch SentenceTransformer.encode": lambda: torch.encode(texts, batch_size=32)
    }
    for graph, loaded in onnx.items():
        runs[f"onnx {graph}"] = functools.partial(loaded.encode_spans, texts, spans)
    times = alternating(args.runs, list(runs), lambda name, _: timed(runs[name]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    torch_s, exported_s = medians["torch SentenceTransformer.encode"], medians["onnx exported"]
    vectors = {g: np.stack([v for v, _ in onnx[g].encode_spans(texts, spans)]) for g in onnx}
    return {
        "passages": len(texts),
        **{name: {"seconds": round(s, 3), "over_torch": round(s / torch_s, 3),
                  "over_exported": round(s / exported_s, 3)} for name, s in medians.items()},
        "fused_cosine_min": round(float(np.sum(vectors["exported"] * vectors[FUSED], axis=1).min()), 7),
    }  # fmt: skip


def print_report(title: str, report: dict[str, object]) -> None:
    rows = [(name, json.dumps(value)) for name, value in report.items()]
    print_table(title, rows)


def bench(args: argparse.Namespace) -> int:
    queries = benchmark_queries()
    with tempfile.TemporaryDirectory(prefix="bench-encoder-") as scratch:
        files = graph_files(Path(scratch))
        if args.grid:
            result = {"grid": bench_grid(args, files, queries)}
        elif args.build:
            result = {"build": bench_build(args, files)}
        else:
            result = {"graphs": bench_graphs(args, files, queries)}
    if not args.json:
        for name, report in result.items():
            print_report(
                f"bench_encoder {name} (medians; ratios to the exported fp32 graph)", report
            )
    print(json.dumps(result))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=400, help="single-query encodes per graph")
    parser.add_argument("--loads", type=int, default=5, help="session loads per graph")
    parser.add_argument("--grid", action="store_true", help="ONNX Runtime threads x batching lanes")
    parser.add_argument("--grid-rounds", type=int, default=3, help="rounds of the grid")
    parser.add_argument("--build", action="store_true", help="a build's batch encode")
    parser.add_argument("--passages", type=int, default=320, help="BBC paragraphs for --build")
    parser.add_argument("--runs", type=int, default=3, help="batch encodes per runtime (--build)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    return run_command(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
