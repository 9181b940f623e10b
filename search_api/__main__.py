"""``python -m search_api``: serve the search API and page with uvicorn."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import uvicorn
from prometheus_client import multiprocess
from uvicorn.supervisors import Multiprocess

from indexer.errors import run_command
from indexer.settings import Settings, settings_from_flags, settings_to_environment
from search_api.app import create_app
from search_api.live import check_query_model, query_model

# On SIGTERM (or Ctrl-C) the server stops accepting connections and lets requests in flight,
# a rebuild through /admin/reindex included, finish for up to this long before it exits 0.
GRACEFUL_SHUTDOWN_SECONDS = 120


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m search_api", description=__doc__)
    parser.add_argument("--host", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: 8000)")
    parser.add_argument("--index", type=Path, help="index root (default: var/index)")
    parser.add_argument(
        "--seeds", type=Path, help="seeds folder for /admin/reindex (default: seeds)"
    )
    parser.add_argument("--model", help="local sentence-transformers folder (default: packaged)")
    parser.add_argument("--workers", type=int, help="server processes (default: 1)")
    return parser


def serve(args: argparse.Namespace) -> int:
    settings = settings_from_flags(
        host=args.host, port=args.port, index_dir=args.index, seeds_dir=args.seeds,
        model=args.model, workers=args.workers,
    )  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    if settings.workers == 1:
        serve_one(settings)
    else:
        serve_workers(settings)
    return 0


def serve_one(settings: Settings) -> None:
    embedder = query_model(settings)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler
    # it found. A handler that does nothing lets that end as a clean exit 0 instead of a kill.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        create_app(settings, embedder), host=settings.host, port=settings.port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )  # fmt: skip


def serve_workers(settings: Settings) -> None:
    """uvicorn's own multi-process mode, with two changes. The shared listening socket gets
    TCP_NODELAY, which accepted connections inherit: uvicorn binds it with protocol 0, so
    asyncio never sets the option on them, and every keep-alive response then waits about
    40 ms for a delayed ACK (README, Benchmarks). And the workers keep their metrics in one
    fresh folder, which ``/metrics`` from any of them adds up."""
    # The model is checked in a passing child process: the supervisor never holds one.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as checker:
        checker.submit(check_query_model, settings).result()
    # Worker processes build their own app from the environment: hand them the flags there.
    os.environ.update(settings_to_environment(settings))
    config = uvicorn.Config(
        "search_api.app:create_app", factory=True, workers=settings.workers,
        host=settings.host, port=settings.port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )  # fmt: skip
    listening = config.bind_socket()
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with tempfile.TemporaryDirectory(prefix="seedsearch-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        Workers(config, sockets=[listening]).run()


class Workers(Multiprocess):
    """uvicorn's worker supervisor, which also drops the gauges of a worker it replaced (one
    that died, or was restarted on SIGHUP) from the shared metrics; its counts stay summed."""

    def keep_subprocess_alive(self) -> None:
        self._retiring(super().keep_subprocess_alive)

    def restart_all(self) -> None:
        self._retiring(super().restart_all)

    def _retiring(self, replace: Callable[[], None]) -> None:
        before = {process.pid for process in self.processes}
        replace()
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: serve(args))


if __name__ == "__main__":
    sys.exit(main())
