"""The live Searcher: swapped in when the index's CURRENT pointer names a new snapshot.

Requests lease the Searcher they start on and keep it to the end, so a swap never disturbs a
request in flight; a replaced Searcher closes its snapshot when its last lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from indexer.embed import Embedder, QueryEncoder
from indexer.errors import NoSnapshotError, SeedsearchError
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.errors import NotReadyError
from search_api.matching import DEFAULT_RULES, MatchRules
from search_api.searcher import Searcher

log = logging.getLogger("seedsearch")
# A refused snapshot is retried after this back-off, doubling up to the maximum: on shared
# storage its files may still have been arriving.
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


def query_model(settings: Settings) -> Embedder:
    """The query model, loaded now when there is an index to serve: a bad model, or a missing
    exported file, is named before serving, and the first query is not the slow one."""
    store = IndexStore(settings.index_dir, settings.prune_grace_seconds)
    embedder = Embedder.for_index(settings, store, export=False)
    if store.current_id() is not None:
        embedder.warm_up()
    return embedder


def check_query_model(settings: Settings) -> None:
    """``query_model`` for a child process, which hands back nothing but an error."""
    query_model(settings)


@dataclass
class _Served:
    searcher: Searcher
    leases: int = 0
    retired: bool = False


@dataclass(frozen=True)
class Health:
    status: Literal["ok", "degraded"]
    snapshot: str
    reason: str | None = None


@dataclass
class _Refusal:
    reason: str
    attempts: int
    retry_at: float


class LiveSearcher:
    """Holds the current Searcher and swaps it when CURRENT moves."""

    def __init__(
        self,
        store: IndexStore,
        embedder: QueryEncoder,
        on_swap: Callable[[Searcher], None] = lambda searcher: None,
        clock: Callable[[], float] = time.monotonic,
        rules: MatchRules = DEFAULT_RULES,
        time_limit_seconds: float | None = None,
    ) -> None:
        self.store = store
        self._time_limit = time_limit_seconds
        self.embedder = embedder
        self._rules = rules
        self._on_swap = on_swap
        self._clock = clock
        self._served: _Served | None = None
        self._refusals: dict[str, _Refusal] = {}
        self._problem = str(NoSnapshotError(store.root))
        self._lock = threading.Lock()  # guards _served and the leases
        self._loading = threading.Lock()  # one refresh at a time

    def health(self) -> Health:
        """What is served: "ok" when it is the snapshot CURRENT names, "degraded" when that one
        was refused and an earlier one is served instead; ``NotReadyError`` when nothing is."""
        served = self._served
        if served is None:
            raise NotReadyError(self._problem)
        snapshot = served.searcher.snapshot.id
        try:
            wanted = self.store.current_id()
        except SeedsearchError as error:
            return Health("degraded", snapshot, str(error))
        refusal = self._refusals.get(wanted) if wanted else None
        if wanted != snapshot and refusal is not None:
            return Health("degraded", snapshot, f"snapshot {wanted} refused: {refusal.reason}")
        return Health("ok", snapshot)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Searcher]:
        """The current Searcher, kept open until the block ends even if a swap happens."""
        with self._lock:
            served = self._served
            if served is None:
                raise NotReadyError(self._problem)
            served.leases += 1
        try:
            yield served.searcher
        finally:
            with self._lock:
                served.leases -= 1
                close = served.retired and served.leases == 0
            if close:
                served.searcher.close()

    def refresh(self) -> bool:
        """Load the snapshot CURRENT names if it is new; True when a swap happened."""
        with self._loading:
            snapshot_id = self.store.current_id()
            served = self._served
            if snapshot_id is None or (served and served.searcher.snapshot.id == snapshot_id):
                return False
            refusal = self._refusals.get(snapshot_id)
            if refusal is not None and self._clock() < refusal.retry_at:
                return False
            try:
                # The model file arrives with the first snapshot: load it now, not on a query.
                self.embedder.encode_query("warm-up")
                searcher = self._open(snapshot_id)
            # Whatever makes a snapshot unloadable (wrong model, missing or corrupt files, an
            # unknown format), the server keeps serving what it has and says why, once.
            except Exception as error:
                self._refuse(snapshot_id, refusal, error)
                return False
            self._refusals.pop(snapshot_id, None)
            self._swap(searcher)
            log.info(
                "serving snapshot %s (%d chunks)", snapshot_id, searcher.snapshot.manifest.chunks
            )
            return True

    def _open(self, snapshot_id: str) -> Searcher:
        return Searcher.open(
            self.store, self.embedder, snapshot_id,
            rules=self._rules, time_limit=self._time_limit,
        )  # fmt: skip

    def _refuse(self, snapshot_id: str, earlier: _Refusal | None, error: Exception) -> None:
        attempts = earlier.attempts + 1 if earlier else 1
        backoff = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempts - 1))
        self._refusals[snapshot_id] = _Refusal(str(error), attempts, self._clock() + backoff)
        if self._served is None:
            self._problem = f"cannot serve snapshot {snapshot_id}: {error}"
        if earlier is None:
            log.error("not serving snapshot %s: %s (will retry)", snapshot_id, error)

    def _swap(self, searcher: Searcher) -> None:
        self._replace(_Served(searcher))
        self._on_swap(searcher)

    def close(self) -> None:
        """Stop serving: the current Searcher closes once its last lease ends."""
        self._replace(None)

    def _replace(self, new: _Served | None) -> None:
        with self._lock:
            old, self._served = self._served, new
            if old is None:
                return
            old.retired = True
            idle = old.leases == 0
        if idle:
            old.searcher.close()

    async def follow_current(self, interval_seconds: float) -> None:
        """Poll CURRENT until cancelled; loading happens off the event loop."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # keep following: one bad snapshot must not stop reloads
                log.exception("checking for a new snapshot failed")
