"""Benchmark start-up: the CLI search script, a no-op build and the server, against the time
that importing sentence-transformers alone takes, measured side by side in one run.

    python scripts/bench_startup.py [--articles 200] [--runs 3] [--json]

Each command runs ``--runs`` times, alternating with the reference, and the medians are
compared. The index (seed files + N BBC articles) is built once beforehand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import (
    benchmark_arguments,
    print_table,
    running_server,
    wall,
    write_corpus,
)

from indexer.build import build_index
from indexer.errors import run_command
from indexer.settings import Settings
from search_api.evaluation import articles_in_turn


def server_start(index: Path, env: dict[str, str] | None = None) -> float:
    """Seconds from starting ``python -m search_api`` to its first healthy answer."""
    started = time.perf_counter()
    with running_server(index, env=env):
        return time.perf_counter() - started


def bench(args: argparse.Namespace) -> int:
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        seeds, index = Path(scratch) / "seeds", Path(scratch) / "index"
        write_corpus(seeds, articles_in_turn(args.bbc, args.articles))
        build_index(Settings(seeds_dir=seeds, index_dir=index), notify=lambda m: None)
        commands: dict[str, Callable[[], float]] = {
            "import sentence_transformers": lambda: wall([python, "-c", "import sentence_transformers"]),
            "scripts/search.py": lambda: wall(
                [python, "scripts/search.py", "flood evacuations", "--index", str(index)]
            ),
            "indexer build, nothing to embed": lambda: wall(
                [python, "-m", "indexer", "build", "--seeds", str(seeds), "--index", str(index)]
            ),
            "server start to healthy (onnx)": lambda: server_start(index),
            "server start to healthy (torch)": lambda: server_start(
                index, {"SEEDSEARCH_BACKEND": "torch"}
            ),
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, run in commands.items():
                times[name].append(run())
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    reference = medians["import sentence_transformers"]
    ratios = {name: round(value / reference, 3) for name, value in medians.items()}
    result = {"runs": args.runs, "seconds": medians, "over_import_sentence_transformers": ratios}
    if not args.json:
        print_table(
            f"bench_startup (median of {args.runs} runs; ratio to importing sentence-transformers)",
            [(name, f"{medians[name]:6.2f} s   {ratios[name]:.3f}") for name in commands],
        )
    print(json.dumps(result))
    return 0


def main() -> int:
    parser = benchmark_arguments(__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    return run_command(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
