"""Benchmark the build against raw torch encoding of the same texts, in one run.

    python scripts/bench_build.py [--articles 200] [--bbc ../shared/corpora/bbc] [--json]
    python scripts/bench_build.py --add-one [--runs 3] [--articles 200] [--json]
    python scripts/bench_build.py --engine ray [--articles 200] [--json]

Corpus: the seed files plus the first N BBC articles (spread over the five topics). All figures
come from one run on one machine, so the ratios hold even though absolute times are noisy here.

- reference: a process that loads the model with sentence-transformers (torch) and encodes the
  very texts the build embeds;
- CLI full builds: ``python -m indexer build --full`` as a user runs it, on ONNX Runtime fp32
  (the default), int8 and torch; each after a first build, so the exported model is in place;
- CLI add-one-file: ``python -m indexer build`` after adding one article, over the full build;
- in-process builds with the model loaded (what ``POST /admin/reindex`` does);
- evidence sentences: encoding the texts with their sentence vectors (one pass) against
  encoding the passages alone, and the share of the snapshot ``sentences.npy`` takes.

With ``--add-one``: only the CLI add-one-file build over the CLI full build, ``--runs`` times
each, alternating (each run adds another article), as medians; quicker than the whole table.

With ``--engine ray``: full in-process builds (``--full``, every text embedded) on the local
engine and on a local Ray instance with 1 and 2 actors, as texts per second, plus Ray's fixed
start-up cost (starting the instance and loading the model in each actor).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import benchmark_arguments, print_table, wall, write_corpus

from indexer.build import build_index
from indexer.chunk import sentence_spans
from indexer.embed import Embedder
from indexer.errors import run_command
from indexer.settings import ENGINES, Settings
from indexer.store import IndexStore
from search_api.evaluation import articles_in_turn

REFERENCE = """
import json, sys, time
from sentence_transformers import SentenceTransformer
from indexer.embed import packaged_model_path
texts = json.load(open(sys.argv[1]))
SentenceTransformer(str(packaged_model_path()), device="cpu").encode(texts, batch_size=32)
"""


def cli_build(seeds: Path, index: Path, *flags: str, env: dict[str, str] | None = None) -> float:
    command = [
        sys.executable,
        "-m",
        "indexer",
        "build",
        "--seeds",
        str(seeds),
        "--index",
        str(index),
    ]
    return wall([*command, "--json", *flags], env)


def sentence_cost(embedder: Embedder, texts: list[str]) -> tuple[float, float]:
    """Seconds to encode the passages alone, and with their sentence vectors, best of two
    alternating runs each."""
    spans = [sentence_spans(text) if len(sentence_spans(text)) > 1 else [] for text in texts]
    alone, both = [], []
    for _ in range(2):
        started = time.perf_counter()
        embedder.encode(texts)
        alone.append(time.perf_counter() - started)
        started = time.perf_counter()
        embedder.encode_spans(texts, spans)
        both.append(time.perf_counter() - started)
    return min(alone), min(both)


def bench(args: argparse.Namespace) -> int:
    articles = articles_in_turn(args.bbc, args.articles + 1)
    spare = articles.pop()  # added in the incremental run
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        seeds = Path(scratch) / "seeds"
        write_corpus(seeds, articles)
        # The texts the build embeds, straight from a snapshot of this corpus.
        first = Settings(seeds_dir=seeds, index_dir=Path(scratch) / "fp32")
        report = build_index(first, notify=lambda m: None)
        texts = list(dict.fromkeys(IndexStore(first.index_dir).open_snapshot().embedded_texts()))
        texts_file = Path(scratch) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        int8_index = Path(scratch) / "int8"
        cli_build(seeds, int8_index, env={"SEEDSEARCH_PRECISION": "int8"})  # exports int8

        reference = wall([sys.executable, "-c", REFERENCE, str(texts_file)])
        full = cli_build(seeds, first.index_dir, "--full")
        full_int8 = cli_build(seeds, int8_index, "--full", env={"SEEDSEARCH_PRECISION": "int8"})
        full_torch = cli_build(
            seeds, first.index_dir, "--full", env={"SEEDSEARCH_BACKEND": "torch"}
        )
        shutil.copy(spare, seeds / f"added-{spare.name}")
        added = cli_build(seeds, first.index_dir)

        embedder = Embedder(model_file=IndexStore(first.index_dir).model_file, export=False)
        embedder.warm_up()
        in_process = Settings(seeds_dir=seeds, index_dir=Path(scratch) / "in-process")
        build_index(in_process, embedder=embedder, notify=lambda m: None)
        started = time.perf_counter()
        build_index(in_process, embedder=embedder, full=True, notify=lambda m: None)
        in_process_full = time.perf_counter() - started
        passages_only, with_sentences = sentence_cost(embedder, texts)
        sizes = IndexStore(first.index_dir).file_sizes()  # the live snapshot

    result = {
        "chunks": report.chunks, "texts": len(texts),
        "seconds": {"torch_reference": round(reference, 2), "cli_full_onnx": round(full, 2),
                    "cli_full_int8": round(full_int8, 2), "cli_full_torch": round(full_torch, 2),
                    "cli_add_one_file": round(added, 2), "in_process_full_onnx": round(in_process_full, 2)},
        "cli_full_onnx_over_reference": round(full / reference, 3),
        "cli_full_int8_over_reference": round(full_int8 / reference, 3),
        "cli_full_torch_over_reference": round(full_torch / reference, 3),
        "cli_add_one_over_cli_full": round(added / full, 3),
        "sentences": report.sentences,
        "encode_with_sentences_over_passages_only": round(with_sentences / passages_only, 3),
        "sentence_file_share_of_snapshot": round(sizes["sentences.npy"] / sum(sizes.values()), 3),
        "snapshot_bytes": sizes,
    }  # fmt: skip
    if not args.json:
        seconds = result["seconds"]
        assert isinstance(seconds, dict)
        print_table(f"bench_build: seeds + {len(articles)} BBC articles, {len(texts)} texts", [
            ("torch reference (load + encode)", f"{seconds['torch_reference']:7.1f} s"),
            ("CLI full build, onnx fp32", f"{full:7.1f} s   / reference {result['cli_full_onnx_over_reference']:.3f}  (goal <= 0.6)"),
            ("CLI full build, onnx int8", f"{full_int8:7.1f} s   / reference {result['cli_full_int8_over_reference']:.3f}"),
            ("CLI full build, torch", f"{full_torch:7.1f} s   / reference {result['cli_full_torch_over_reference']:.3f}"),
            ("CLI add one file", f"{added:7.1f} s   / CLI full {result['cli_add_one_over_cli_full']:.3f}  (goal <= 0.05)"),
            ("in-process full build, onnx", f"{in_process_full:7.1f} s"),
            (f"encode + {report.sentences} sentence vectors", f"{with_sentences:7.1f} s   / passages alone {result['encode_with_sentences_over_passages_only']:.3f}"),
            ("sentences.npy", f"{sizes['sentences.npy'] / 1e6:7.2f} MB   / snapshot {result['sentence_file_share_of_snapshot']:.3f}"),
        ])  # fmt: skip
    print(json.dumps(result))
    return 0


def bench_add_one(args: argparse.Namespace) -> int:
    """The CLI add-one-file build over the CLI full build, medians of ``args.runs`` of each."""
    articles = articles_in_turn(args.bbc, args.articles + args.runs)
    spares = [articles.pop() for _ in range(args.runs)]  # one new article per run
    full: list[float] = []
    added: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-add-one-") as scratch:
        seeds, index = Path(scratch) / "seeds", Path(scratch) / "index"
        write_corpus(seeds, articles)
        cli_build(seeds, index)  # the first build: the model in place, everything cached
        for spare in spares:
            full.append(cli_build(seeds, index, "--full"))
            shutil.copy(spare, seeds / f"added-{spare.name}")
            added.append(cli_build(seeds, index))
    medians = {
        "cli_full_onnx": statistics.median(full),
        "cli_add_one_file": statistics.median(added),
    }
    result = {
        "runs": args.runs,
        "seconds": {name: round(value, 2) for name, value in medians.items()},
        "cli_add_one_over_cli_full": round(medians["cli_add_one_file"] / medians["cli_full_onnx"], 3),
    }  # fmt: skip
    if not args.json:
        print_table(f"bench_build --add-one: seeds + {len(articles)} BBC articles, median of {args.runs}", [
            ("CLI full build, onnx fp32", f"{medians['cli_full_onnx']:7.1f} s"),
            ("CLI add one file", f"{medians['cli_add_one_file']:7.1f} s   / CLI full {result['cli_add_one_over_cli_full']:.3f}  (goal <= 0.05)"),
        ])  # fmt: skip
    print(json.dumps(result))
    return 0


def bench_ray(args: argparse.Namespace) -> int:
    import ray

    from indexer.ray_engine import RayEmbedder

    articles = articles_in_turn(args.bbc, args.articles)
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as scratch:
        seeds = Path(scratch) / "seeds"
        write_corpus(seeds, articles)
        settings = Settings(seeds_dir=seeds, index_dir=Path(scratch) / "index")
        store = IndexStore(settings.index_dir)
        local = Embedder.for_index(settings, store, export=True)
        report = build_index(settings, embedder=local, notify=lambda m: None)  # exports, warms
        texts = report.chunks

        def full_build(model: object) -> float:
            started = time.perf_counter()
            build_index(settings, embedder=model, full=True, notify=lambda m: None)  # type: ignore[arg-type]
            return time.perf_counter() - started

        seconds = {"local": full_build(local)}
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")  # fmt: skip
        for actors in (1, 2):
            remote = RayEmbedder(local, store.model_file(local.fingerprint), actors=actors)
            remote.encode_spans(["warm-up"] * actors, [[]] * actors)  # every actor is ready
            if actors == 1:
                startup = time.perf_counter() - started
            seconds[f"ray_{actors}"] = full_build(remote)
            remote.close()
        ray.shutdown()
    rates = {name: round(texts / value, 1) for name, value in seconds.items()}
    result = {
        "chunks": texts, "texts_per_second": rates,
        "ray_startup_seconds": round(startup, 2),
        "ray_1_over_local": round(rates["ray_1"] / rates["local"], 3),
        "ray_2_over_ray_1": round(rates["ray_2"] / rates["ray_1"], 3),
    }  # fmt: skip
    if not args.json:
        print_table(f"bench_build --engine ray: seeds + {len(articles)} BBC articles, {texts} chunks", [
            ("local engine, full build", f"{rates['local']:7.1f} chunks/s"),
            ("Ray, 1 actor, full build", f"{rates['ray_1']:7.1f} chunks/s   / local {result['ray_1_over_local']:.3f}"),
            ("Ray, 2 actors, full build", f"{rates['ray_2']:7.1f} chunks/s   / 1 actor {result['ray_2_over_ray_1']:.3f}"),
            ("Ray start-up (instance + 1 actor)", f"{startup:7.1f} s"),
        ])  # fmt: skip
    print(json.dumps(result))
    return 0


def main() -> int:
    parser = benchmark_arguments(__doc__)
    parser.add_argument("--engine", choices=ENGINES, default="local")
    parser.add_argument(
        "--add-one", action="store_true", help="only the add-one-file build over the full build"
    )
    parser.add_argument("--runs", type=int, default=3, help="with --add-one: runs of each build")
    args = parser.parse_args()
    if args.engine == "ray":
        return run_command(lambda: bench_ray(args))
    return run_command(lambda: bench_add_one(args) if args.add_one else bench(args))


if __name__ == "__main__":
    sys.exit(main())
