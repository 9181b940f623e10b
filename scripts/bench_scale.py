"""Benchmark the whole query path at scale: synthetic snapshots of 10k, 100k and 1M passages.

    python scripts/bench_scale.py [--sizes 10000,100000,1000000] [--matches 300] [--workers 1]
                                  [--seconds 900] [--work DIR] [--cache /tmp/ann-cache] [--json]

Snapshots: N passages written by the store's own writer and published as a build publishes
(``IndexStore.write_snapshot``, then ``publish``: the build's write and publish stages without
parsing or embedding), with the vector index a build picks for N (``choose_index`` with the
default settings: flat up to 50k, HNSW up to 300k, IVF above). Articles of 3-7 passages, each a
BBC article's first paragraphs, every passage one paragraph's sentences plus a sentence drawn
from the whole corpus (so texts are distinct and FTS5 indexes real vocabulary); the headline
is the BBC one; six sources of unequal size; published dates spread over the two years to
2026-11-30 (5% undated); 15% of articles open with a caption; 2% of articles are a syndicated
copy of the one before (same texts, another source, duplicate rows grouped as a build groups
them); a share of passages (--sentence-share) have sentence rows and vectors. Vectors as
scripts/bench_ann.py makes them: each passage's is its paragraph's real embedding (the BBC
paragraphs, encoded once and cached under --cache) plus Gaussian noise of the norm of the
median nearest-neighbour distance, renormalised; a sentence's is its passage's plus such noise.

Matching: the noisy copies of news paragraphs keep little of any query's meaning, and most
queries are SciFact's, so at the server's own bars few queries would match at all and most
would end at the "no good match" gate, skipping the rest of the path. So, with --matches M
(default 300), each size's server runs with SEEDSEARCH_NO_MATCH_THRESHOLD=0 and
SEEDSEARCH_MATCH_THRESHOLD set to the cosine that the median query's M-th closest passage has
(exact scores over the size's vectors, computed here): every query runs the whole path and a
typical one matches about M passages at every size. The output states the bar, and what the
server's own bars would have given (queries whose best cosine clears the 0.30 gate; the median
count at the 0.25 bar). --matches 0 keeps the server's own bars.

Requests: a ``python -m search_api`` process per size, all running at once, 1 client sending
each request in turn to every size, so every size sees the same load and the same query (each
server has its own query cache); the request shapes take distinct queries in turn (the dev sets
plus every SciFact query, shuffled once): default hybrid ``GET /search?q=``,
``facets=month,source,kind``, ``sort=date``, ``GET /feed?q=``, and ``GET
/articles/{id}/similar?k=5`` over articles spread across the snapshot. Per size: the index
type, time to write and publish the snapshot (no embedding), its bytes on disk, the
generator's peak RSS, time to healthy, p50/p99 of each shape, the median matching-set size
(``total``), each server process's PSS after the load, and the p50 of each stage the server
reports in a ``Server-Timing`` header (``name;dur=ms``, when it sends one). The headline: the
hybrid p50 at the largest size over the p50 at the smallest (goal <= 3 from 10k to 1M).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_ann import median_neighbour_distance, real_embeddings
from benchlib import (
    BBC,
    benchmark_queries,
    is_worker,
    memory_mib,
    print_table,
    process_tree,
    server_process,
    stage_p50s,
    summary_ms,
)

from indexer.build import index_for
from indexer.chunk import Chunk, ChunkingParams, sentence_spans
from indexer.embed import Embedder
from indexer.errors import run_command
from indexer.settings import DEFAULT_MATCH_THRESHOLD, DEFAULT_NO_MATCH_THRESHOLD, Settings
from indexer.store import (
    IndexStore,
    Manifest,
    SnapshotContents,
    SourceFile,
    new_snapshot_id,
)
from search_api.evaluation import BBC_TOPICS
from search_api.timing import parse_server_timing

SOURCES = (
    "national-daily.txt", "wire-service.txt", "regional-herald.txt", "business-weekly.txt",
    "sport-desk.txt", "tech-review.txt",
)  # fmt: skip
SOURCE_SHARES = (0.35, 0.25, 0.15, 0.1, 0.1, 0.05)
LAST_DAY = date(2026, 11, 30)
DAYS = 730  # published dates spread over about two years up to LAST_DAY
UNDATED_SHARE = 0.05
CAPTION_SHARE = 0.15
COPY_SHARE = 0.02  # articles that are a syndicated copy of the one before
PASSAGES = (3, 8)  # passages per article: 3 to 7, each article copying a long enough one
FIRST_INDEXED = "2024-12-01T00:00:00+00:00"
VECTOR_BATCH = 100_000
SCORE_BATCH = 20_000  # passages per block of the exact calibration scores
WARM_UP = 3  # requests of each shape to each server before the timed ones
NOTE = "synthetic: scripts/bench_scale.py"


@dataclass(frozen=True)
class Shape:
    """One kind of request: a path ({article} stands for an article id) and its parameters;
    ``query``: whether it takes a query text (``q``)."""

    name: str
    path: str
    params: Mapping[str, str]
    query: bool = True


SHAPES = (
    Shape("hybrid", "/search", {}),
    Shape("facets", "/search", {"facets": "month,source,kind"}),
    Shape("sort=date", "/search", {"sort": "date"}),
    Shape("feed", "/feed", {}),
    Shape("similar", "/articles/{article}/similar", {"k": "5"}, query=False),
)


@dataclass(frozen=True)
class BbcArticle:
    headline: str
    first: int  # its first paragraph's number in scripts/bench_ann.py's paragraphs() order
    paragraphs: tuple[tuple[str, ...], ...]  # each paragraph's sentences


@dataclass(frozen=True)
class Library:
    """The BBC corpus as sentences: per article, and pooled."""

    articles: tuple[BbcArticle, ...]
    sentences: tuple[str, ...]

    def with_paragraphs(self, count: int) -> tuple[BbcArticle, ...]:
        """The articles of at least ``count`` paragraphs (all of them when none is so long)."""
        found = tuple(a for a in self.articles if len(a.paragraphs) >= count)
        return found or self.articles


@dataclass
class Synthetic:
    """One generated corpus, in row order, ready for ``write_snapshot``."""

    chunks: list[Chunk]
    vectors: np.ndarray
    contents: SnapshotContents
    files: list[SourceFile]
    article_ids: list[str]


@dataclass(frozen=True)
class Calibration:
    """The matching bar a size is served with, and what the server's own bars would give."""

    bar: float | None  # None: the server's own bars
    median_matches_at_bar: float
    gate_share: float  # queries whose best cosine clears the server's "no good match" gate
    median_matches_at_default: float

    def to_dict(self) -> dict[str, float | None]:
        return {
            "bar": self.bar, "median_matches_at_bar": self.median_matches_at_bar,
            "gate_share": self.gate_share,
            "median_matches_at_default": self.median_matches_at_default,
        }  # fmt: skip


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    errors: Counter[int] = field(default_factory=Counter)


