"""Benchmark the vector index types at scale: recall@10 against exact search, latency, memory.

    python scripts/bench_ann.py [--sizes 100000,1000000,10000000] [--types auto,flat,hnsw,ivf]
                                [--hnsw '{"ef_search": 64}'] [--ivf '{"nprobe": 16}']

Vectors: the BBC corpus's paragraphs embedded with the project's model (cached under --cache);
a set of N is N of them drawn with replacement, each plus Gaussian noise whose norm is about the
median nearest-neighbour distance of the real set, renormalised, so neighbours are not copies.
Sets are generated in seeded batches, so a 10M set is never held whole: its exact top-10 is a
running top-10 over the batches. Queries: the dev sets and SciFact's test queries, encoded.

Per size and type (``auto`` = what ``choose_index`` picks; ``flat`` is the exact baseline and
runs up to --flat-max): build time, file bytes per vector, the loaded index's resident and
private (unshared) memory after the queries, recall@10 against exact, p50/p95 of single
queries (k=10) through ``VectorIndex.nearest`` (memory-mapped, as a server reads it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np
from benchlib import BBC, benchmark_queries, print_table, summary_ms

from indexer.errors import UsageError, run_command
from indexer.store import INDEX_TYPES, IndexParam, IndexType, VectorIndexSpec, choose_index

# The store's internals, measured directly: builds here add batches the store never sees whole.
from indexer.store._vectors import VectorIndex, empty_index, training_size
from search_api.evaluation import BBC_TOPICS

BATCH = 200_000
K = 10
WARM_UP = 50
# The search-time parameter --sweep varies, per type.
SWEPT = {"hnsw": "ef_search", "ivf": "nprobe"}


def paragraphs() -> list[str]:
    """Every BBC paragraph (headlines left out), in a fixed order."""
    texts = []
    for topic in BBC_TOPICS:
        for path in sorted((BBC / topic).glob("*.txt")):
            blocks = path.read_text(encoding="utf-8", errors="replace").split("\n\n")
            texts += [block.strip() for block in blocks[1:] if block.strip()]
    return texts


def real_embeddings(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(paragraph vectors, query vectors), encoded once and cached as .npy files."""
    files = cache / "bbc.npy", cache / "queries.npy"
    if not all(f.exists() for f in files):
        from indexer.embed import Embedder
        from indexer.store import IndexStore

        cache.mkdir(parents=True, exist_ok=True)
        embedder = Embedder(model_file=IndexStore(cache / "models").model_file, export=True)
        np.save(files[1], embedder.encode(benchmark_queries()).astype(np.float32))
        np.save(files[0], embedder.encode(paragraphs()).astype(np.float32))
    return np.load(files[0]), np.load(files[1])


def median_neighbour_distance(real: np.ndarray) -> float:
    """The median distance from each real vector to its nearest other (non-identical) one."""
    nearest = []
    for start in range(0, len(real), 2048):
        similarity = real[start : start + 2048] @ real.T
        similarity[similarity > 1 - 1e-6] = -1  # itself and verbatim repeats
        nearest.append(similarity.max(axis=1))
    return float(np.median(np.sqrt(np.maximum(0, 2 - 2 * np.concatenate(nearest)))))


def synthetic_batches(
    real: np.ndarray, count: int, noise: float, seed: int
) -> Iterator[np.ndarray]:
    """The ``count`` synthetic vectors in batches; batch b is the same for every ``count``."""
    scale = noise / np.sqrt(real.shape[1])
    for number, start in enumerate(range(0, count, BATCH)):
        rng = np.random.default_rng([seed, number])
        size = min(BATCH, count - start)
        batch = real[rng.integers(0, len(real), size)]
        batch += rng.standard_normal(batch.shape, dtype=np.float32) * np.float32(scale)
        batch /= np.linalg.norm(batch, axis=1, keepdims=True)
        yield batch


def exact_top(queries: np.ndarray, batches: Iterator[np.ndarray]) -> np.ndarray:
    """The ids of each query's exact top-K, kept as a running top-K over the batches."""
    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), K), dtype=np.int64)
    start = 0
    for batch in batches:
        scores = queries @ batch.T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
        ids = np.concatenate([best_ids, top + start], axis=1)
        keep = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        best_scores, best_ids = (
            np.take_along_axis(scores, keep, 1),
            np.take_along_axis(ids, keep, 1),
        )
        start += len(batch)
    return best_ids


def memory_mb() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) / 1024
    return {"rss": fields["Rss"], "private": fields["Anonymous"]}


