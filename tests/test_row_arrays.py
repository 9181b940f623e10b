"""Per-snapshot row arrays: what every query looks up by row comes from memory-mapped files,
so a search runs at most two SQLite statements (three with filters)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import HashEmbedder
from test_related import REPUBLISHED, bbc_corpus

from indexer.build import build_index
from indexer.settings import Settings
from indexer.store import IndexStore, Snapshot
from search_api.models import Filters, SearchRequest
from search_api.searcher import Searcher

ROW_ARRAY_FILES = ("columns.npy", "columns.json", "sentence_spans.npy")
QUERIES = ["flood evacuations", "oil prices and the economy", "Morocco evacuates residents"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Seeds and five republished BBC pairs (near-duplicate groups), on the stand-in model."""
    root = tmp_path_factory.mktemp("row-arrays")
    names = [name for pair in REPUBLISHED for name in pair]
    settings = Settings(seeds_dir=bbc_corpus(root / "seeds", names), index_dir=root / "index")
    build_index(settings, embedder=HashEmbedder())
    return settings


@pytest.fixture
def searcher(built: Settings) -> Iterator[Searcher]:
    opened = Searcher.open(IndexStore(built.index_dir), HashEmbedder())
    try:
        yield opened
    finally:
        opened.close()


def _requests() -> list[SearchRequest]:
    """Requests that reach every stage: min_score 0 skips the stand-in model's "no good
    match" answer, explain and facets read every per-row array."""
    return [
        SearchRequest(
            query=q,
            mode=mode,
            min_score=0.0,
            k=20,
            explain=True,
            facets=["month", "source", "kind"],
        )
        for q in QUERIES
        for mode in ("hybrid", "dense", "lexical")
    ]


def test_the_mapped_arrays_hold_what_the_chunk_table_holds(searcher: Searcher) -> None:
    snapshot = searcher.snapshot
    mapped, from_table = snapshot.columns, snapshot._chunks.columns()
    for name in ("article", "group", "day", "month", "source", "kind"):
        assert isinstance(getattr(mapped, name), np.memmap)
        assert np.array_equal(getattr(mapped, name), getattr(from_table, name)), name
    for name in ("article_ids", "sources", "kinds"):
        assert getattr(mapped, name) == getattr(from_table, name)
    assert np.any(mapped.group != np.arange(len(mapped.group)))  # the republished pairs
    sentences = snapshot._chunks.all_sentences()
    spans = snapshot._sentences
    assert sentences and list(zip(spans.row, spans.start, spans.end, strict=True)) == sentences


def test_a_search_runs_two_statements_and_three_with_a_filter(searcher: Searcher) -> None:
    statements: list[str] = []

    def ours(statement: str) -> None:
        """Statements the store runs, not those FTS5 runs on its own tables for them."""
        if not statement.startswith(("--", "PRAGMA")) and "'main'." not in statement:
            statements.append(statement)

    db: sqlite3.Connection = searcher.snapshot._chunks._connection()
    db.set_trace_callback(ours)
    try:
        found = searcher.search(SearchRequest(query=QUERIES[0], min_score=0.0))
        assert found.results and any(r.highlights for r in found.results)
        assert len(statements) == 2, statements
        statements.clear()
        source = found.results[0].source
        filtered = searcher.search(
            SearchRequest(query=QUERIES[0], min_score=0.0, filters=Filters(source=[source]))
        )
        assert {r.source for r in filtered.results} == {source}
        assert len(statements) == 3, statements
    finally:
        db.set_trace_callback(None)


def test_duplicates_come_from_the_arrays_and_honour_filters(searcher: Searcher) -> None:
    columns = searcher.snapshot.columns
    group = int(columns.group[np.flatnonzero(columns.group != np.arange(len(columns.group)))[0]])
    members = searcher.snapshot.group_members([group])[group]
    assert len(members) >= 2 and members[0][0] == group
    sources = sorted({source for _, source in members})
    kept = searcher.snapshot.group_members([group], np.asarray([group]))[group]
    assert kept == [members[0]] and len(sources) == 2


def test_a_snapshot_from_before_row_arrays_answers_the_same(
    built: Settings, tmp_path: Path
) -> None:
    store = IndexStore(built.index_dir)
    with_arrays = Searcher.open(store, HashEmbedder())
    try:
        expected = [with_arrays.search(r).model_dump(exclude={"took_ms"}) for r in _requests()]
    finally:
        with_arrays.close()
    old = tmp_path / store.live_id()
    source = built.index_dir / "snapshots" / store.live_id()
    old.mkdir()
    for path in source.iterdir():
        if path.name not in ROW_ARRAY_FILES:
            (old / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["data_files"] = [f for f in manifest["data_files"] if f["name"] not in ROW_ARRAY_FILES]
    del manifest["row_arrays"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    snapshot = Snapshot(old)
    opened = Searcher(snapshot, HashEmbedder())
    try:
        assert not isinstance(snapshot.columns.group, np.memmap)  # read from the chunk table
        found = [opened.search(r).model_dump(exclude={"took_ms"}) for r in _requests()]
    finally:
        snapshot.close()
    assert found == expected
    assert any(answer["results"] for answer in found)


def test_a_closed_snapshot_holds_no_mapping(built: Settings) -> None:
    snapshot = IndexStore(built.index_dir).open_snapshot()
    assert len(snapshot.columns.article)
    snapshot.close()
    assert len(snapshot.columns.article) == 0


def test_the_next_build_writes_the_arrays_of_a_snapshot_from_before_them(tmp_path: Path) -> None:
    """Without embedding anything: a build finds the live snapshot's content outdated."""
    names = [name for pair in REPUBLISHED[:1] for name in pair]
    settings = Settings(seeds_dir=bbc_corpus(tmp_path / "seeds", names), index_dir=tmp_path / "i")
    old = build_index(settings, embedder=HashEmbedder()).snapshot
    directory = settings.index_dir / "snapshots" / old
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["row_arrays"]
    manifest["data_files"] = [f for f in manifest["data_files"] if f["name"] not in ROW_ARRAY_FILES]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    for name in ROW_ARRAY_FILES:
        (directory / name).unlink()
    store = IndexStore(settings.index_dir)
    store.open_snapshot().close()
    report = build_index(settings, embedder=HashEmbedder())
    assert report.published and report.embedded == 0 and store.manifest().row_arrays
    snapshot = store.open_snapshot()
    try:
        assert isinstance(snapshot.columns.group, np.memmap)
    finally:
        snapshot.close()
