"""``python -m search_api``: serve the search API and page with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from indexer.embed import Embedder
from indexer.errors import run_command
from indexer.settings import Settings, settings_from_flags, settings_to_environment
from indexer.store import IndexStore
from search_api.app import create_app

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
    store = IndexStore(settings.index_dir, settings.prune_grace_seconds)
    embedder = Embedder.for_index(settings, store, export=False)
    if store.current_id() is not None:
        embedder.warm_up()  # a bad model, or a missing exported file, is named before serving
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler
    # it found. A handler that does nothing lets that end as a clean exit 0 instead of a kill.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if settings.workers == 1:
        uvicorn.run(
            create_app(settings, embedder), host=settings.host, port=settings.port,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )  # fmt: skip
        return 0
    # Worker processes build their own app from the environment: hand them the flags there.
    os.environ.update(settings_to_environment(settings))
    serve_workers(settings)
    return 0


def serve_workers(settings: Settings) -> None:
    """uvicorn's own multi-process mode, with one change: the shared listening socket gets
    TCP_NODELAY, which accepted connections inherit. uvicorn binds it with protocol 0, so
    asyncio never sets the option on them, and every keep-alive response then waits about
    40 ms for a delayed ACK (README, Benchmarks)."""
    config = uvicorn.Config(
        "search_api.app:create_app", factory=True, workers=settings.workers,
        host=settings.host, port=settings.port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )  # fmt: skip
    listening = config.bind_socket()
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[listening]).run()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: serve(args))


if __name__ == "__main__":
    sys.exit(main())