def measure(
    spec: VectorIndexSpec,
    batches: Iterator[np.ndarray],
    count: int,
    dimension: int,
    queries: np.ndarray,
    truth: np.ndarray,
    work: Path,
    sweep: list[int],
) -> list[dict[str, Any]]:
    """Build ``spec`` over the batches, write it, then map it and search every query, once
    per value of its search-time parameter in ``sweep``."""
    started = time.perf_counter()
    index = empty_index(spec, dimension, count)
    pending: list[np.ndarray] = []
    for batch in batches:
        if not index.is_trained:  # the first batches are a uniform sample of the set
            pending.append(batch)
            if sum(map(len, pending)) < training_size(index, count):
                continue
            sample = np.concatenate(pending)
            index.train(sample[: training_size(index, count)])
            batch, pending = sample, []
        index.add(batch)
    path = work / f"{spec.type}-{count}.faiss"
    faiss.write_index(index, str(path))
    build_s = time.perf_counter() - started
    del index
    swept = SWEPT.get(spec.type)
    values: list[IndexParam] = [*sweep] or ([] if swept is None else [spec.param(swept)])
    variants = [{**spec.params, swept: value} for value in values] if swept else [spec.params]
    rows = []
    for params in variants:
        searched = VectorIndexSpec(spec.type, params)
        rows.append({"size": count, "type": spec.type, "params": params,
                     "build_s": round(build_s, 1), **search(path, searched, queries, truth)})  # fmt: skip
    path.unlink()
    return rows


def search(
    path: Path, spec: VectorIndexSpec, queries: np.ndarray, truth: np.ndarray
) -> dict[str, Any]:
    """Map the index and time every query once, after a warm-up of a few."""
    before = memory_mb()
    vectors = VectorIndex(path, spec)
    for query in queries[:WARM_UP]:
        vectors.nearest(query[None, :], K)
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = vectors.nearest(query[None, :], K)
        times.append(time.perf_counter() - started)
        found.append([row for row, _ in hits])
    after = memory_mb()
    recall = np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth.tolist(), strict=True)])
    size = path.stat().st_size
    return {
        "bytes_per_vector": round(size / len(vectors), 1),
        "file_mb": round(size / 2**20, 1),
        "resident_mb": round(after["rss"] - before["rss"], 1),
        "private_mb": round(after["private"] - before["private"], 1),
        f"recall@{K}": round(float(recall), 4),
        **summary_ms(times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--types", default="auto,flat", help="auto, flat, hnsw, ivf")
    parser.add_argument("--hnsw", default="{}", help="JSON parameters for hnsw")
    parser.add_argument("--ivf", default="{}", help="JSON parameters for ivf")
    parser.add_argument("--ef-search", default="", help="efSearch values to sweep, e.g. 64,128")
    parser.add_argument("--nprobe", default="", help="nprobe values to sweep, e.g. 16,32,64")
    parser.add_argument("--flat-max", type=int, default=1_000_000, help="largest flat baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ann-cache"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/ann-work"))
    args = parser.parse_args()
    for name in args.types.split(","):
        if name != "auto" and name not in INDEX_TYPES:
            parser.error(f"unknown index type {name!r}")
    return run_command(lambda: bench(args))


def json_params(text: str, flag: str) -> dict[str, Any]:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{flag}: not JSON ({error.msg})") from None
    if not isinstance(params, dict):
        raise UsageError(f"{flag}: expected a JSON object of parameters")
    return params


def bench(args: argparse.Namespace) -> int:
    overrides = {"hnsw": json_params(args.hnsw, "--hnsw"), "ivf": json_params(args.ivf, "--ivf")}
    real, queries = real_embeddings(args.cache)
    noise = median_neighbour_distance(real)
    sweeps = {kind: [int(v) for v in values.split(",") if v]
              for kind, values in (("hnsw", args.ef_search), ("ivf", args.nprobe))}  # fmt: skip
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for count in map(int, args.sizes.split(",")):

        def batches() -> Iterator[np.ndarray]:
            return synthetic_batches(real, count, noise, args.seed)  # noqa: B023

        truth = exact_top(queries, batches())
        chosen: list[IndexType] = []
        for name in args.types.split(","):
            kind = choose_index(count).type if name == "auto" else cast(IndexType, name)
            if kind not in chosen and not (kind == "flat" and count > args.flat_max):
                chosen.append(kind)
        for kind in chosen:
            spec = choose_index(count, index_type=kind, params=overrides.get(kind))
            sweep = sweeps.get(kind, [])
            for row in measure(
                spec, batches(), count, real.shape[1], queries, truth, args.work, sweep
            ):
                rows.append(row)
                print_table(
                    f"{count:,} vectors, {kind} {json.dumps(row['params'])}",
                    [(key, str(value)) for key, value in row.items() if key != "params"],
                )
    print(json.dumps({"real_vectors": len(real), "queries": len(queries),
                      "noise_norm": round(noise, 4), "runs": rows}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
