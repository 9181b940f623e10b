"""``python -m search_api``: serve the search API and page with uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import uvicorn
from prometheus_client import multiprocess
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from indexer.errors import ConfigurationError, ModelError, SeedsearchError, run_command
from indexer.settings import Settings, settings_from_flags, settings_to_environment
from search_api.app import create_app
from search_api.live import check_query_model, query_model
from search_api.metrics import METRICS_DIR_VARIABLE
from search_api.watch import watching

# On SIGTERM (or Ctrl-C) the server stops accepting connections and lets requests in flight
# finish for up to this long before it exits 0 (a rebuild child gets its own, longer wait:
# search_api/jobs.py).
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
    parser.add_argument(
        "--watch", action=argparse.BooleanOptionalAction, default=None,
        help="build incrementally when files in the seeds folder change (default: off)",
    )  # fmt: skip
    return parser


def serve(args: argparse.Namespace) -> int:
    settings = settings_from_flags(
        host=args.host, port=args.port, index_dir=args.index, seeds_dir=args.seeds,
        model=args.model, workers=args.workers, watch=args.watch,
    )  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    # One process watches and builds: this one, the supervisor under --workers N.
    with watching(settings) if settings.watch else contextlib.nullcontext():
        if settings.workers == 1:
            serve_one(settings)
        else:
            serve_workers(settings)
    return 0


def serve_one(settings: Settings) -> None:
    if os.environ.get(METRICS_DIR_VARIABLE):
        raise ConfigurationError(
            f"{METRICS_DIR_VARIABLE} is set: unset it; --workers N keeps its own metrics folder"
        )
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
    40 ms for a delayed ACK (docs/benchmarks.md). And the workers keep their metrics in one
    fresh folder, which ``/metrics`` from any of them adds up."""
    check_model_apart(settings)
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
        os.environ[METRICS_DIR_VARIABLE] = metrics_dir
        workers = Workers(config, sockets=[listening], metrics_dir=Path(metrics_dir))
        workers.run()
    if workers.failed_to_start:
        raise SeedsearchError("a worker process failed to start: its error is above")


def check_model_apart(settings: Settings) -> None:
    """Load the query model in a passing child process, so a bad one is named before serving
    while the supervisor itself never holds a model."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as checker:
        try:
            checker.submit(check_query_model, settings).result()
        except BrokenProcessPool as error:
            raise ModelError(f"the model check process died: {error}") from error


class Workers(Multiprocess):
    """uvicorn's worker supervisor, which also drops from the shared metrics the gauges of
    every worker no longer running (died, restarted on SIGHUP, removed on SIGTTOU); the
    counts of those workers stay in the sums."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], metrics_dir: Path):
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir

    def keep_subprocess_alive(self) -> None:  # once per supervisor pass, after signals
        super().keep_subprocess_alive()
        running = {process.pid for process in self.processes}
        for gauge_file in self.metrics_dir.glob("gauge_live*_*.db"):
            pid = int(gauge_file.stem.rsplit("_", 1)[1])
            if pid not in running:
                multiprocess.mark_process_dead(pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]

    @property
    def failed_to_start(self) -> bool:
        return any(process.exitcode == STARTUP_FAILURE for process in self.processes)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: serve(args))


if __name__ == "__main__":
    sys.exit(main())
