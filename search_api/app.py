"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.embed import Embedder
from indexer.errors import QueryTimeoutError
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.feed import KEY_REDACTION
from search_api.jobs import REBUILD_SHUTDOWN_SECONDS, Rebuilds
from search_api.limits import RequestLimits
from search_api.live import LiveSearcher
from search_api.matching import MatchRules
from search_api.mcp import mount_mcp
from search_api.metrics import Metrics, MetricsMiddleware
from search_api.routes import STATIC_DIR, router


def _readable(error: RequestValidationError) -> JSONResponse:
    """422 with one readable sentence in ``detail`` and the structured errors beside it."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query"))
        problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
    errors = [{key: item.get(key) for key in ("loc", "msg", "type")} for item in error.errors()]
    return JSONResponse(status_code=422, content={"detail": "; ".join(problems), "errors": errors})


def _method_not_allowed(app: FastAPI, request: Request) -> JSONResponse:
    """405 whose Allow header lists every method of the path: Starlette lists only those of
    the first route that matched it (GET and POST /search are two routes)."""
    allowed = sorted(
        method
        for route in app.routes
        if isinstance(route, APIRoute) and route.path_regex.match(request.url.path)
        for method in route.methods or ()
    )
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allowed)}
    )


def create_app(settings: Settings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """The app over ``settings.index_dir``; ``embedder`` defaults to the configured model."""
    settings = settings or Settings()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # /feed takes the read key as a parameter: the access log shows it as ***.
        logging.getLogger("uvicorn.access").addFilter(KEY_REDACTION)
        store = IndexStore(settings.index_dir, settings.prune_grace_seconds)
        model = embedder or Embedder.for_index(settings, store, export=False)
        live = LiveSearcher(
            store, model, on_swap=metrics.observe_snapshot,
            rules=MatchRules.from_settings(settings),
            time_limit_seconds=settings.query_timeout_seconds,  # 0: no limit
        )  # fmt: skip
        # Loads the model before taking traffic, so the first query is not the slow one.
        await asyncio.to_thread(live.refresh)
        # What start-up built (the app, the model, the snapshot) lives as long as the process:
        # kept out of the collector's full passes, which would otherwise rescan it in the
        # middle of some request and add to the latency tail.
        gc.freeze()
        app.state.live = live
        # Rebuilds run as child processes; when one ends, its snapshot is served at once.
        app.state.rebuilds = Rebuilds(settings, on_finish=live.refresh)
        follower = asyncio.create_task(live.follow_current(settings.reload_interval_seconds))
        try:
            async with mcp_sessions.run():  # /mcp (stateless: no session outlives a request)
                yield
        finally:
            # A rebuild this process started finishes before it exits (see search_api.jobs).
            await asyncio.to_thread(app.state.rebuilds.wait, REBUILD_SHUTDOWN_SECONDS)
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            live.close()

    # FastAPIOffline serves the /docs assets itself: machines here cannot reach a CDN.
    app = FastAPIOffline(
        title="seedsearch",
        summary="Semantic search over news articles: the passages that answer a question.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.search_slots = threading.BoundedSemaphore(settings.max_searches_in_flight)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origins:  # off unless configured: the page itself is same-origin
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key"],
        )  # fmt: skip
    app.add_middleware(RequestLimits)  # outermost: refuses oversized requests before all else

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return _readable(error)

    @app.exception_handler(QueryTimeoutError)
    async def too_slow(request: Request, error: QueryTimeoutError) -> JSONResponse:
        detail = f"{error} ({settings.query_timeout_seconds:g} s); try a narrower query"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 405:
            return _method_not_allowed(app, request)
        return await http_exception_handler(request, error)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        # Starlette re-raises after this, so uvicorn still logs the traceback; the client gets
        # JSON like every other error.
        return JSONResponse(status_code=500, content={"detail": "internal server error"})

    app.include_router(router)
    mcp_sessions = mount_mcp(app, settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
