"""Opening a Searcher: one door for the server, the CLI, evaluate.py and the gate; no snapshot
left open on any error; local searches honour the configured time limit."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import HashEmbedder

from indexer.embed import Embedder
from indexer.errors import ModelMismatchError, QueryTimeoutError, SnapshotError
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.client import local_search
from search_api.errors import NotReadyError
from search_api.live import LiveSearcher
from search_api.models import SearchRequest
from search_api.searcher import Searcher


def files_open_under(folder: Path) -> list[str]:
    """This process's open file descriptors that point into ``folder``."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while listing
        if target.startswith(str(folder.resolve())):
            found.append(target)
    return found


@pytest.fixture
def copied_index(tmp_path: Path, seed_settings: Settings) -> Path:
    root = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, root)
    return root


def test_a_snapshot_of_another_model_is_refused_and_left_closed(copied_index: Path) -> None:
    store = IndexStore(copied_index)
    with pytest.raises(ModelMismatchError, match="rebuild the index"):
        Searcher.open(store, HashEmbedder())
    assert files_open_under(copied_index) == []


def test_a_damaged_snapshot_is_refused_and_left_closed(
    copied_index: Path, embedder: Embedder
) -> None:
    store = IndexStore(copied_index)
    sentences = copied_index / "snapshots" / store.live_id() / "sentences.npy"
    sentences.write_bytes(b"\0" * sentences.stat().st_size)  # same size, not an array
    with pytest.raises(SnapshotError, match="cannot open snapshot"):
        Searcher.open(store, embedder)
    assert files_open_under(copied_index) == []


def test_the_live_searcher_opens_through_the_same_door_and_leaks_nothing(
    copied_index: Path,
) -> None:
    live = LiveSearcher(IndexStore(copied_index), HashEmbedder())
    assert not live.refresh()  # refused: built with the real model
    with pytest.raises(NotReadyError, match="built with model"):
        live.health()
    assert files_open_under(copied_index) == []


def test_an_opened_searcher_serves_the_snapshot_it_was_asked_for(
    seed_settings: Settings, embedder: Embedder
) -> None:
    store = IndexStore(seed_settings.index_dir)
    searcher = Searcher.open(store, embedder, store.live_id())
    try:
        assert searcher.snapshot.id == store.live_id()
        assert searcher.search(SearchRequest(query="flood evacuations", k=1)).results
    finally:
        searcher.close()
    assert searcher.snapshot.closed


def test_local_searches_honour_the_configured_time_limit(seed_settings: Settings) -> None:
    hurried = seed_settings.model_copy(update={"query_timeout_seconds": 1e-9})
    with local_search(hurried) as search, pytest.raises(QueryTimeoutError):
        search(SearchRequest(query="flood evacuations", k=3))
    with local_search(seed_settings) as search:  # the default limit, 10 s, leaves it be
        assert search(SearchRequest(query="flood evacuations", k=3)).results
