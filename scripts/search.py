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

from indexer.errors import UsageError, run_command
from indexer.settings import settings_from_flags
from search_api.client import open_search
from search_api.models import DEFAULT_MODE, MAX_K, MODES, SearchRequest, SearchResponse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Print the passages that best answer a query.")
    parser.add_argument("query", help="what to look for, in plain words")
    parser.add_argument("-k", type=int, default=5, help=f"how many passages (1-{MAX_K}, default 5)")
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE)
    parser.add_argument("--json", action="store_true", help="print the API's JSON result shape")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--index", type=Path, help="index root (default: var/index)")
    where.add_argument("--api", metavar="URL", help="ask a running service instead")
    return parser


def format_response(response: SearchResponse) -> str:
    if not response.results:
        return f"{response.note or 'no passages match'}: {response.query!r}"
    blocks = []
    for result in response.results:
        heading = f"{result.rank}. {result.title}"
        where = f"   {result.source} · {result.kind} {result.position} · score {result.score:.3f}"
        body = textwrap.fill(result.text, width=100, initial_indent="   ", subsequent_indent="   ")
        blocks.append(f"{heading}\n{where}\n{body}")
    footer = f"({len(response.results)} results, {response.mode}, {response.took_ms:.0f} ms, snapshot {response.snapshot})"
    return "\n\n".join([*blocks, footer])


def search(args: argparse.Namespace) -> int:
    try:
        request = SearchRequest(query=args.query, k=args.k, mode=args.mode)
    except ValidationError as error:
        raise UsageError(error.errors()[0]["msg"]) from None
    settings = settings_from_flags(index_dir=args.index)
    with open_search(settings, args.api) as run_search:
        response = run_search(request)
    print(response.model_dump_json(indent=2) if args.json else format_response(response))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: search(args))


if __name__ == "__main__":
    sys.exit(main())