def library(bbc: Path, paragraph_count: int) -> Library:
    """Every BBC article's paragraphs as sentences, numbered as bench_ann's paragraphs()."""
    articles, pool, first = [], [], 0
    for topic in BBC_TOPICS:
        for path in sorted((bbc / topic).glob("*.txt")):
            blocks = path.read_text(encoding="utf-8", errors="replace").split("\n\n")
            paragraphs = [block.strip() for block in blocks[1:] if block.strip()]
            split = tuple(tuple(p[s:e] for s, e in sentence_spans(p)) for p in paragraphs)
            if split:
                articles.append(BbcArticle(blocks[0].strip(), first, split))
            pool += [sentence for paragraph in split for sentence in paragraph]
            first += len(paragraphs)
    if first != paragraph_count:
        raise SystemExit(f"{first} BBC paragraphs, but {paragraph_count} cached vectors")
    return Library(tuple(articles), tuple(pool))


def digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def generate(
    books: Library, real: np.ndarray, noise: float, count: int, sentence_share: float, seed: int
) -> Synthetic:
    """``count`` passages in articles, with vectors, duplicate groups and sentence rows."""
    rng = np.random.default_rng([seed, count])
    pick = random.Random(seed * 1_000_003 + count)  # scalar draws: far cheaper than numpy's
    days = [(LAST_DAY - timedelta(days=d)).isoformat() for d in range(DAYS)]
    chunks: list[Chunk] = []
    duplicate_of: list[int | None] = []
    sentences: list[tuple[int, int, int]] = []
    paragraph_of = np.empty(count, dtype=np.int64)  # the real paragraph each row copies
    offsets, per_file = Counter[str](), Counter[tuple[str, str]]()
    article_ids: list[str] = []
    previous: list[Chunk] = []
    long_enough = [books.with_paragraphs(n) for n in range(PASSAGES[1])]
    while len(chunks) < count:
        number = len(article_ids)
        source = pick.choices(SOURCES, SOURCE_SHARES)[0]
        if previous and pick.random() < COPY_SHARE:
            first_row = len(chunks) - len(previous)
            texts = [(c.text, c.kind) for c in previous]
            rows_from = paragraph_of[first_row : len(chunks)].tolist()
            title, published = previous[0].title, previous[0].published
            spans: list[list[tuple[int, int]]] = [[] for _ in previous]
            # The copy joins the original's groups; an original row without one starts it.
            groups: list[int | None] = []
            for row in range(first_row, len(chunks)):
                duplicate_of[row] = row if duplicate_of[row] is None else duplicate_of[row]
                groups.append(duplicate_of[row])
        else:
            wanted = pick.randrange(*PASSAGES)
            book = pick.choice(long_enough[wanted])
            wanted = min(wanted, len(book.paragraphs))
            caption = pick.random() < CAPTION_SHARE
            texts, spans = [], []
            for position in range(wanted):
                pieces = [*book.paragraphs[position], pick.choice(books.sentences)]
                text, found, at = " ".join(pieces), [], 0
                for piece in pieces:
                    found.append((at, at + len(piece)))
                    at += len(piece) + 1
                texts.append((text, "caption" if caption and position == 0 else "paragraph"))
                spans.append(found)
            rows_from = [book.first + p for p in range(wanted)]
            title = book.headline
            published = None if pick.random() < UNDATED_SHARE else days[pick.randrange(DAYS)]
            groups = [None] * wanted
        article_id = digest(source, title, number)
        article_ids.append(article_id)
        added = []
        for position, ((text, kind), found, paragraph, group) in enumerate(
            zip(texts, spans, rows_from, groups, strict=True)
        ):
            row = len(chunks)
            if row == count:
                break
            start = offsets[source]
            offsets[source] = start + len(text) + 2
            chunk = Chunk(
                id=digest(seed, "chunk", row), article_id=article_id, kind=kind, title=title,
                text=text, embed_text=text, source=source, start=start, end=start + len(text),
                position=position, published=published,
            )  # fmt: skip
            chunks.append(chunk)
            added.append(chunk)
            duplicate_of.append(group)
            paragraph_of[row] = paragraph
            if len(found) > 1 and pick.random() < sentence_share:
                sentences += [(row, s, e) for s, e in found]
        per_file[(source, "articles")] += 1
        per_file[(source, "chunks")] += len(added)
        previous = added
    vectors = noisy_copies(real[paragraph_of], noise, rng)
    sentence_rows = np.asarray([row for row, _, _ in sentences], dtype=np.int64)
    # Half precision, as the writer stores them: a float32 copy of all would double the peak.
    sentence_vectors = np.empty((len(sentences), vectors.shape[1]), dtype=np.float16)
    for start in range(0, len(sentences), VECTOR_BATCH):
        rows = sentence_rows[start : start + VECTOR_BATCH]
        sentence_vectors[start : start + len(rows)] = noisy_copies(vectors[rows], noise, rng)
    files = [
        SourceFile(source, digest(source, count) * 4, per_file[(source, "articles")],
                   per_file[(source, "chunks")], FIRST_INDEXED)
        for source in SOURCES
        if per_file[(source, "chunks")]
    ]  # fmt: skip
    contents = SnapshotContents(duplicate_of, sentences, sentence_vectors)
    return Synthetic(chunks, vectors, contents, files, article_ids)


