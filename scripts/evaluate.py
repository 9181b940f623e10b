"""Measure retrieval quality on a labelled query set: MRR@10 and recall@1/5/10.

python scripts/evaluate.py --queries ../shared/eval/seed_dev_queries.jsonl
                           [--mode hybrid|dense|lexical|all] [--index DIR | --api URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from indexer.settings import ConfigurationError, settings_from_flags
from search_api.client import SearchClientError, search_function
from search_api.evaluation import CUTOFFS, Report, judge, load_queries, summarize
from search_api.models import Mode, SearchRequest

MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=Path, required=True, help="JSONL: query, relevant")
    parser.add_argument("--mode", choices=[*MODES, "all"], default="all")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--index", type=Path, help="index root (default: var/index)")
    where.add_argument("--api", metavar="URL", help="evaluate a running service instead")
    return parser


def format_table(reports: list[Report]) -> str:
    header = "| mode | MRR@10 | " + " | ".join(f"recall@{k}" for k in CUTOFFS) + " |"
    lines = [header, "|---" * (2 + len(CUTOFFS)) + "|"]
    for r in reports:
        cells = " | ".join(f"{r.recall[k]:.3f}" for k in CUTOFFS)
        lines.append(f"| {r.mode} | {r.mrr_at_10:.3f} | {cells} |")
    for r in reports:
        if r.missed:
            lines.append(f"{r.mode}: no relevant passage in the top 10 for {r.missed}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        queries = load_queries(args.queries)
    except (OSError, ValueError) as error:
        print(f"error: cannot read queries from {args.queries}: {error}", file=sys.stderr)
        return 2
    try:
        settings = settings_from_flags(index_dir=args.index)
        search = search_function(settings.index_dir, args.api, settings.model)
        reports = []
        for mode in MODES if args.mode == "all" else (args.mode,):
            outcomes = [
                judge(q, search(SearchRequest(query=q.query, k=10, mode=mode)).results)
                for q in queries
            ]
            reports.append(summarize(mode, outcomes))
    except (SearchClientError, ConfigurationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        json.dumps([asdict(r) for r in reports], indent=2) if args.json else format_table(reports)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
