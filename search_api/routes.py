"""HTTP routes. Every handler gets its state through ``Depends``; nothing is global."""

from __future__ import annotations

import secrets
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr, ValidationError

from indexer.errors import BuildLockedError, SeedsearchError, SnapshotError
from indexer.settings import Settings
from indexer.store import KEPT_JOBS
from search_api import feed
from search_api.errors import NotReadyError
from search_api.jobs import Rebuilds, ReindexJob
from search_api.live import LiveSearcher
from search_api.matching import FACETS
from search_api.metrics import Metrics
from search_api.models import (
    DEFAULT_MODE,
    MAX_FILTER_VALUES,
    MAX_HALF_LIFE_DAYS,
    MAX_K,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    MAX_SIMILAR,
    NOT_BLANK,
    Article,
    ErrorBody,
    Mode,
    SearchRequest,
    SearchResponse,
    SimilarArticles,
    Sort,
    Stats,
)
from search_api.searcher import Searcher
from search_api.timing import StageTimes

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter()


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Declared error answers: each one is ``ErrorBody``."""
    return {code: {"model": ErrorBody, "description": ERROR_MEANINGS[code]} for code in codes}


ERROR_MEANINGS = {
    400: "the body cannot be read as JSON text",
    401: "missing or wrong X-API-Key (the admin key, or for reads the read key)",
    403: "the admin API is disabled (no SEEDSEARCH_API_KEY)",
    404: "no such article in the live snapshot",
    409: "another build is running (from the command line or another server process)",
    413: "the request body is over 64 KiB",
    431: "the request headers are over 16 KiB",
    422: "invalid request; `detail` says what to fix",
    500: "unexpected failure (logged by the server)",
    503: "no snapshot can be served yet, or too many searches in flight (see Retry-After)",
}
SEARCH_ERRORS = _errors(401, 422, 431, 500, 503)
BODY_SEARCH_ERRORS = _errors(400, 401, 413, 422, 431, 500, 503)


# The dependencies below only look things up, so they are ``async``: FastAPI would run each
# plain one in its thread pool, a thread hop per dependency per request (docs/benchmarks.md).
async def live_searcher(request: Request) -> LiveSearcher:
    live: LiveSearcher = request.app.state.live
    return live


async def current_searcher(
    live: Annotated[LiveSearcher, Depends(live_searcher)],
) -> AsyncIterator[Searcher]:
    """The Searcher this request runs on, leased until the request ends."""
    try:
        with live.lease() as searcher:
            yield searcher
    except NotReadyError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None


async def settings(request: Request) -> Settings:
    configured: Settings = request.app.state.settings
    return configured


async def metrics(request: Request) -> Metrics:
    registry: Metrics = request.app.state.metrics
    return registry


def _matches(given: str | None, key: SecretStr | None) -> bool:
    """Constant-time comparison, so response times never hint at the key."""
    if given is None or key is None:
        return False
    return secrets.compare_digest(given.encode(), key.get_secret_value().encode())


async def reader(
    configured: Annotated[Settings, Depends(settings)],
    x_api_key: Annotated[str | None, Header(description="the read or admin key")] = None,
) -> None:
    """Open unless SEEDSEARCH_READ_KEY is set; then the read key or the admin key."""
    if configured.read_key is None:
        return
    if not (_matches(x_api_key, configured.read_key) or _matches(x_api_key, configured.api_key)):
        raise HTTPException(401, "missing or wrong X-API-Key header")


async def search_slot(request: Request) -> AsyncIterator[None]:
    """One of the process's search slots for this request, or 503 with Retry-After: past the
    bound, a burst is turned away at once instead of queueing until every request is slow."""
    slots: threading.BoundedSemaphore = request.app.state.search_slots
    if not slots.acquire(blocking=False):
        raise HTTPException(
            503, "too many searches in flight; retry in a second", headers={"Retry-After": "1"}
        )
    try:
        yield
    finally:
        slots.release()


async def current_reader_searcher(
    _: Annotated[None, Depends(reader)],
    __: Annotated[None, Depends(search_slot)],
    searcher: Annotated[Searcher, Depends(current_searcher)],
) -> Searcher:
    return searcher


SearcherDep = Annotated[Searcher, Depends(current_reader_searcher)]


def _validated(**fields: Any) -> SearchRequest:
    """Validate query parameters with the same model as the JSON body (same messages)."""
    try:
        return SearchRequest(**fields)
    except ValidationError as error:
        raise RequestValidationError(
            error.errors(include_url=False, include_context=False)
        ) from None


# The GET parameters are validated by SearchRequest (one set of messages for GET and POST);
# these declare the same rules in the OpenAPI schema.
_DATE = {"format": "date"}
_VALUES = {"minItems": 1, "maxItems": MAX_FILTER_VALUES}
# One facet name, or several separated by commas.
FACET_LIST = "^({names})(,({names}))*$".format(names="|".join(FACETS))
# The parameters /search and /feed share.
QueryText = Annotated[
    str,
    Query(
        description=(
            f"the query, 1-{MAX_QUERY_CHARS} characters, not blank; "
            '"a phrase" must be in a passage\'s text, -word must not (docs/api.md)'
        ),
        json_schema_extra={"minLength": 1, "maxLength": MAX_QUERY_CHARS, "pattern": NOT_BLANK},
    ),
]
SourceFilter = Annotated[
    list[str],
    Query(description="only these source files (repeat for several)", json_schema_extra=_VALUES),
]
DateFrom = Annotated[
    str | None,
    Query(
        description="published on or after, YYYY-MM-DD (after date_to: nothing matches)",
        json_schema_extra=_DATE,
    ),
]
DateTo = Annotated[
    str | None, Query(description="published on or before, YYYY-MM-DD", json_schema_extra=_DATE)
]


@router.get(
    "/search", response_model=SearchResponse, summary="Search with query parameters",
    responses=SEARCH_ERRORS,
)  # fmt: skip
def search_get(
    searcher: SearcherDep,
    q: QueryText,
    k: Annotated[
        int,
        Query(
            description=f"results to return, 1-{MAX_K}",
            json_schema_extra={"minimum": 1, "maximum": MAX_K},
        ),
    ] = 10,
    mode: Annotated[Mode, Query()] = DEFAULT_MODE,
    source: SourceFilter = [],  # noqa: B006 - FastAPI copies parameter defaults per request
    article_id: Annotated[
        list[str],
        Query(description="only these articles (repeat for several)", json_schema_extra=_VALUES),
    ] = [],  # noqa: B006 - FastAPI copies parameter defaults per request
    date_from: DateFrom = None,
    date_to: DateTo = None,
    min_score: float | None = None,
    offset: Annotated[
        int,
        Query(
            description=f"results to skip, 0-{MAX_OFFSET}",
            json_schema_extra={"minimum": 0, "maximum": MAX_OFFSET},
        ),
    ] = 0,
    collapse: bool = False,
    dedupe: bool = True,
    highlight: bool = True,
    explain: bool = False,
    sort: Annotated[Sort, Query(description="relevance, or date: newest first")] = "relevance",
    recency_half_life_days: Annotated[
        float | None,
        Query(
            description="prefer newer passages: half-life of the preference in days",
            json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_HALF_LIFE_DAYS},
        ),
    ] = None,
    facets: Annotated[
        list[str],
        Query(
            description="count the results by month, source and/or kind: repeat the "
            "parameter (facets=month&facets=source) or separate by commas (facets=month,source)",
            json_schema_extra={"items": {"type": "string", "pattern": FACET_LIST}},
        ),
    ] = [],  # noqa: B006 - FastAPI copies parameter defaults per request
) -> Response:
    filters = {"source": source or None, "article_id": article_id or None,
               "date_from": date_from, "date_to": date_to}  # fmt: skip
    request = _validated(
        query=q, k=k, mode=mode, filters=filters, min_score=min_score, offset=offset,
        collapse=collapse, dedupe=dedupe, highlight=highlight, explain=explain, sort=sort,
        recency_half_life_days=recency_half_life_days,
        facets=[name for value in facets for name in value.split(",")] or None,
    )  # fmt: skip
    return _answer(searcher, request)


@router.post(
    "/search", response_model=SearchResponse, summary="Search with a JSON body",
    responses=BODY_SEARCH_ERRORS,
)  # fmt: skip
def search_post(body: SearchRequest, searcher: SearcherDep) -> Response:
    return _answer(searcher, body)


def _answer(searcher: Searcher, request: SearchRequest) -> Response:
    """The search's answer, encoded here rather than by FastAPI: the searcher built it from
    trusted values without validation, so validating it again on the way out would only
    cost time (``response_model`` still declares its schema). ``Server-Timing`` says where
    the time went."""
    times = StageTimes()
    found = searcher.search(request, times)
    with times.stage("serialize"):
        body = found.model_dump_json()
    return Response(body, media_type="application/json", headers={"Server-Timing": times.header()})


@router.get(
    "/healthz",
    summary="200 while a snapshot is served ('degraded' when CURRENT's was refused), 503 before",
    responses=_errors(500, 503),
)
def healthz(live: Annotated[LiveSearcher, Depends(live_searcher)]) -> dict[str, Any]:
    try:
        health = live.health()
    except NotReadyError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None
    body: dict[str, Any] = {"status": health.status, "snapshot": health.snapshot}
    if health.reason:
        body["reason"] = health.reason
    # Under --watch, the last watch build's result (search_api/watch.py): a detail, still 200.
    try:
        watch = live.store.watch_record()
    except SnapshotError as error:
        watch = {"result": "unreadable", "error": str(error)}
    return body | ({"watch": watch} if watch is not None else {})


@router.get(
    "/stats", response_model=Stats, summary="The live snapshot: id, counts, model",
    responses=_errors(401, 500, 503),
)  # fmt: skip
def stats(searcher: SearcherDep) -> Stats:
    return searcher.stats()


@router.get(
    "/articles/{article_id}", response_model=Article, summary="An article's passages in order",
    responses=_errors(401, 404, 422, 500, 503),
)  # fmt: skip
def article(article_id: str, searcher: SearcherDep) -> Article:
    found = searcher.article(article_id)
    if found is None:
        raise HTTPException(404, f"no article {article_id!r} in snapshot {searcher.snapshot.id}")
    return found


@router.get(
    "/articles/{article_id}/similar", response_model=SimilarArticles,
    summary="Related coverage: the closest other articles, then this one's duplicates",
    responses=_errors(401, 404, 422, 500, 503),
)  # fmt: skip
def similar(
    article_id: str,
    searcher: SearcherDep,
    k: Annotated[int, Query(ge=1, le=MAX_SIMILAR, description="closest articles to return")] = 5,
) -> SimilarArticles:
    try:
        found = searcher.similar(article_id, k)
    except SnapshotError as error:  # a snapshot from before article vectors
        raise HTTPException(503, str(error)) from None
    if found is None:
        raise HTTPException(404, f"no article {article_id!r} in snapshot {searcher.snapshot.id}")
    return found


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus_metrics(registry: Annotated[Metrics, Depends(metrics)]) -> Response:
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)


def admin(
    configured: Annotated[Settings, Depends(settings)],
    x_api_key: Annotated[str | None, Header(description="the admin key")] = None,
) -> None:
    if configured.api_key is None:
        raise HTTPException(403, "the admin API is disabled: set SEEDSEARCH_API_KEY to enable it")
    if not _matches(x_api_key, configured.api_key):
        raise HTTPException(401, "missing or wrong X-API-Key header")


def reindex_jobs(request: Request) -> Rebuilds:
    rebuilds: Rebuilds = request.app.state.rebuilds
    return rebuilds


@router.post(
    "/admin/reindex", status_code=202, response_model=ReindexJob,
    summary="Start a rebuild from the seeds folder; the new snapshot is served when it is done",
    description="Answers once the rebuild's process holds the build lock: 202 with the job "
    "(running, or already finished), 409 when another build holds the lock, 500 when the "
    "process ended before it could build (the job's record says why).",
    responses=_errors(401, 403, 409, 500),
)  # fmt: skip
def reindex(
    _: Annotated[None, Depends(admin)],
    rebuilds: Annotated[Rebuilds, Depends(reindex_jobs)],
    response: Response,
) -> ReindexJob:
    try:
        job = rebuilds.start()
    except BuildLockedError as error:  # never queued: the caller can retry
        raise HTTPException(409, str(error)) from None
    except SeedsearchError as error:
        raise HTTPException(500, str(error)) from None
    response.headers["Location"] = f"/admin/reindex/{job.job}"
    return job


@router.get(
    "/admin/reindex/{job_id}", response_model=ReindexJob,
    summary="A rebuild's state: running, succeeded (with its report) or failed (with why)",
    responses=_errors(401, 403, 404, 500),
)  # fmt: skip
def reindex_job(
    _: Annotated[None, Depends(admin)],
    job_id: str,
    rebuilds: Annotated[Rebuilds, Depends(reindex_jobs)],
) -> ReindexJob:
    try:
        job = rebuilds.get(job_id)
    except SeedsearchError as error:  # a damaged record
        raise HTTPException(500, str(error)) from None
    if job is None:
        raise HTTPException(404, f"no rebuild {job_id!r} (the last {KEPT_JOBS} are kept)")
    return job


def feed_reader(
    configured: Annotated[Settings, Depends(settings)],
    x_api_key: Annotated[str | None, Header(description="the read or admin key")] = None,
    key: Annotated[
        str, Query(description="the read key, for feed readers that cannot send headers")
    ] = "",
) -> None:
    """As ``reader``; feed readers cannot send headers, so the read key may also come as the
    ``key`` parameter (here only: a key in a URL ends up in histories and proxies' logs)."""
    if configured.read_key is None or (key and _matches(key, configured.read_key)):
        return
    if not (_matches(x_api_key, configured.read_key) or _matches(x_api_key, configured.api_key)):
        raise HTTPException(401, "missing or wrong key parameter or X-API-Key header")


@router.get(
    "/feed", response_class=Response,
    summary="An Atom feed of the newest articles matching a search",
    description="The matching set of the search (as `/search?sort=date&collapse=true`), one "
    "entry per article, newest first and undated ones last; a query with no good match is an "
    "empty feed. With SEEDSEARCH_READ_KEY set, the read key is the `key` parameter or the "
    "X-API-Key header.",
    responses={
        200: {
            "description": "an Atom 1.0 feed",
            "content": {feed.MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **_errors(401, 422, 431, 500, 503),
    },
)  # fmt: skip
def feed_get(
    request: Request,
    _: Annotated[None, Depends(feed_reader)],
    __: Annotated[None, Depends(search_slot)],
    searcher: Annotated[Searcher, Depends(current_searcher)],
    configured: Annotated[Settings, Depends(settings)],
    q: QueryText,
    k: Annotated[
        int,
        Query(
            description=f"entries, 1-{MAX_K}", json_schema_extra={"minimum": 1, "maximum": MAX_K}
        ),
    ] = feed.DEFAULT_ENTRIES,
    mode: Annotated[Mode, Query()] = DEFAULT_MODE,
    source: SourceFilter = [],  # noqa: B006 - FastAPI copies parameter defaults per request
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> Response:
    filters = {"source": source or None, "date_from": date_from, "date_to": date_to}
    search = _validated(query=q, k=k, mode=mode, filters=filters, sort="date", collapse=True,
                        highlight=False)  # fmt: skip
    results = searcher.search(search).results
    manifest = searcher.snapshot.manifest
    first_indexed = {file.path: file.first_indexed for file in manifest.files}
    base = configured.public_base_url or str(request.base_url)
    document = feed.feed_for(search, results, first_indexed, manifest.built_at, base)
    return Response(feed.render(document), media_type=feed.MEDIA_TYPE)


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")
