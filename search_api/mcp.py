"""The archive for AI assistants over MCP (the Model Context Protocol): the tools ``search``
and ``fetch`` that assistant connectors expect, over stdio (``python -m search_api.mcp``) or
over stateless streamable HTTP at ``/mcp`` on the server.

Both transports answer through a ``Searcher``: stdio over the live snapshot of ``--index``,
HTTP over the server's leased live searcher, behind the read key like ``/search``.
"""

from __future__ import annotations

import os

# Before any model code is imported: MCP clients start this module with a bare environment,
# and no machine it runs on reaches a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from indexer.errors import SeedsearchError, run_command
from indexer.settings import Settings, settings_from_flags
from search_api.client import local_searcher
from search_api.feed import article_url
from search_api.models import (
    MAX_K,
    MAX_QUERY_CHARS,
    Article,
    Filters,
    SearchRequest,
    SearchResult,
    StrList,
)
from search_api.routes import reader
from search_api.searcher import Searcher

MCP_PATH = "/mcp"
SearcherLease = Callable[[], AbstractContextManager[Searcher]]
INSTRUCTIONS = (
    "A news archive. `search` finds the articles that answer a question (one result per "
    "article, with its best passage); `fetch` reads a whole article by the id search gave."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class SearchFilters(BaseModel):
    """Keep only articles from these sources (paths under seeds/) and published within these
    dates (inclusive; undated articles drop out when either is set)."""

    model_config = ConfigDict(extra="forbid")

    source: StrList | None = None
    # Strings here: ``Filters`` checks them, so MCP and HTTP refuse the same dates alike.
    date_from: str | None = Field(
        default=None, description="YYYY-MM-DD, inclusive", json_schema_extra={"format": "date"}
    )
    date_to: str | None = Field(
        default=None, description="YYYY-MM-DD, inclusive", json_schema_extra={"format": "date"}
    )


class SearchHit(BaseModel):
    """One article that answers the query, shown by its best passage."""

    id: str = Field(description="the article's id, for fetch")
    title: str
    text: str = Field(description="the article's passage that answers the query best")
    url: str = Field(description="the article on the search page")
    published: str | None = Field(description="YYYY-MM-DD; null when undated")


class SearchHits(BaseModel):
    results: list[SearchHit] = Field(description="the most relevant article first")


class ArticleMetadata(BaseModel):
    source: str = Field(description="the file under seeds/ the article comes from")
    passages: int = Field(description="how many passages the text joins")


class ArticleDocument(BaseModel):
    """A whole article: its passages in reading order, joined by blank lines."""

    id: str
    title: str
    text: str
    url: str
    published: str | None = Field(description="YYYY-MM-DD; null when undated")
    metadata: ArticleMetadata


Query = Annotated[
    str,
    Field(
        min_length=1, max_length=MAX_QUERY_CHARS,
        description=f"a question or topic in natural language, 1-{MAX_QUERY_CHARS} characters",
    ),
]  # fmt: skip
ResultCount = Annotated[int, Field(ge=1, le=MAX_K, description=f"articles to return, 1-{MAX_K}")]
ArticleId = Annotated[str, Field(description="an article's id, as search returned it")]


def page_base(context: Context[Any, Any], settings: Settings) -> str:
    """Where the search page is: the configured public address, else the address the HTTP
    request came to, else (stdio) the configured host and port."""
    if settings.public_base_url:
        return settings.public_base_url
    request = context.request_context.request
    if isinstance(request, Request):
        return str(request.base_url)
    return f"http://{settings.host}:{settings.port}"


def search_request(query: str, k: int, filters: SearchFilters | None) -> SearchRequest:
    """The service's request for the tool's arguments: one passage per article."""
    chosen = filters.model_dump(exclude_none=True) if filters else {}
    return SearchRequest(
        query=query, k=k, filters=Filters.model_validate(chosen), collapse=True, highlight=False
    )


def search_hits(results: list[SearchResult], base: str) -> SearchHits:
    """The tool's answer for collapsed results: one hit per article."""
    return SearchHits(
        results=[
            SearchHit(
                id=result.article_id, title=result.title, text=result.text,
                url=article_url(base, result.article_id), published=result.published,
            )
            for result in results
        ]
    )  # fmt: skip


def article_document(article: Article, base: str) -> ArticleDocument:
    """The tool's answer for an article: its passages joined into one text."""
    return ArticleDocument(
        id=article.article_id, title=article.title,
        text="\n\n".join(passage.text for passage in article.passages),
        url=article_url(base, article.article_id), published=article.published,
        metadata=ArticleMetadata(source=article.source, passages=len(article.passages)),
    )  # fmt: skip


@contextlib.contextmanager
def answering(lease: SearcherLease) -> Iterator[Searcher]:
    """A leased Searcher; the service's errors become tool errors the assistant can read."""
    try:
        with lease() as searcher:
            yield searcher
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        raise ToolError(f"invalid arguments: {problems}") from None
    except SeedsearchError as error:  # no snapshot yet, a query past the time limit
        raise ToolError(str(error)) from None


def create_mcp_server(lease: SearcherLease, settings: Settings) -> MCPServer:
    """The MCP server whose tools answer through the Searcher ``lease`` hands out."""
    # WARNING: the SDK configures the root logger with this level when none is configured.
    server = MCPServer(
        "seedsearch", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING"
    )

    def search(
        query: Query,
        context: Context[Any, Any],
        k: ResultCount = 10,
        filters: SearchFilters | None = None,
    ) -> SearchHits:
        """Search the news archive: the articles that answer the query, most relevant first,
        each with the passage that answers best."""
        with answering(lease) as searcher:
            request = search_request(query, k, filters)
            response = searcher.search(request)
        return search_hits(response.results, page_base(context, settings))

    def fetch(id: ArticleId, context: Context[Any, Any]) -> ArticleDocument:
        """Read a whole article by the id search returned: its text, date and source."""
        with answering(lease) as searcher:
            article = searcher.article(id)
            snapshot = searcher.snapshot.id
        if article is None:
            raise ToolError(f"no article {id!r} in the archive (snapshot {snapshot})")
        return article_document(article, page_base(context, settings))

    server.add_tool(search, annotations=READ_ONLY)
    server.add_tool(fetch, annotations=READ_ONLY)
    return server


def _lease_in(app: FastAPI) -> SearcherLease:
    """The app's live Searcher, within one of its search slots (as a ``/search`` request)."""

    @contextlib.contextmanager
    def lease() -> Iterator[Searcher]:
        slots: threading.BoundedSemaphore = app.state.search_slots
        if not slots.acquire(blocking=False):
            raise ToolError("too many searches in flight; retry in a second")
        try:
            with app.state.live.lease() as searcher:
                yield searcher
        finally:
            slots.release()

    return lease


class _KeyedEndpoint:
    """The MCP endpoint behind the read key, as ``/search`` is (401 without it)."""

    def __init__(self, sessions: StreamableHTTPSessionManager, settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # HTTPException: the app's own handler answers, as for every route.
        await reader(self._settings, Headers(scope=scope).get("x-api-key"))
        await self._sessions.handle_request(scope, receive, send)


def mount_mcp(app: FastAPI, settings: Settings) -> StreamableHTTPSessionManager:
    """Serve MCP at ``/mcp`` on ``app``; the app's lifespan must run the returned manager.

    Stateless: no session outlives a request, so any worker of ``--workers N`` answers."""
    server = create_mcp_server(_lease_in(app), settings)
    # Only for its session manager (and the SDK's Host/Origin checks for a loopback host):
    # the route below serves it at /mcp exactly, where a Mount would redirect to /mcp/.
    server.streamable_http_app(stateless_http=True, host=settings.host)
    sessions = server.session_manager
    app.router.routes.append(Route(MCP_PATH, _KeyedEndpoint(sessions, settings)))
    return sessions


def serve_stdio(settings: Settings) -> int:
    """Answer MCP on stdin and stdout until the client closes them; logs go to stderr."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s"
    )
    with contextlib.ExitStack() as stack:
        # stdout carries MCP messages only: whatever loading the model prints goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            searcher = stack.enter_context(local_searcher(settings))
        create_mcp_server(lambda: contextlib.nullcontext(searcher), settings).run("stdio")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m search_api.mcp",
        description="Serve the archive's search and fetch tools to an MCP client over stdio.",
    )
    parser.add_argument("--index", type=Path, help="index root (default: var/index)")
    parser.add_argument("--model", help="local sentence-transformers folder (default: packaged)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(
        lambda: serve_stdio(settings_from_flags(index_dir=args.index, model=args.model))
    )


if __name__ == "__main__":
    sys.exit(main())
