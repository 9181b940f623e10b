"""Prometheus metrics: request counts and latency by route and status, and the index size.

Under ``--workers N`` every worker writes its metrics to files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, chosen when the variable is set as the client is
imported), and ``/metrics`` from any worker adds up all of them: counters and histograms are
summed, and the index gauges come once per live worker with a ``pid`` label.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search_api.searcher import Searcher

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per app, so several apps (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "seedsearch_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "seedsearch_request_seconds", "HTTP request latency", ["method", "route", "status"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        # Each worker loads snapshots on its own: one series per live worker shows which lag.
        self.chunks = Gauge(
            "seedsearch_index_chunks", "chunks in the live snapshot", registry=self.registry,
            multiprocess_mode="liveall",
        )  # fmt: skip
        self.articles = Gauge(
            "seedsearch_index_articles", "articles in the live snapshot", registry=self.registry,
            multiprocess_mode="liveall",
        )  # fmt: skip
        self.reloads = Counter(
            "seedsearch_snapshot_loads", "snapshots loaded", registry=self.registry
        )

    def observe_snapshot(self, searcher: Searcher) -> None:
        self.chunks.set(searcher.snapshot.manifest.chunks)
        self.articles.set(searcher.snapshot.manifest.articles)
        self.reloads.inc()

    def exposition(self) -> bytes:
        shared = os.environ.get(METRICS_DIR_VARIABLE)
        if not shared:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=shared)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)


class MetricsMiddleware:
    """Counts every HTTP request under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route, str(status)).observe(
                time.perf_counter() - started
            )
