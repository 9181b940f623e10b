"""The live Searcher: swapped in when the index's CURRENT pointer names a new snapshot."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from indexer.embed import Embedder
from indexer.snapshot import NoSnapshotError, Snapshot, read_current, snapshots_dir
from search_api.searcher import Searcher

log = logging.getLogger("seedsearch")


class NotReadyError(RuntimeError):
    """No snapshot can be served yet; the message tells the operator what to do."""


class LiveSearcher:
    """Holds the current Searcher. Requests take a reference and keep it, so a swap never
    disturbs a request in flight: the old Searcher lives until its last request ends."""

    def __init__(
        self,
        index_root: Path,
        embedder: Embedder,
        on_swap: Callable[[Searcher], None] = lambda searcher: None,
    ) -> None:
        self.index_root = index_root
        self.embedder = embedder
        self._on_swap = on_swap
        self._searcher: Searcher | None = None
        self._problem = str(NoSnapshotError(index_root))
        self._refused: str | None = None  # a snapshot id that failed to load; not retried
        self._lock = threading.Lock()

    def current(self) -> Searcher:
        searcher = self._searcher
        if searcher is None:
            raise NotReadyError(self._problem)
        return searcher

    def refresh(self) -> bool:
        """Load the snapshot CURRENT names if it is new; True when a swap happened."""
        with self._lock:
            snapshot_id = read_current(self.index_root)
            loaded = self._searcher.snapshot.id if self._searcher else None
            if snapshot_id is None or snapshot_id in (loaded, self._refused):
                return False
            try:
                searcher = Searcher(
                    Snapshot(snapshots_dir(self.index_root) / snapshot_id), self.embedder
                )
            # Whatever makes a snapshot unloadable (wrong model, missing or corrupt files, an
            # unknown format), the server keeps serving what it has and says why.
            except Exception as error:
                self._refused = snapshot_id
                if self._searcher is None:
                    self._problem = f"cannot serve snapshot {snapshot_id}: {error}"
                log.error("not serving snapshot %s: %s", snapshot_id, error)
                return False
            self._searcher = searcher
            self._on_swap(searcher)
            log.info(
                "serving snapshot %s (%d chunks)", snapshot_id, searcher.snapshot.manifest.chunks
            )
            return True

    async def watch(self, interval_seconds: float) -> None:
        """Poll CURRENT until cancelled; loading happens off the event loop."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # keep watching: one bad snapshot must not stop reloads
                log.exception("checking for a new snapshot failed")
