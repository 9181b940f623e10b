"""Search the seedsearch index from the command line.

python scripts/search.py "flood evacuations" [-k 5] [--mode hybrid] [--json]
                         [--date-from YYYY-MM-DD] [--date-to YYYY-MM-DD] [--all-duplicates]
                         [--newest | --recency DAYS] [--facets month,source,kind]
                         [--index DIR | --api URL [--api-key KEY]]

The sentence that best answers the query is marked **like this** (bold on a terminal).
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
from search_api.models import (
    DEFAULT_MODE,
    MAX_K,
    MODES,
    Evidence,
    FacetValue,
    SearchRequest,
    SearchResponse,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Print the passages that best answer a query.")
    parser.add_argument("query", help="what to look for, in plain words")
    parser.add_argument("-k", type=int, default=5, help=f"how many passages (1-{MAX_K}, default 5)")
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE)
    parser.add_argument("--date-from", metavar="YYYY-MM-DD", help="only articles published since")
    parser.add_argument("--date-to", metavar="YYYY-MM-DD", help="only articles published until")
    parser.add_argument(
        "--all-duplicates", action="store_true", help="list near-duplicate passages one by one"
    )
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--newest", action="store_true", help="newest matching passages first")
    order.add_argument(
        "--recency", type=float, metavar="DAYS", help="prefer newer passages (half-life in days)"
    )
    parser.add_argument(
        "--facets", metavar="NAMES", help="count the matches by month, source and/or kind"
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON result shape")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--index", type=Path, help="index root (default: var/index)")
    where.add_argument("--api", metavar="URL", help="ask a running service instead")
    parser.add_argument(
        "--api-key",
        help="X-API-Key for --api (default: SEEDSEARCH_READ_KEY, else SEEDSEARCH_API_KEY)",
    )
    return parser


# Private-use characters that stand for the evidence's start and end while the text is wrapped:
# they stick to their words, and become bold (or **) only afterwards.
_OPEN, _CLOSE = "\ue000", "\ue001"


def marked(text: str, spans: list[Evidence]) -> str:
    """``text`` with each evidence span between the private-use marks."""
    pieces, cursor = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        pieces += [text[cursor : span.start], _OPEN, text[span.start : span.end], _CLOSE]
        cursor = span.end
    return "".join([*pieces, text[cursor:]])


def format_response(response: SearchResponse, terminal: bool = False) -> str:
    if not response.results:
        return f"{response.note or 'no passages match'}: {response.query!r}"
    blocks = []
    for result in response.results:
        heading = f"{result.rank}. {result.title}"
        where = (
            f"   {result.published or 'date unknown'} · {result.source} · {result.kind}"
            f" {result.position} · score {result.score:.3f}"
        )
        opening, closing = ("\033[1m", "\033[0m") if terminal else ("**", "**")
        wrapped = textwrap.fill(marked(result.text, result.evidence), width=97,
                                initial_indent="   ", subsequent_indent="   ")  # fmt: skip
        body = wrapped.replace(_OPEN, opening).replace(_CLOSE, closing)
        if result.duplicates:
            body += (
                f"\n   (also published {result.duplicates} more time(s): "
                f"{', '.join(result.duplicate_sources)})"
            )
        blocks.append(f"{heading}\n{where}\n{body}")
    blocks += [format_facet(name, counts) for name, counts in (response.facets or {}).items()]
    at_least = "at least " if response.total_is_lower_bound else ""
    footer = (
        f"({len(response.results)} of {at_least}{response.total} results from "
        f"{response.total_articles} articles, {response.mode}, {response.took_ms:.0f} ms, "
        f"snapshot {response.snapshot})"
    )
    return "\n\n".join([*blocks, footer])


def format_facet(name: str, counts: list[FacetValue], shown: int = 10) -> str:
    """One line per facet; past ``shown`` values (months: the newest), how many more."""
    listed = counts[-shown:] if name == "month" else counts[:shown]
    more = f" (and {len(counts) - len(listed)} more)" if len(counts) > len(listed) else ""
    return f"{name}: " + ", ".join(f"{c.value} {c.count}" for c in listed) + more


def search(args: argparse.Namespace) -> int:
    try:
        request = SearchRequest.model_validate(
            {
                "query": args.query, "k": args.k, "mode": args.mode,
                "dedupe": not args.all_duplicates,
                "filters": {"date_from": args.date_from, "date_to": args.date_to},
                "sort": "date" if args.newest else "relevance",
                "recency_half_life_days": args.recency,
                "facets": args.facets.split(",") if args.facets else None,
            }
        )  # fmt: skip
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"] if part != "filters")
        raise UsageError(f"{where}: {problem['msg']}" if where else problem["msg"]) from None
    settings = settings_from_flags(index_dir=args.index)
    with open_search(settings, args.api, args.api_key) as run_search:
        response = run_search(request)
    if args.json:
        print(response.model_dump_json(indent=2))
    else:
        print(format_response(response, terminal=sys.stdout.isatty()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: search(args))


if __name__ == "__main__":
    sys.exit(main())
