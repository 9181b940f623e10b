"""Benchmark the build: full build over raw model.encode, and add-one-file rebuild over full.

    python scripts/bench_build.py [--articles 200] [--bbc ../shared/corpora/bbc]

Corpus: the seed file plus the first N BBC articles (spread over the five topics). All figures
come from one run on one machine, so the ratios hold even though absolute times are noisy here.
The floor is raw `model.encode` on the very same embedded texts, with the model loaded.
Builds are measured twice:
- in-process, with the model already loaded (what `POST /admin/reindex` does);
- as `python -m indexer build` subprocesses: what a user waits for at the shell, including the
  fixed cost of starting Python and importing torch and sentence-transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from indexer.build import build_index, seed_files
from indexer.chunk import ChunkingParams, chunk_articles
from indexer.embed import Embedder
from indexer.errors import run_command
from indexer.parse import SourceError, parse_articles, read_source
from indexer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ("business", "entertainment", "politics", "sport", "tech")


def pick_articles(bbc: Path, count: int) -> list[Path]:
    per_topic = [sorted((bbc / topic).glob("*.txt")) for topic in TOPICS]
    picked = [
        files[i] for i in range(max(map(len, per_topic))) for files in per_topic if i < len(files)
    ]
    return picked[: count + 1]  # one spare: the file added in the incremental run


def embed_texts(seeds: Path, embedder: Embedder) -> list[str]:
    params = ChunkingParams(embedder.max_tokens, Settings().embed_title)
    texts = []
    for path in seed_files(seeds):
        try:
            text = read_source(path)
        except SourceError:
            continue
        chunks = chunk_articles(
            parse_articles(text), path.name, text, params, embedder.count_tokens
        )
        texts += [chunk.embed_text for chunk in chunks]
    return list(dict.fromkeys(texts))


def timed_cli_build(seeds: Path, index: Path) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "build", "--seeds", str(seeds), "--index", str(index), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    return time.perf_counter() - started, json.loads(done.stdout)


def bench() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--bbc", type=Path, default=ROOT.parent / "shared" / "corpora" / "bbc")
    args = parser.parse_args()
    articles = pick_articles(args.bbc, args.articles)
    spare = articles.pop()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        seeds, index = Path(scratch) / "seeds", Path(scratch) / "index"
        seeds.mkdir()
        for path in [*sorted((ROOT / "seeds").glob("*.txt")), *articles]:
            shutil.copy(path, seeds / f"{path.parent.name}-{path.name}")

        embedder = Embedder()
        texts = embed_texts(seeds, embedder)
        embedder.encode(["warm-up"])
        started = time.perf_counter()
        embedder.encode(texts)
        raw = time.perf_counter() - started

        settings = Settings(seeds_dir=seeds, index_dir=Path(scratch) / "in-process")
        started = time.perf_counter()
        build_index(settings, embedder=embedder, notify=lambda message: None)
        full = time.perf_counter() - started
        cli_full, cli_full_report = timed_cli_build(seeds, index)

        shutil.copy(spare, seeds / f"added-{spare.name}")
        started = time.perf_counter()
        added_report = build_index(settings, embedder=embedder, notify=lambda message: None)
        added = time.perf_counter() - started
        cli_added, cli_added_report = timed_cli_build(seeds, index)

    print(f"corpus: seeds + {len(articles)} BBC articles, {len(texts)} unique chunk texts")
    print(f"raw model.encode               {raw:7.1f} s  ({len(texts) / raw:.1f} chunks/s)")
    print(f"full build, in-process         {full:7.1f} s")
    print(f"add-one-file, in-process       {added:7.1f} s  (embedded {added_report.embedded})")
    print(
        f"full build, CLI                {cli_full:7.1f} s  (embedded {cli_full_report['embedded']})"
    )
    print(
        f"add-one-file, CLI              {cli_added:7.1f} s  (embedded {cli_added_report['embedded']})"
    )
    print(f"in-process: full / raw encode  {full / raw:7.3f}   (goal <= 1.15)")
    print(f"in-process: add one / full     {added / full:7.3f}   (goal <= 0.15)")
    print(f"CLI:        full / raw encode  {cli_full / raw:7.3f}")
    print(
        f"CLI:        add one / full     {cli_added / cli_full:7.3f}   (start-up is a fixed cost)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_command(bench))
