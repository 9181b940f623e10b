"""The index store: layout, publish, prune and typed reads. Real FAISS and SQLite; a
deterministic stand-in for the model, since nothing here depends on what vectors mean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, HashEmbedder, new_corpus

from indexer.build import build_index
from indexer.errors import (
    BuildLockedError,
    ConfigurationError,
    NoSnapshotError,
    QueryTimeoutError,
    SnapshotError,
)
from indexer.settings import Settings
from indexer.store import ChunkFilter, IndexStore

NEW_ARTICLE = "Volcano Erupts Near Iceland Fishing Town\n\nLava fountains lit up the sky.\n"


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index", **overrides
    )  # type: ignore[arg-type]


def rebuild_three_times(settings: Settings) -> list[str]:
    ids = []
    for round_number in range(3):
        (settings.seeds_dir / "volcano.txt").write_text(NEW_ARTICLE + f"\nUpdate {round_number}.\n")
        ids.append(build_index(settings, embedder=HashEmbedder()).snapshot)
    return ids


def test_snapshots_published_within_the_grace_period_are_not_pruned(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)  # the default grace: 60 s
    ids = rebuild_three_times(settings)
    assert IndexStore(settings.index_dir).snapshot_ids() == ids


def test_past_the_grace_period_only_the_live_and_previous_snapshots_stay(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, prune_grace_seconds=0)
    ids = rebuild_three_times(settings)
    store = IndexStore(settings.index_dir)
    assert store.snapshot_ids() == ids[1:] and store.current_id() == ids[-1]
    log = (settings.index_dir / "publish_log.jsonl").read_text()
    assert ids[0] not in log and ids[1] in log and ids[2] in log


def test_a_never_published_snapshot_left_by_a_killed_build_is_pruned(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first = build_index(settings, embedder=HashEmbedder()).snapshot
    leftover = settings.index_dir / "snapshots" / "20000101T000000000000Z"
    leftover.mkdir()
    (leftover / "vectors.faiss").write_bytes(b"partial")
    (settings.seeds_dir / "volcano.txt").write_text(NEW_ARTICLE)
    second = build_index(settings, embedder=HashEmbedder()).snapshot
    assert IndexStore(settings.index_dir).snapshot_ids() == [first, second]


def test_typed_reads_answer_lexical_filtered_and_highlight_queries(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    build_index(settings, embedder=HashEmbedder())
    snapshot = IndexStore(settings.index_dir).open_snapshot()
    try:
        found = snapshot.lexical(["evacuated"], depth=5)
        rows = snapshot.rows([row for row, _ in found])
        # Headline and text are both searched: "Morocco Evacuates ..." matches every passage.
        assert found and all("evacuat" in (rows[r].title + rows[r].text).lower() for r, _ in found)
        article = rows[found[0][0]].article_id
        only = ChunkFilter(article_ids=(article,))
        assert {
            snapshot.article_ids(snapshot.rows_passing(only) or [])[r]
            for r in snapshot.rows_passing(only) or []
        } == {article}
        assert snapshot.rows_passing(ChunkFilter()) is None
        assert snapshot.lexical(["evacuated"], 5, ChunkFilter(sources=("nowhere.txt",))) == []
        row = next(r for r, _ in found if "evacuated" in rows[r].text)
        text = rows[row].text
        highlighted = snapshot.highlighted_rows([row, *rows], ["evacuated"])
        chunk, spans = highlighted[row]
        assert chunk == rows[row] and set(highlighted) == set(rows)
        assert spans and all(text[s:e].lower().startswith("evacuat") for s, e in spans)
        other = next(iter(snapshot.rows_passing(ChunkFilter(excluded=("evacuated",))) or []))
        assert snapshot.highlighted_rows([other], ["evacuated"])[other][1] == []
        assert snapshot.lexical([], 5) == [] and snapshot.lexical(['"', "OR"], 5) is not None
    finally:
        snapshot.close()
    assert snapshot.closed


def test_reading_an_empty_root_or_a_damaged_snapshot_names_the_problem(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "none")
    assert store.is_empty() and store.current_id() is None
    with pytest.raises(NoSnapshotError, match="run python -m indexer build first"):
        store.open_snapshot()
    settings = settings_for(tmp_path)
    build_index(settings, embedder=HashEmbedder())
    store = IndexStore(settings.index_dir)
    vectors = settings.index_dir / "snapshots" / store.live_id() / "vectors.faiss"
    vectors.write_bytes(b"junk")
    with pytest.raises(SnapshotError, match=f"{store.live_id()}: vectors.faiss is 4 bytes"):
        store.open_snapshot()
    # Junk of the recorded size gets past the size check, and FAISS cannot read it.
    vectors.write_bytes(
        b"j" * next(f.size for f in store.manifest().data_files if f.name == vectors.name)
    )
    with pytest.raises(SnapshotError, match=f"cannot open snapshot {store.live_id()}"):
        store.open_snapshot()


def test_the_build_lock_admits_one_build(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    other = IndexStore(tmp_path / "index")
    with (
        store.build_lock(wait_seconds=0, notify=print),
        pytest.raises(BuildLockedError, match="another build is running"),
        other.build_lock(wait_seconds=0, notify=print),
    ):
        pass
    with store.build_lock(wait_seconds=0, notify=print):
        pass  # released: the next build takes it


def test_only_the_store_speaks_sql() -> None:
    statement = re.compile(r"\b(SELECT|INSERT|CREATE)\b")
    outside = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("indexer", "search_api", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        if "store" not in path.relative_to(ROOT).parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if statement.search(line)
    ]
    assert outside == []


def test_the_index_type_and_its_parameters_can_be_overridden(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, index_type="ivf", index_params={"nprobe": 4})
    build_index(settings, embedder=HashEmbedder())
    manifest = IndexStore(settings.index_dir).manifest()
    assert manifest.index_type == "ivf" and manifest.index_params["nprobe"] == 4
    snapshot = IndexStore(settings.index_dir).open_snapshot()
    try:
        vector = HashEmbedder().encode(["Stay indoors."])
        assert len(snapshot.nearest(vector, 10)) == 10
    finally:
        snapshot.close()


def test_an_unknown_index_parameter_is_a_configuration_error(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, index_type="hnsw", index_params={"nprobe": 4})
    with pytest.raises(ConfigurationError, match="hnsw index has no parameter nprobe"):
        build_index(settings, embedder=HashEmbedder())


def _cached(store: IndexStore, fingerprint: str, text: str) -> bool:
    with store.embedding_cache(fingerprint) as cache:
        return text in cache.get_many([text])


def test_the_cache_keeps_what_recent_snapshots_use_and_an_interrupted_builds_work(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, prune_grace_seconds=0, cache_keep_snapshots=2)
    model, store = HashEmbedder(), IndexStore(settings.index_dir)
    extra = settings.seeds_dir / "extra.txt"
    extra.write_text("Extra headline\n\nA passage only the extra file holds.\n")
    build_index(settings, embedder=model)
    extra.unlink()
    kept = build_index(settings, embedder=model)  # the previous snapshot still uses the text
    assert kept.cache_pruned == 0
    assert _cached(store, model.fingerprint, "A passage only the extra file holds.")
    # Left by a build killed after the last publish: spared, its next run needs it.
    with store.embedding_cache(model.fingerprint) as cache:
        cache.put_many(["half-built"], model.encode(["half-built"]))
    (settings.seeds_dir / "other.txt").write_text("Other headline\n\nAnother passage.\n")
    pruned = build_index(settings, embedder=model)
    assert pruned.cache_pruned == 1  # the extra file's passage: in neither of the last two
    assert not _cached(store, model.fingerprint, "A passage only the extra file holds.")
    assert _cached(store, model.fingerprint, "half-built")
    assert _cached(store, model.fingerprint, "Another passage.")
    (settings.seeds_dir / "other.txt").unlink()
    build_index(settings, embedder=model)  # now the half-built entry is old and unused
    assert not _cached(store, model.fingerprint, "half-built")


def test_a_damaged_embedding_cache_is_set_aside_and_the_build_says_so(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.index_dir.mkdir(parents=True)
    (settings.index_dir / "embeddings.sqlite").write_bytes(b"not a database" * 100)
    messages: list[str] = []
    report = build_index(settings, embedder=HashEmbedder(), notify=messages.append)
    assert report.published and report.embedded == report.chunks
    assert any("embedding cache" in m and "damaged" in m for m in messages)
    assert len(list(settings.index_dir.glob("embeddings.sqlite.damaged-*"))) == 1
    store = IndexStore(settings.index_dir)
    snapshot = store.open_snapshot()
    first_text = snapshot.embedded_texts()[0]
    snapshot.close()
    assert _cached(store, HashEmbedder.fingerprint, first_text)  # a sound cache again


def test_seed_folders_of_odd_shapes_build_and_report_each_problem(tmp_path: Path) -> None:
    """Link loops, names with spaces and non-ASCII characters, a file over the size limit and
    10,000 tiny files: each is reported or indexed, and the rest publishes."""
    settings = settings_for(tmp_path, max_file_mb=0.05)
    seeds = settings.seeds_dir
    (seeds / "loop").symlink_to(seeds, target_is_directory=True)
    named = seeds / "Über die Flut" / "März 2026 – Überschwemmung.txt"
    named.parent.mkdir()
    named.write_text("Rhein steigt\n\nDie Feuerwehr evakuiert die Altstadt.\n", encoding="utf-8")
    (seeds / "huge.txt").write_text("Huge\n\n" + "word " * 20_000)
    tiny = seeds / "tiny"
    tiny.mkdir()
    for number in range(10_000):
        (tiny / f"{number:05d}.txt").write_text(f"Note {number}\n\nShort note number {number}.\n")
    report = build_index(settings, embedder=HashEmbedder())
    assert report.published and report.files == 1 + 1 + 10_000
    errors = {e.file: e.error for e in report.errors}
    assert list(errors) == ["huge.txt"] and "SEEDSEARCH_MAX_FILE_MB" in errors["huge.txt"]
    sources = {f.path for f in IndexStore(settings.index_dir).manifest().files}
    assert "Über die Flut/März 2026 – Überschwemmung.txt" in sources
    assert not any(source.startswith("loop/") for source in sources)  # the loop is walked once


def test_a_read_past_its_time_limit_is_interrupted(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    notes = settings.seeds_dir / "notes"
    notes.mkdir()
    for number in range(3_000):
        (notes / f"{number}.txt").write_text(f"Note {number}\n\nA short note, number {number}.\n")
    build_index(settings, embedder=HashEmbedder())
    snapshot = IndexStore(settings.index_dir).open_snapshot()
    try:
        with snapshot.time_limit(10.0):
            assert len(snapshot.lexical(["note", "short"], 5000)) > 3000
            snapshot.check_time()
        with snapshot.time_limit(0.0), pytest.raises(QueryTimeoutError):
            snapshot.lexical(["note", "short"], 5000)  # SQLite stops it part-way
        with snapshot.time_limit(0.0), pytest.raises(QueryTimeoutError):
            snapshot.check_time()
        assert len(snapshot.lexical(["note"], 10)) == 10  # no limit outside the block
    finally:
        snapshot.close()
