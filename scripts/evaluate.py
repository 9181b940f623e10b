"""Measure retrieval quality: the one source of the project's quality figures.

Labelled passages (JSONL of {"query", "relevant": [strings a relevant passage contains]}):
    python scripts/evaluate.py --queries ../shared/eval/seed_dev_queries.jsonl [--off-topic FILE]
                               [--mode hybrid|dense|lexical|all] [--index DIR | --api URL [--api-key KEY]] [--json]
    -> MRR@10 and recall@1/5/10 per mode, with the queries that found nothing; with
       --off-topic, the precision and recall of the "no good match" answer. --json prints
       every figure of the table, one object per mode.

BEIR-style folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), ranked per document:
    python scripts/evaluate.py --beir ../shared/corpora/scifact [--split test] [--mode ...]
    -> nDCG@10, recall@100 and MRR@10. The corpus is written as seed files under
       var/eval/beir-<name>/ and indexed there (incrementally) unless --api is given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from indexer.build import build_index
from indexer.errors import UsageError, run_command
from indexer.settings import settings_from_flags
from indexer.store import IndexStore
from search_api.beir import (
    BeirQuery,
    check_beir_index,
    corpus_label,
    document_id,
    load_beir_queries,
    ndcg_at,
    recall_at,
    reciprocal_rank,
    write_beir_seeds,
)
from search_api.client import SearchFunction, open_search
from search_api.evaluation import (
    CUTOFFS,
    LabelledQuery,
    Report,
    judge,
    load_queries,
    summarize,
)
from search_api.models import MAX_K, MODES, Mode, SearchRequest

ROOT = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--queries", type=Path, help="JSONL: query, relevant")
    what.add_argument("--beir", type=Path, metavar="DIR", help="a BEIR-style benchmark folder")
    parser.add_argument("--split", default="test", help="qrels split for --beir (default: test)")
    parser.add_argument(
        "--off-topic", type=Path, metavar="FILE",
        help="queries no article answers, one a line: measures the 'no good match' decision",
    )  # fmt: skip
    parser.add_argument("--mode", choices=[*MODES, "all"], default="all")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--index", type=Path, help="index root (default: var/index)")
    where.add_argument("--api", metavar="URL", help="evaluate a running service instead")
    parser.add_argument(
        "--api-key",
        help="X-API-Key for --api (default: SEEDSEARCH_READ_KEY, else SEEDSEARCH_API_KEY)",
    )
    return parser


def format_table(reports: list[Report]) -> str:
    header = "| mode | MRR@10 | " + " | ".join(f"recall@{k}" for k in CUTOFFS) + " |"
    lines = [header, "|---" * (2 + len(CUTOFFS)) + "|"]
    for r in reports:
        cells = " | ".join(f"{r.recall[k]:.3f}" for k in CUTOFFS)
        lines.append(f"| {r.mode} | {r.mrr_at_10:.3f} | {cells} |")
    for r in reports:
        line = f"{r.mode}: {r.no_match} of {r.queries} labelled queries answered 'no good match'"
        if r.off_topic:
            line += (
                f"; {r.off_topic_no_match} of {r.off_topic} off-topic queries"
                f" (precision {r.no_match_precision}, recall {r.no_match_recall})"
            )
        lines.append(line)
    for r in reports:
        if r.missed:
            lines.append(f"{r.mode}: no relevant passage in the top 10 for {r.missed}")
    return "\n".join(lines)


def format_beir_table(reports: list[dict[str, object]]) -> str:
    lines = ["| mode | nDCG@10 | recall@100 | MRR@10 |", "|---|---|---|---|"]
    for r in reports:
        lines.append(
            f"| {r['mode']} | {r['ndcg_at_10']:.3f} | {r['recall_at_100']:.3f} | {r['mrr_at_10']:.3f} |"
        )
    return "\n".join(lines)


def evaluate_passages(
    queries: list[LabelledQuery],
    search: SearchFunction,
    modes: tuple[Mode, ...],
    off_topic: list[str],
) -> list[Report]:
    reports = []
    for mode in modes:
        responses = [search(SearchRequest(query=q.query, k=10, mode=mode)) for q in queries]
        unanswered = [search(SearchRequest(query=q, k=10, mode=mode)) for q in off_topic]
        report = summarize(
            mode, [judge(q, r.results) for q, r in zip(queries, responses, strict=True)]
        )
        report.no_match = sum(r.note is not None for r in responses)
        report.off_topic = len(off_topic)
        report.off_topic_no_match = sum(r.note is not None for r in unanswered)
        reports.append(report)
    return reports


def load_off_topic(path: Path | None) -> list[str]:
    """Queries no article answers, one a line (blank lines skipped)."""
    if path is None:
        return []
    try:
        return [
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None


def evaluate_beir(
    queries: list[BeirQuery], search: SearchFunction, modes: tuple[Mode, ...]
) -> list[dict[str, object]]:
    reports: list[dict[str, object]] = []
    for mode in modes:
        ndcg, recall, rr = [], [], []
        for query in queries:
            request = SearchRequest(
                query=query.text, k=MAX_K, mode=mode, collapse=True, highlight=False
            )
            ranked = [document_id(r.source) for r in search(request).results]
            ndcg.append(ndcg_at(ranked, query.relevant, 10))
            recall.append(recall_at(ranked, query.relevant, 100))
            rr.append(reciprocal_rank(ranked, query.relevant, 10))
        reports.append({
            "mode": mode, "queries": len(queries), "ndcg_at_10": round(statistics.fmean(ndcg), 4),
            "recall_at_100": round(statistics.fmean(recall), 4), "mrr_at_10": round(statistics.fmean(rr), 4),
        })  # fmt: skip
    return reports


def prepare_beir_index(folder: Path, index: Path | None) -> Path:
    """Write the corpus as seed files and build (or refresh) its index; returns the index root.

    An explicit ``index`` must be empty or built from this folder before: never someone's
    live index."""
    if index is not None:
        check_beir_index(IndexStore(index), folder)
    home = ROOT / "var" / "eval" / f"beir-{folder.resolve().name}"
    seeds = home / "seeds"
    print(f"writing {write_beir_seeds(folder, seeds)} documents to {seeds}", file=sys.stderr)
    settings = settings_from_flags(seeds_dir=seeds, index_dir=index or home / "index")
    build_index(settings, progress=sys.stderr.isatty(), corpus_label=corpus_label(folder))
    return settings.index_dir


def evaluate(args: argparse.Namespace) -> int:
    modes = MODES if args.mode == "all" else (args.mode,)
    # Read the labels before opening the index, so a bad file is reported as such.
    queries = load_queries(args.queries) if args.queries else []
    beir_queries = load_beir_queries(args.beir, args.split) if args.beir else []
    index = args.index
    if args.beir and not args.api:
        index = prepare_beir_index(args.beir, args.index)
    settings = settings_from_flags(index_dir=index)
    with open_search(settings, args.api, args.api_key) as search:
        if args.beir:
            beir_reports = evaluate_beir(beir_queries, search, modes)
            print(
                json.dumps(beir_reports, indent=2) if args.json else format_beir_table(beir_reports)
            )
        else:
            reports = evaluate_passages(queries, search, modes, load_off_topic(args.off_topic))
            print(
                json.dumps([r.as_json() for r in reports], indent=2)
                if args.json
                else format_table(reports)
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: evaluate(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
