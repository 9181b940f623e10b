"""The app in-process (real model, real snapshot): configurations a shared server cannot show."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import SEED_FILE
from fastapi.testclient import TestClient

from indexer.embed import Embedder
from indexer.settings import Settings
from indexer.snapshot import CURRENT_FILE, publish, read_current, snapshots_dir
from search_api.app import create_app
from search_api.live import LiveSearcher


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


def test_a_broken_snapshot_is_refused_and_the_live_one_kept(
    seed_settings: Settings, tmp_path: Path, embedder: Embedder
) -> None:
    root = tmp_path / "index"
    shutil.copytree(seed_settings.index_dir, root)
    live = LiveSearcher(root, embedder)
    assert live.refresh()
    good = live.current().snapshot.id
    broken = snapshots_dir(root) / "broken"
    shutil.copytree(snapshots_dir(root) / good, broken)
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    publish(root, "broken")
    assert not live.refresh()
    assert live.current().snapshot.id == good
    assert read_current(root) == "broken" and (root / CURRENT_FILE).is_file()
    assert SEED_FILE.name in {f.path for f in live.current().snapshot.manifest.files}
