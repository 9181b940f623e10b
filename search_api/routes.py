"""HTTP routes. Every handler gets its state through ``Depends``; nothing is global."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from indexer.build import build_index
from indexer.errors import BuildError, BuildLockedError
from indexer.settings import Settings
from search_api.live import LiveSearcher, NotReadyError
from search_api.metrics import Metrics
from search_api.models import (
    DEFAULT_MODE,
    MAX_K,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    Article,
    Mode,
    SearchRequest,
    SearchResponse,
    Stats,
)
from search_api.searcher import Searcher

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter()


def live_searcher(request: Request) -> LiveSearcher:
    live: LiveSearcher = request.app.state.live
    return live


def current_searcher(live: Annotated[LiveSearcher, Depends(live_searcher)]) -> Iterator[Searcher]:
    """The Searcher this request runs on, leased until the request ends."""
    try:
        with live.lease() as searcher:
            yield searcher
    except NotReadyError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None


def settings(request: Request) -> Settings:
    configured: Settings = request.app.state.settings
    return configured


def metrics(request: Request) -> Metrics:
    registry: Metrics = request.app.state.metrics
    return registry


SearcherDep = Annotated[Searcher, Depends(current_searcher)]


def _validated(**fields: Any) -> SearchRequest:
    """Validate query parameters with the same model as the JSON body (same messages)."""
    try:
        return SearchRequest(**fields)
    except ValidationError as error:
        raise RequestValidationError(
            error.errors(include_url=False, include_context=False)
        ) from None


@router.get("/search", response_model=SearchResponse, summary="Search with query parameters")
def search_get(
    searcher: SearcherDep,
    q: Annotated[str, Query(description=f"the query, 1-{MAX_QUERY_CHARS} characters")],
    k: Annotated[int, Query(description=f"results to return, 1-{MAX_K}")] = 10,
    mode: Annotated[Mode, Query()] = DEFAULT_MODE,
    source: Annotated[list[str] | None, Query(description="only these source files")] = None,
    article_id: Annotated[list[str] | None, Query(description="only these articles")] = None,
    date_from: Annotated[str | None, Query(description="published on or after, YYYY-MM-DD")] = None,
    date_to: Annotated[str | None, Query(description="published on or before, YYYY-MM-DD")] = None,
    min_score: float | None = None,
    offset: Annotated[int, Query(description=f"results to skip, 0-{MAX_OFFSET}")] = 0,
    collapse: bool = False,
    dedupe: bool = True,
    highlight: bool = True,
    explain: bool = False,
) -> SearchResponse:
    filters = {"source": source, "article_id": article_id, "date_from": date_from,
               "date_to": date_to}  # fmt: skip
    request = _validated(
        query=q, k=k, mode=mode, filters=filters, min_score=min_score, offset=offset,
        collapse=collapse, dedupe=dedupe, highlight=highlight, explain=explain,
    )  # fmt: skip
    return searcher.search(request)


@router.post("/search", response_model=SearchResponse, summary="Search with a JSON body")
def search_post(body: SearchRequest, searcher: SearcherDep) -> SearchResponse:
    return searcher.search(body)


@router.get(
    "/healthz",
    summary="200 while a snapshot is served ('degraded' when CURRENT's was refused), 503 before",
)
def healthz(live: Annotated[LiveSearcher, Depends(live_searcher)]) -> dict[str, str]:
    try:
        health = live.health()
    except NotReadyError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None
    body = {"status": health.status, "snapshot": health.snapshot}
    return body | ({"reason": health.reason} if health.reason else {})


@router.get("/stats", response_model=Stats, summary="The live snapshot: id, counts, model")
def stats(searcher: SearcherDep) -> Stats:
    return searcher.stats()


@router.get(
    "/articles/{article_id}", response_model=Article, summary="An article's passages in order"
)
def article(article_id: str, searcher: SearcherDep) -> Article:
    found = searcher.article(article_id)
    if found is None:
        raise HTTPException(404, f"no article {article_id!r} in snapshot {searcher.snapshot.id}")
    return found


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus_metrics(registry: Annotated[Metrics, Depends(metrics)]) -> Response:
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.post("/admin/reindex", summary="Rebuild from the seeds folder and serve the result")
def reindex(
    configured: Annotated[Settings, Depends(settings)],
    live: Annotated[LiveSearcher, Depends(live_searcher)],
    x_api_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    if configured.api_key is None:
        raise HTTPException(403, "the admin API is disabled: set SEEDSEARCH_API_KEY to enable it")
    expected = configured.api_key.get_secret_value().encode()
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), expected):
        raise HTTPException(401, "missing or wrong X-API-Key header")
    try:
        # Never queue behind a running build: the caller gets a 409 and can retry.
        report = build_index(configured, embedder=live.embedder, wait_seconds=0)
    except BuildLockedError as error:
        raise HTTPException(409, str(error)) from None
    except BuildError as error:  # the server's seeds folder is missing or holds nothing usable
        raise HTTPException(500, f"rebuild failed: {error}") from None
    live.refresh()
    return report.to_dict()


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")
