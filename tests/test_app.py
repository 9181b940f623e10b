"""The app in-process (real model, real snapshot): configurations a shared server cannot show;
and the live searcher's swaps, on the stand-in model."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SEED_FILE, STAND_IN_RULES, HashEmbedder
from fastapi.testclient import TestClient

from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.app import create_app
from search_api.live import RETRY_FIRST_SECONDS, LiveSearcher
from search_api.models import SearchRequest
from search_api.searcher import Searcher


def serving(live: LiveSearcher) -> Searcher:
    """The Searcher a request starting now would get."""
    with live.lease() as searcher:
        return searcher


def test_without_a_configured_key_the_admin_api_is_disabled(seed_settings: Settings) -> None:
    with TestClient(create_app(seed_settings.model_copy(update={"api_key": None}))) as client:
        response = client.post("/admin/reindex", headers={"X-API-Key": "anything"})
    assert response.status_code == 403
    assert "SEEDSEARCH_API_KEY" in response.json()["detail"]


def test_before_any_build_search_says_how_to_build(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(index_dir=tmp_path / "empty"))) as client:
        for path in ("/search?q=flood", "/healthz", "/stats"):
            response = client.get(path)
            assert response.status_code == 503
            assert "run python -m indexer build first" in response.json()["detail"]
        assert client.get("/").status_code == 200


def stand_in_live(store: IndexStore, clock: Callable[[], float] = time.monotonic) -> LiveSearcher:
    """A live searcher over ``store`` that encodes queries with the stand-in model."""
    return LiveSearcher(store, HashEmbedder(), clock=clock, rules=STAND_IN_RULES)


def test_a_broken_snapshot_is_refused_and_the_live_one_kept(
    stand_in_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "index"
    shutil.copytree(stand_in_settings.index_dir, root)
    store = IndexStore(root)
    live = stand_in_live(store)
    assert live.refresh()
    good = serving(live).snapshot.id
    broken = root / "snapshots" / "broken"
    shutil.copytree(root / "snapshots" / good, broken)
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    store.publish("broken")
    assert not live.refresh()
    assert serving(live).snapshot.id == good
    assert store.current_id() == "broken"
    assert SEED_FILE.name in {f.path for f in serving(live).snapshot.manifest.files}


def clone_snapshot(root: Path, source_id: str, new_id: str) -> Path:
    """Copy a snapshot under a new id, as a later build would have written it."""
    target = root / "snapshots" / new_id
    shutil.copytree(root / "snapshots" / source_id, target)
    text = (target / "manifest.json").read_text(encoding="utf-8")
    (target / "manifest.json").write_text(text.replace(source_id, new_id), encoding="utf-8")
    return target


@pytest.fixture
def live_root(stand_in_settings: Settings, tmp_path: Path) -> Path:
    root = tmp_path / "index"
    shutil.copytree(stand_in_settings.index_dir, root)
    return root


def test_a_refused_snapshot_is_retried_after_a_back_off_and_logged_once(
    live_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = IndexStore(live_root)
    now = [0.0]
    live = stand_in_live(store, clock=lambda: now[0])
    assert live.refresh()
    good = serving(live).snapshot.id
    pending = clone_snapshot(live_root, good, "29990101T000000000000Z")
    vectors = (pending / "vectors.faiss").read_bytes()
    (pending / "vectors.faiss").write_bytes(vectors[:100])  # still arriving on shared storage
    store.publish(pending.name)
    with caplog.at_level(logging.ERROR, logger="seedsearch"):
        assert not live.refresh()
        assert serving(live).snapshot.id == good
        now[0] += RETRY_FIRST_SECONDS  # retried after the back-off, and refused again
        assert not live.refresh()
        (pending / "vectors.faiss").write_bytes(vectors)  # the file has arrived
        now[0] += RETRY_FIRST_SECONDS  # the back-off has doubled: too soon
        assert not live.refresh()
        now[0] += RETRY_FIRST_SECONDS
        assert live.refresh()
    assert serving(live).snapshot.id == pending.name
    refusals = [r for r in caplog.records if pending.name in r.getMessage()]
    assert len(refusals) == 1


def test_a_replaced_snapshot_closes_when_its_last_request_ends(live_root: Path) -> None:
    store = IndexStore(live_root)
    live = stand_in_live(store)
    assert live.refresh()
    first = serving(live).snapshot.id
    with live.lease() as in_flight:
        store.publish(clone_snapshot(live_root, first, "29990101T000000000000Z").name)
        assert live.refresh()
        assert not in_flight.snapshot.closed  # the request in flight finishes on it
        assert in_flight.search(SearchRequest(query="flood evacuations", k=1)).results
    assert in_flight.snapshot.closed
    idle = serving(live)
    store.publish(clone_snapshot(live_root, first, "29990102T000000000000Z").name)
    assert live.refresh()
    assert idle.snapshot.closed and not serving(live).snapshot.closed


def test_a_search_past_its_time_limit_gets_503_with_retry_after(seed_settings: Settings) -> None:
    hurried = seed_settings.model_copy(update={"query_timeout_seconds": 1e-9})
    with TestClient(create_app(hurried)) as client:
        response = client.get("/search", params={"q": "flood evacuations"})
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "time limit" in response.json()["detail"]
        assert client.get("/healthz").status_code == 200
    with TestClient(create_app(seed_settings)) as client:  # the default limit: 10 s
        assert client.get("/search", params={"q": "flood evacuations"}).status_code == 200