def noisy_copies(vectors: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Each vector plus Gaussian noise of norm about ``noise``, renormalised (in place)."""
    scale = np.float32(noise / np.sqrt(vectors.shape[1]))
    for start in range(0, len(vectors), VECTOR_BATCH):
        batch = vectors[start : start + VECTOR_BATCH]
        batch += rng.standard_normal(batch.shape, dtype=np.float32) * scale
        batch /= np.linalg.norm(batch, axis=1, keepdims=True)
    return vectors


def calibrate(queries: np.ndarray, vectors: np.ndarray, matches: int) -> Calibration:
    """The bar at which the median query matches ``matches`` passages (exact cosines), and
    what the server's default bars give over the same vectors."""
    depth = max(1, min(matches, len(vectors)))
    best = np.full((len(queries), depth), -np.inf, dtype=np.float32)
    at_default = np.zeros(len(queries), dtype=np.int64)
    for start in range(0, len(vectors), SCORE_BATCH):
        scores = queries @ vectors[start : start + SCORE_BATCH].T
        at_default += (scores >= DEFAULT_MATCH_THRESHOLD).sum(axis=1)
        scores = np.concatenate([best, scores], axis=1)
        best = -np.partition(-scores, depth - 1, axis=1)[:, :depth]
    kth = best.min(axis=1)
    bar = round(float(np.median(kth)), 4) if matches else None
    at_bar = (best >= bar).sum(axis=1) if bar is not None else at_default
    return Calibration(
        bar=bar,
        median_matches_at_bar=float(np.median(at_bar)),
        gate_share=round(float(np.mean(best.max(axis=1) >= DEFAULT_NO_MATCH_THRESHOLD)), 3),
        median_matches_at_default=float(np.median(at_default)),
    )


def scale_queries(seed: int) -> list[str]:
    """The dev sets' queries and every SciFact query: distinct, shuffled once."""
    distinct = benchmark_queries(every_scifact_query=True)
    random.Random(seed).shuffle(distinct)
    return distinct


def write(root: Path, corpus: Synthetic, embedder: Embedder) -> dict[str, Any]:
    """Write and publish the corpus's snapshot under ``root``; what it took and holds."""
    store = IndexStore(root)
    embedder.write_onnx(store.model_file(embedder.fingerprint))  # what servers encode with
    spec = index_for(Settings(), len(corpus.chunks))  # what a default build picks
    manifest = Manifest(
        snapshot_id=new_snapshot_id(), model_name=embedder.name,
        model_fingerprint=embedder.fingerprint, dimension=int(corpus.vectors.shape[1]),
        chunking=asdict(ChunkingParams(max_tokens=embedder.max_tokens, embed_title=False)),
        index_type=spec.type, index_params=dict(spec.params), files=corpus.files,
        articles=len(corpus.article_ids), chunks=len(corpus.chunks),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"), corpus=NOTE,
    )  # fmt: skip
    started = time.perf_counter()
    store.write_snapshot(manifest, corpus.chunks, corpus.vectors, corpus.contents)
    store.publish(manifest.snapshot_id)
    write_s = time.perf_counter() - started
    directory = root / "snapshots" / manifest.snapshot_id
    sizes = {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}
    return {
        "index": {"type": spec.type, "params": dict(spec.params)},
        "write_s": round(write_s, 1),
        "disk_mb": round(sum(sizes.values()) / 1e6, 1),
        "files_mb": {name: round(size / 1e6, 1) for name, size in sizes.items()},
    }


def progress(message: str) -> None:
    print(f"bench_scale: {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def send(client: httpx.Client, shape: Shape, query: str, article: str) -> httpx.Response:
    params = {**shape.params, **({"q": query} if shape.query else {})}
    return client.get(shape.path.format(article=article), params=params)


def record(samples: Samples, client: httpx.Client, shape: Shape, query: str, article: str) -> None:
    started = time.perf_counter()
    response = send(client, shape, query, article)
    took = time.perf_counter() - started
    if response.status_code != 200:
        samples.errors[response.status_code] += 1
        return
    samples.seconds.append(took)
    samples.stages.append(parse_server_timing(response.headers.get("server-timing", "")))
    if shape.path == "/search":
        samples.totals.append(int(response.json()["total"]))


@dataclass
class Served:
    """One size's running server and what it is asked about."""

    count: int
    url: str
    process: subprocess.Popen[bytes]
    articles: list[str]  # article ids spread across the snapshot, for /similar
    startup_s: float
    samples: dict[str, Samples] = field(default_factory=dict)


@contextlib.contextmanager
def servers(
    roots: Mapping[int, Path],
    articles: Mapping[int, list[str]],
    environments: Mapping[int, dict[str, str]],
    workers: int,
) -> Iterator[list[Served]]:
    """Every size's ``python -m search_api``, started one after another (each timed until
    healthy) and all stopped at the end."""
    extra = ["--workers", str(workers)] if workers > 1 else []
    with contextlib.ExitStack() as stack:
        running = []
        for count, root in roots.items():
            started = time.perf_counter()
            url, process = stack.enter_context(
                server_process(root, *extra, env=environments[count])
            )
            running.append(
                Served(count, url, process, articles[count], time.perf_counter() - started)
            )
        yield running


def measure(running: list[Served], queries: Sequence[str], seconds: float) -> int:
    """Send every request shape to every server in turn, each shape its own queries, until
    the queries or ``seconds`` run out; returns the rounds sent."""
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=s.url, timeout=60)) for s in running]
        for served, client in zip(running, clients, strict=True):
            served.samples = {shape.name: Samples() for shape in SHAPES}
            for number in range(WARM_UP):
                for shape in SHAPES:
                    article = served.articles[-1 - number]
                    send(
                        client, shape, f"warm-up {shape.name} {number}", article
                    ).raise_for_status()
        with_query = sum(shape.query for shape in SHAPES)
        deadline = time.monotonic() + seconds
        next_query = iter(queries)
        rounds = 0
        while rounds < len(queries) // with_query and time.monotonic() < deadline:
            for shape in SHAPES:
                query = next(next_query) if shape.query else ""
                for served, client in zip(running, clients, strict=True):
                    article = served.articles[rounds % len(served.articles)]
                    record(served.samples[shape.name], client, shape, query, article)
            rounds += 1
    return rounds


