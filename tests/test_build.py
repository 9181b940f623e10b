"""Building, incremental rebuilds, bad files, locking and crash safety, with the real model."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEED_FILE, bbc_files, new_corpus, run_python

from indexer.build import EMBED_BATCH, build_index
from indexer.embed import Embedder
from indexer.errors import SnapshotError
from indexer.settings import Settings
from indexer.store import EmbeddingCache, IndexStore, Manifest
from indexer.store._cache import cache_key
from search_api.models import SearchRequest
from search_api.searcher import Searcher

NEW_ARTICLE = """Volcano Erupts Near Iceland Fishing Town

Lava fountains lit up the sky above Grindavik on Tuesday as a fissure opened north of the town.

Civil protection officials ordered residents to leave their homes before dawn.
"""


def search_texts(settings: Settings, embedder: Embedder, query: str, k: int = 5) -> list[str]:
    searcher = Searcher.open(IndexStore(settings.index_dir), embedder)
    try:
        return [r.text for r in searcher.search(SearchRequest(query=query, k=k)).results]
    finally:
        searcher.close()


def live_manifest(index_dir: Path) -> Manifest:
    return IndexStore(index_dir).manifest()


def read_current(index_dir: Path) -> str | None:
    return IndexStore(index_dir).current_id()


def snapshot_ids(index_dir: Path) -> list[str]:
    return IndexStore(index_dir).snapshot_ids()


@pytest.fixture
def corpus(tmp_path: Path) -> Settings:
    # Builds here publish in quick succession: no grace period before pruning.
    return Settings(
        seeds_dir=new_corpus(tmp_path / "seeds"),
        index_dir=tmp_path / "index",
        prune_grace_seconds=0,
    )


def test_build_then_add_edit_and_delete_files_re_embeds_only_what_changed(
    corpus: Settings, embedder: Embedder
) -> None:
    first = build_index(corpus, embedder=embedder)
    assert (first.files, first.articles, first.chunks, first.embedded, first.parsed) == (
        1,
        4,
        46,
        46,
        1,
    )
    assert any(
        "Morocco has evacuated" in t for t in search_texts(corpus, embedder, "flood evacuations", 3)
    )

    unchanged = build_index(corpus, embedder=embedder)
    assert (unchanged.embedded, unchanged.reused, unchanged.published, unchanged.parsed) == (
        0,
        46,
        False,
        0,
    )
    assert unchanged.snapshot == first.snapshot

    (corpus.seeds_dir / "volcano.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    added = build_index(corpus, embedder=embedder)
    assert (added.files, added.articles, added.chunks, added.embedded, added.reused) == (
        2,
        5,
        48,
        2,
        46,
    )
    assert added.parsed == 1  # the unchanged seed file reused its chunks
    assert "Lava fountains" in search_texts(corpus, embedder, "volcanic eruption lava")[0]

    seed_copy = corpus.seeds_dir / SEED_FILE.name
    text = seed_copy.read_text(encoding="utf-8")
    seed_copy.write_text(
        text.replace("seven-year drought", "seven-year dry spell"), encoding="utf-8"
    )
    edited = build_index(corpus, embedder=embedder)
    assert (edited.chunks, edited.embedded) == (48, 1)
    assert any("seven-year dry spell" in t for t in search_texts(corpus, embedder, "drought", 10))

    (corpus.seeds_dir / "volcano.txt").unlink()
    removed = build_index(corpus, embedder=embedder)
    assert (removed.files, removed.chunks, removed.embedded) == (1, 46, 0)
    assert not any(
        "Lava" in t for t in search_texts(corpus, embedder, "volcanic eruption lava", 46)
    )
    assert [f.path for f in live_manifest(corpus.index_dir).files] == [SEED_FILE.name]


def test_full_rebuild_re_embeds_everything(corpus: Settings, embedder: Embedder) -> None:
    build_index(corpus, embedder=embedder)
    full = build_index(corpus, embedder=embedder, full=True)
    assert (full.embedded, full.published) == (46, True)


def test_bad_files_are_reported_while_the_rest_publishes(
    corpus: Settings, embedder: Embedder
) -> None:
    (corpus.seeds_dir / "latin1.txt").write_bytes(
        "Caf\xe9 society\n\nA paragraph.\n".encode("latin-1")
    )
    (corpus.seeds_dir / "empty.md").write_bytes(b"")
    (corpus.seeds_dir / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (corpus.seeds_dir / "notes.pdf").write_bytes(b"%PDF-1.4")  # not a seed type: skipped silently
    report = build_index(corpus, embedder=embedder)
    assert report.published and report.files == 1 and report.chunks == 46
    errors = {e.file: e.error for e in report.errors}
    assert set(errors) == {"latin1.txt", "empty.md", "image.txt"}
    assert "not valid UTF-8" in errors["latin1.txt"]
    assert errors["empty.md"] == "empty file"
    assert "binary" in errors["image.txt"]


def test_the_command_line_reports_json_and_fails_only_when_nothing_publishes(
    tmp_path: Path,
) -> None:
    seeds = new_corpus(tmp_path / "seeds")
    (seeds / "broken.txt").write_bytes(b"\xff\xfe\x00junk")
    args = [
        "-m",
        "indexer",
        "build",
        "--seeds",
        str(seeds),
        "--index",
        str(tmp_path / "index"),
        "--json",
    ]
    done = run_python(*args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= {
        "snapshot",
        "files",
        "articles",
        "chunks",
        "embedded",
        "reused",
        "errors",
        "seconds",
    }
    assert report["chunks"] == 46 and report["errors"] == [
        {"file": "broken.txt", "error": "binary file (contains NUL bytes)"}
    ]

    status = run_python("-m", "indexer", "status", "--index", str(tmp_path / "index"))
    assert (
        status.returncode == 0
        and report["snapshot"] in status.stdout
        and "46 chunks" in status.stdout
    )

    (seeds / SEED_FILE.name).unlink()
    failed = run_python(*args)
    assert failed.returncode == 1
    assert "nothing to index" in failed.stderr and "broken.txt" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert read_current(tmp_path / "index") == report["snapshot"]


def test_status_without_an_index_says_how_to_build_one(tmp_path: Path) -> None:
    done = run_python("-m", "indexer", "status", "--index", str(tmp_path / "none"))
    assert done.returncode == 1
    assert "run python -m indexer build first" in done.stderr


def test_a_second_build_waits_for_the_first_and_says_so(
    corpus: Settings, embedder: Embedder
) -> None:
    messages: list[str] = []
    reports = []
    with IndexStore(corpus.index_dir).build_lock(wait_seconds=0, notify=print):
        waiting = threading.Thread(
            target=lambda: reports.append(
                build_index(corpus, embedder=embedder, notify=messages.append)
            )
        )
        waiting.start()
        deadline = time.monotonic() + 30
        while not messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert messages and "another build is running" in messages[0]
        assert not reports
    waiting.join(timeout=120)
    assert reports and reports[0].published


def test_old_snapshots_are_pruned_keeping_the_previous_one(
    corpus: Settings, embedder: Embedder
) -> None:
    ids = []
    for round_number in range(3):
        (corpus.seeds_dir / "volcano.txt").write_text(NEW_ARTICLE + f"\nUpdate {round_number}.\n")
        ids.append(build_index(corpus, embedder=embedder).snapshot)
    remaining = snapshot_ids(corpus.index_dir)
    assert remaining == ids[1:]
    assert read_current(corpus.index_dir) == ids[-1]


def test_large_corpora_switch_to_an_approximate_index(corpus: Settings, embedder: Embedder) -> None:
    corpus = corpus.model_copy(update={"exact_search_limit": 10})
    build_index(corpus, embedder=embedder)
    assert live_manifest(corpus.index_dir).index_type == "hnsw"
    searcher = Searcher.open(IndexStore(corpus.index_dir), embedder)
    top = searcher.search(SearchRequest(query="flood evacuations", k=3, mode="dense")).results
    assert any(r.text.startswith("Morocco has evacuated") for r in top)
    # A filter on an approximate index still finds every passage of the article above the bar.
    lebanon = searcher.search(SearchRequest(query="Hezbollah disarmament", k=1)).results[0]
    filtered = SearchRequest(
        query="flood evacuations",
        k=100,
        mode="dense",
        filters={"article_id": [lebanon.article_id]},
        min_score=-1.0,
    )
    results = searcher.search(filtered).results
    assert len(results) == 13 and {r.article_id for r in results} == {lebanon.article_id}


def test_renaming_a_file_reuses_its_vectors(corpus: Settings, embedder: Embedder) -> None:
    build_index(corpus, embedder=embedder)
    (corpus.seeds_dir / SEED_FILE.name).rename(corpus.seeds_dir / "renamed.txt")
    renamed = build_index(corpus, embedder=embedder)
    assert (renamed.chunks, renamed.embedded, renamed.parsed) == (46, 0, 1)
    assert [f.path for f in live_manifest(corpus.index_dir).files] == ["renamed.txt"]


def test_a_file_that_turns_unreadable_loses_its_passages_and_is_reported(
    corpus: Settings, embedder: Embedder
) -> None:
    (corpus.seeds_dir / "volcano.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    build_index(corpus, embedder=embedder)
    (corpus.seeds_dir / "volcano.txt").write_bytes(NEW_ARTICLE.encode("utf-16"))
    report = build_index(corpus, embedder=embedder)
    assert report.published and report.chunks == 46
    assert [e.file for e in report.errors] == ["volcano.txt"]
    assert [e.file for e in live_manifest(corpus.index_dir).errors] == ["volcano.txt"]


def test_repeated_paragraphs_are_distinct_passages(corpus: Settings, embedder: Embedder) -> None:
    build_index(corpus, embedder=embedder)
    text = "Storm Warning Issued\n\nStay indoors.\n\nRoads are closed.\n\nStay indoors.\n"
    (corpus.seeds_dir / "storm.txt").write_text(text, encoding="utf-8")
    report = build_index(corpus, embedder=embedder)
    assert (report.chunks, report.embedded) == (49, 3)
    searcher = Searcher.open(IndexStore(corpus.index_dir), embedder)
    request = SearchRequest(
        query="stay indoors", k=10, mode="lexical", filters={"source": "storm.txt"}
    )
    copies = [r for r in searcher.search(request).results if r.text == "Stay indoors."]
    assert len(copies) == 2 and copies[0].chunk_id != copies[1].chunk_id
    assert sorted(c.position for c in copies) == [0, 2]


def _cached_vectors(index_dir: Path) -> int:
    if not index_dir.is_dir():
        return 0
    with IndexStore(index_dir).embedding_cache(fingerprint="") as cache:
        return len(cache)


def test_a_build_killed_part_way_leaves_the_live_snapshot_and_its_work(
    tmp_path: Path, embedder: Embedder
) -> None:
    seeds = new_corpus(tmp_path / "seeds")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", prune_grace_seconds=0)
    live = build_index(settings, embedder=embedder).snapshot
    cached_before = _cached_vectors(settings.index_dir)
    for path in bbc_files(20):
        shutil.copy(path, seeds / path.name)

    process = subprocess.Popen(
        [sys.executable, "-m", "indexer", "build", "--seeds", str(seeds), "--index", str(settings.index_dir), "--json"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while (
        _cached_vectors(settings.index_dir) < cached_before + EMBED_BATCH
        and time.monotonic() < deadline
    ):
        assert process.poll() is None, "the build finished before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert read_current(settings.index_dir) == live
    assert "Morocco has evacuated" in " ".join(
        search_texts(settings, embedder, "flood evacuations", 3)
    )

    kept = _cached_vectors(settings.index_dir)
    assert kept >= cached_before + EMBED_BATCH
    resumed = build_index(settings, embedder=embedder)
    assert resumed.published and resumed.snapshot != live
    # Only what the killed build had not cached was computed: its vectors were kept.
    assert resumed.computed == _cached_vectors(settings.index_dir) - kept
    assert resumed.embedded == resumed.chunks - resumed.reused
    assert snapshot_ids(settings.index_dir) == sorted([live, resumed.snapshot])


def test_an_overlong_paragraph_is_split_into_windows_the_model_can_read(
    corpus: Settings, embedder: Embedder
) -> None:
    sentences = " ".join(
        f"Flood barrier number {i} was raised along the Sebou River overnight." for i in range(60)
    )
    (corpus.seeds_dir / "long.txt").write_text(
        f"Barriers Raised Along River\n\n{sentences}\n", encoding="utf-8"
    )
    build_index(corpus, embedder=embedder)
    searcher = Searcher.open(IndexStore(corpus.index_dir), embedder)
    windows = searcher.search(
        SearchRequest(
            query="flood barrier raised", k=100, mode="lexical", filters={"source": ["long.txt"]}
        )
    ).results
    assert len(windows) > 1
    assert all(embedder.count_tokens(w.text) <= embedder.max_tokens for w in windows)
    assert {w.position for w in windows} == {0}
    source = (corpus.seeds_dir / "long.txt").read_text(encoding="utf-8")
    assert all(source[w.start : w.end] == w.text for w in windows)
    assert " ".join(w.text for w in sorted(windows, key=lambda w: w.start)) == sentences


def test_a_snapshot_of_an_older_format_is_rebuilt_not_reused(
    corpus: Settings, embedder: Embedder
) -> None:
    first = build_index(corpus, embedder=embedder)
    manifest_file = corpus.index_dir / "snapshots" / first.snapshot / "manifest.json"
    older = json.loads(manifest_file.read_text()) | {"schema_version": 2}
    manifest_file.write_text(json.dumps(older))
    with pytest.raises(SnapshotError, match="rebuild with `python -m indexer build`"):
        IndexStore(corpus.index_dir).open_snapshot()

    again = build_index(corpus, embedder=embedder)
    assert again.published and again.parsed == 1 and again.computed == 0  # all from the cache
    assert again.sentences == first.sentences > 0
    request = SearchRequest(query="flood evacuations", k=1)
    searcher = Searcher.open(IndexStore(corpus.index_dir), embedder)
    assert searcher.search(request).results[0].published == "2026-02-01"
    searcher.close()


def imported_modules(importtime_log: str) -> set[str]:
    """The modules a ``python -X importtime`` run imported, from its stderr."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime_log.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_command_line_builds_import_only_what_they_use(tmp_path: Path) -> None:
    seeds = new_corpus(tmp_path / "seeds")
    args = ["-m", "indexer", "build", "--seeds", str(seeds), "--index", str(tmp_path / "index")]
    first = run_python(*args, "--json")
    assert first.returncode == 0, first.stderr
    unchanged = run_python("-X", "importtime", *args, "--json")
    assert unchanged.returncode == 0 and not json.loads(unchanged.stdout)["published"]
    imported = imported_modules(unchanged.stderr)
    assert "indexer.build" in imported  # the log was read
    # Nothing to write: no near-duplicate grouping (datasketch, scipy), no progress bar.
    assert not imported & {"datasketch", "scipy", "tqdm", "torch"}, imported
    (seeds / "volcano.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    added = run_python("-X", "importtime", *args, "--json")
    assert added.returncode == 0 and json.loads(added.stdout)["embedded"] == 2
    imported = imported_modules(added.stderr)
    assert "indexer.duplicates" in imported and not imported & {"tqdm", "torch"}, imported


def test_the_cache_gives_back_the_sentence_vectors_it_stored(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    spans = {"one": rng.standard_normal((1, 384)), "three": rng.standard_normal((3, 384))}
    with EmbeddingCache(tmp_path / "cache.sqlite", "f" * 64) as cache:
        vectors = rng.standard_normal((3, 384)).astype(np.float32)
        cache.put_many(["one", "three", "none"], vectors, spans)
        found = cache.get_spans(["one", "three", "none"])
    assert set(found) == {"one", "three"}
    for text, matrix in spans.items():
        assert found[text].dtype == np.float32 and found[text].shape == matrix.shape
        assert np.array_equal(found[text], matrix.astype(np.float16).astype(np.float32))
    # A matrix in another .npy layout than the cache writes (here float32, Fortran order)
    # still reads back.
    other = np.asfortranarray(rng.standard_normal((2, 384)).astype(np.float32))
    buffer = io.BytesIO()
    np.save(buffer, other)
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        db.execute(
            "INSERT INTO spans VALUES (?, ?, 0)", (cache_key("f" * 64, "other"), buffer.getvalue())
        )
    with EmbeddingCache(tmp_path / "cache.sqlite", "f" * 64) as cache:
        assert np.array_equal(cache.get_spans(["other"])["other"], other)
