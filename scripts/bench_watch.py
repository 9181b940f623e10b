"""Under ``--watch``: seconds from dropping a new seed file into the seeds folder to its being
searchable, over the seeds plus ``--articles`` BBC articles (default 300), p50 of ``--drops``.

Each drop renames a whole BBC article (one not in the corpus) into the folder, the way a copy
tool finishes, then polls ``/search`` for its headline until the file is among the results.
The figure includes the quiet period (printed beside it), the build child's start-up and model
load, and the server's next check of CURRENT (default interval).
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from benchlib import benchmark_arguments, print_table, running_server, write_corpus

from indexer.build import build_index
from indexer.errors import run_command
from indexer.settings import Settings
from search_api.evaluation import articles_in_turn

GIVE_UP_SECONDS = 300.0


def searchable(url: str, query: str, source: str) -> bool:
    answer = httpx.get(f"{url}/search", params={"q": query, "k": 10}, timeout=60).json()
    return any(result["source"] == source for result in answer["results"])


def watch_builds(url: str) -> int:
    record = httpx.get(f"{url}/healthz", timeout=60).json().get("watch")
    return int(record["builds"]) if record else 0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    parser = benchmark_arguments(__doc__)
    parser.set_defaults(articles=300)
    parser.add_argument("--drops", type=int, default=5, help="files dropped one at a time")
    args = parser.parse_args()
    settings = Settings()
    picked = articles_in_turn(args.bbc, args.articles + args.drops)
    corpus, drops = picked[: args.articles], picked[args.articles :]
    with tempfile.TemporaryDirectory(prefix="seedsearch-bench-watch-") as scratch:
        seeds, index, staging = (Path(scratch) / name for name in ("seeds", "index", "staging"))
        write_corpus(seeds, corpus)
        staging.mkdir()
        build_index(Settings(seeds_dir=seeds, index_dir=index), notify=lambda message: None)
        env = {"SEEDSEARCH_WATCH": "true", "SEEDSEARCH_SEEDS_DIR": str(seeds)}
        seconds = []
        with running_server(index, env=env) as url:
            wait_for(lambda: watch_builds(url) >= 1, "the start-up watch build")
            for article in drops:
                name = f"dropped-{article.parent.name}-{article.name}"
                headline = article.read_text(encoding="utf-8", errors="replace").splitlines()[0]
                (staging / name).write_bytes(article.read_bytes())
                dropped = time.perf_counter()
                os.replace(staging / name, seeds / name)
                found = functools.partial(searchable, url, headline, name)
                wait_for(found, f"{name} to be searchable")
                seconds.append(time.perf_counter() - dropped)
    result = {
        "articles": args.articles,
        "quiet_seconds": settings.watch_quiet_seconds,
        "reload_interval_seconds": settings.reload_interval_seconds,
        "drops": [round(s, 2) for s in seconds],
        "p50_seconds": round(statistics.median(seconds), 2),
    }
    if not args.json:
        print_table(
            f"new seed file searchable under --watch (seeds + {args.articles} BBC)",
            [("quiet period", f"{settings.watch_quiet_seconds:g} s"),
             ("drops", ", ".join(f"{s:.1f}" for s in seconds) + " s"),
             ("p50", f"{result['p50_seconds']:.1f} s (goal <= 15 s)")],
        )  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command(main))