def memory(served: Served, workers: int) -> dict[str, Any]:
    """PSS per worker (the server itself with one) and in total, MiB, after the load."""
    processes = process_tree(served.process.pid)
    found = {pid: memory_mib(pid) for pid in processes}
    per_worker = [m["pss"] for pid, m in found.items() if workers == 1 or is_worker(pid)]
    return {
        "pss_per_worker_mib": per_worker,
        "pss_total_mib": round(sum(m["pss"] for m in found.values()), 1),
    }


def summarise(samples: Samples) -> dict[str, Any]:
    result: dict[str, Any] = {"requests": len(samples.seconds), "errors": dict(samples.errors)}
    if samples.seconds:
        result.update(summary_ms(samples.seconds))
    if samples.totals:
        result["median_total"] = statistics.median(samples.totals)
    if any(samples.stages):  # searches (the other routes send no Server-Timing)
        result["stages_p50_ms"] = stage_p50s(samples.stages)
    return result


def spread(items: Sequence[str], count: int) -> list[str]:
    """``count`` items spread evenly over ``items``."""
    step = max(1, len(items) // max(count, 1))
    return list(items[::step][:count])


def bench(args: argparse.Namespace) -> int:
    sizes = sorted({int(size) for size in args.sizes.split(",") if size})
    real, _ = real_embeddings(args.cache)
    noise = median_neighbour_distance(real)
    books = library(args.bbc, len(real))
    embedder = Embedder(model_file=IndexStore(args.cache / "models").model_file, export=True)
    queries = scale_queries(args.seed)
    query_vectors = embedder.encode(queries).astype(np.float32)
    with contextlib.ExitStack() as stack:
        work = args.work or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-", dir="/tmp"))
        )
        results: dict[int, dict[str, Any]] = {}
        roots, articles, environments = {}, {}, {}
        for count in sizes:
            root = work / f"index-{count}"
            shutil.rmtree(root, ignore_errors=True)
            started = time.perf_counter()
            corpus = generate(books, real, noise, count, args.sentence_share, args.seed)
            generate_s = time.perf_counter() - started
            calibration = calibrate(query_vectors, corpus.vectors, args.matches)
            written = write(root, corpus, embedder)
            results[count] = {
                "passages": count, "articles": len(corpus.article_ids),
                "sentences": len(corpus.contents.sentences),
                "generate_s": round(generate_s, 1), **written,
                "generator_peak_rss_mib": peak_rss_mib(),
                "calibration": calibration.to_dict(),
            }  # fmt: skip
            roots[count] = root
            articles[count] = spread(corpus.article_ids, len(queries))
            environments[count] = (
                {}
                if calibration.bar is None
                else {"SEEDSEARCH_NO_MATCH_THRESHOLD": "0",
                      "SEEDSEARCH_MATCH_THRESHOLD": str(calibration.bar)}
            )  # fmt: skip
            progress(f"{count:,} passages: {json.dumps(results[count])}")
            del corpus
        with servers(roots, articles, environments, args.workers) as running:
            progress("servers healthy; sending requests")
            rounds = measure(running, queries, args.seconds)
            for served in running:
                results[served.count].update(
                    startup_s=round(served.startup_s, 1), **memory(served, args.workers),
                    requests={name: summarise(s) for name, s in served.samples.items()},
                )  # fmt: skip
    smallest, largest = results[sizes[0]], results[sizes[-1]]
    ratio = round(
        largest["requests"]["hybrid"]["p50_ms"] / smallest["requests"]["hybrid"]["p50_ms"], 2
    )
    summary = {
        "queries": len(queries), "rounds": rounds, "workers": args.workers,
        "matches": args.matches, "noise_norm": round(noise, 4),
        f"hybrid_p50_{sizes[-1]}_over_{sizes[0]}": ratio, "sizes": list(results.values()),
    }  # fmt: skip
    if not args.json:
        print_table("bench_scale", table(summary, sizes, ratio))
    print(json.dumps(summary))
    return 0


