"""Benchmark the build: full build over raw model.encode, and add-one-file rebuild over full.

    python scripts/bench_build.py [--articles 200] [--bbc ../shared/corpora/bbc]

Corpus: the seed file plus the first N BBC articles (spread over the five topics). Both ratios
come from one run on one machine, so they hold even though absolute times are noisy here.
Builds run as `python -m indexer build` subprocesses: the time a user waits, including
interpreter start-up and model loading. The raw floor is `model.encode` on the very same
embedded texts, in this process, with the model already loaded.
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

from indexer.build import seed_files
from indexer.chunk import ChunkingParams, chunk_articles
from indexer.embed import Embedder
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


def timed_build(seeds: Path, index: Path) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "build", "--seeds", str(seeds), "--index", str(index), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> int:
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

        full, full_report = timed_build(seeds, index)
        shutil.copy(spare, seeds / f"added-{spare.name}")
        added, added_report = timed_build(seeds, index)

    print(f"corpus: seeds + {len(articles)} BBC articles, {len(texts)} chunks")
    print(f"raw model.encode          {raw:8.1f} s  ({len(texts) / raw:.1f} chunks/s)")
    print(f"full build (CLI)          {full:8.1f} s  embedded {full_report['embedded']}")
    print(f"add-one-file build (CLI)  {added:8.1f} s  embedded {added_report['embedded']}")
    print(f"full build / raw encode   {full / raw:8.3f}   (goal <= 1.15)")
    print(f"add one file / full build {added / full:8.3f}   (goal <= 0.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
