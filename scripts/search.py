"""Search the seedsearch index from the command line.

python scripts/search.py "flood evacuations" [-k 5] [--mode hybrid] [--json]
                         [--index DIR | --api URL]
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from pydantic import ValidationError

from indexer.settings import ConfigurationError, settings_from_flags
from search_api.client import SearchClientError, search_function
from search_api.models import DEFAULT_MODE, MAX_K, SearchRequest, SearchResponse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Print the passages that best answer a query.")
    parser.add_argument("query", help="what to look for, in plain words")
    parser.add_argument("-k", type=int, default=5, help=f"how many passages (1-{MAX_K}, default 5)")
    parser.add_argument("--mode", choices=["hybrid", "dense", "lexical"], default=DEFAULT_MODE)
    parser.add_argument("--json", action="store_true", help="print the API's JSON result shape")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--index", type=Path, help="index root (default: var/index)")
    where.add_argument("--api", metavar="URL", help="ask a running service instead")
    return parser


def format_response(response: SearchResponse) -> str:
    if not response.results:
        return f"no passages match {response.query!r}"
    blocks = []
    for result in response.results:
        heading = f"{result.rank}. {result.title}"
        where = f"   {result.source} · {result.kind} {result.position} · score {result.score:.3f}"
        body = textwrap.fill(result.text, width=100, initial_indent="   ", subsequent_indent="   ")
        blocks.append(f"{heading}\n{where}\n{body}")
    footer = f"({len(response.results)} results, {response.mode}, {response.took_ms:.0f} ms, snapshot {response.snapshot})"
    return "\n\n".join([*blocks, footer])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        request = SearchRequest(query=args.query, k=args.k, mode=args.mode)
    except ValidationError as error:
        print(f"error: {error.errors()[0]['msg']}", file=sys.stderr)
        return 2
    try:
        settings = settings_from_flags(index_dir=args.index)
        response = search_function(settings.index_dir, args.api, settings.model)(request)
    except (SearchClientError, ConfigurationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(response.model_dump_json(indent=2) if args.json else format_response(response))
    return 0


if __name__ == "__main__":
    sys.exit(main())