def _ms(summary: Mapping[str, Any]) -> str:
    if "p50_ms" not in summary:
        return f"no answers ({summary['errors']})"
    errors = f"  errors {summary['errors']}" if summary["errors"] else ""
    total = f"  median total {summary['median_total']:g}" if "median_total" in summary else ""
    return f"p50 {summary['p50_ms']:8.2f} ms  p99 {summary['p99_ms']:8.2f} ms{total}{errors}"


def table(summary: Mapping[str, Any], sizes: Sequence[int], ratio: float) -> list[tuple[str, str]]:
    rows = [("requests", f"{summary['queries']} distinct queries, {summary['rounds']} rounds of "
             f"every shape at every size, 1 client, {summary['workers']} worker(s)")]  # fmt: skip
    for size in summary["sizes"]:
        calibration = size["calibration"]
        bar = calibration["bar"]
        matching = (
            f"served with bar {bar} and no gate (median {calibration['median_matches_at_bar']:g}"
            " exact matches);"
            if bar is not None
            else "served with the server's own bars;"
        )
        label = f"{size['passages']:,} passages"
        rows += [
            (label, f"{size['index']['type']} {json.dumps(size['index']['params'])}, "
             f"{size['articles']:,} articles, {size['sentences']:,} sentence vectors"),
            ("  snapshot", f"generated in {size['generate_s']} s, written and published in "
             f"{size['write_s']} s, {size['disk_mb']} MB on disk "
             f"({', '.join(f'{n} {mb}' for n, mb in size['files_mb'].items())}); "
             f"generator peak RSS {size['generator_peak_rss_mib']} MiB"),
            ("  matching", f"{matching} at the server's own bars {calibration['gate_share']:.0%} "
             f"of queries pass the gate, median {calibration['median_matches_at_default']:g} "
             "passages at 0.25"),
            ("  server", f"healthy in {size['startup_s']} s; PSS per worker "
             f"{', '.join(map(str, size['pss_per_worker_mib']))} MiB, total "
             f"{size['pss_total_mib']} MiB"),
            *((f"  {name}", _ms(found)) for name, found in size["requests"].items()),
        ]  # fmt: skip
        stages = size["requests"]["hybrid"].get("stages_p50_ms")
        if stages:
            rows.append(("  hybrid stages p50 (ms)",
                         ", ".join(f"{name} {ms:.2f}" for name, ms in stages.items())))  # fmt: skip
    rows.append((f"hybrid p50 {sizes[-1]:,} / {sizes[0]:,}", f"{ratio:.2f}   (goal <= 3)"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="passages per snapshot")
    parser.add_argument(
        "--matches", type=int, default=300,
        help="passages the median query matches (sets each server's bar; 0: the server's own)",
    )  # fmt: skip
    parser.add_argument("--sentence-share", type=float, default=0.1,
                        help="share of passages with sentence rows and vectors")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--seconds", type=float, default=900, help="longest time sending requests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bbc", type=Path, default=BBC, help="the BBC corpus folder")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ann-cache"),
                        help="where the BBC paragraph vectors are cached (as bench_ann's)")  # fmt: skip
    parser.add_argument("--work", type=Path, help="keep the index roots here (default: a "
                        "temporary folder, removed at the end)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    if args.matches < 0 or not 0 <= args.sentence_share <= 1:
        parser.error("--matches must be >= 0 and --sentence-share within 0-1")
    return run_command(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
