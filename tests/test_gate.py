"""The build's quality gate, with the real model (and the stand-in, as the model before a
change) and the seed dev queries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import (
    SEED_FILE,
    STAND_IN_RULES,
    HashEmbedder,
    bbc_files,
    new_corpus,
    run_python,
)

from indexer.build import Gate, build_index
from indexer.embed import Embedder
from indexer.errors import EXIT_GATE, EXIT_USAGE, GateRefusedError, SnapshotError
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.gate import mrr_gate
from search_api.matching import MatchRules

VOLCANO = "Volcano Erupts Near Iceland Fishing Town\n\nLava fountains lit up the sky.\n"


@pytest.fixture
def live(tmp_path: Path, embedder: Embedder) -> Settings:
    settings = Settings(
        seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index",
        prune_grace_seconds=0,
    )  # fmt: skip
    build_index(settings, embedder=embedder)
    return settings


def test_a_snapshot_as_good_as_the_live_one_publishes(
    live: Settings, embedder: Embedder, seed_queries: Path
) -> None:
    (live.seeds_dir / "volcano.txt").write_text(VOLCANO)
    gate = mrr_gate(
        seed_queries, embedder, tolerance=0.02, rules=MatchRules(no_match_threshold=0.3)
    )
    report = build_index(live, embedder=embedder, gate=gate)
    assert report.published and report.gate is not None and report.gate.passed
    assert report.gate.live is not None and report.gate.candidate >= report.gate.live - 0.02
    assert IndexStore(live.index_dir).current_id() == report.snapshot


def test_a_snapshot_that_loses_the_answers_is_not_published(
    live: Settings, embedder: Embedder, seed_queries: Path
) -> None:
    store = IndexStore(live.index_dir)
    before = store.current_id()
    (live.seeds_dir / SEED_FILE.name).unlink()  # the articles the dev queries ask about
    for path in bbc_files(3):
        shutil.copy(path, live.seeds_dir / path.name)
    gate = mrr_gate(
        seed_queries, embedder, tolerance=0.02, rules=MatchRules(no_match_threshold=0.3)
    )
    with pytest.raises(GateRefusedError, match="not published"):
        build_index(live, embedder=embedder, gate=gate)
    assert store.current_id() == before and store.snapshot_ids() == [before]


def test_the_command_line_exits_3_on_refusal_and_2_on_a_bad_gate_file(
    live: Settings, seed_queries: Path, tmp_path: Path
) -> None:
    args = [
        "-m",
        "indexer",
        "build",
        "--seeds",
        str(live.seeds_dir),
        "--index",
        str(live.index_dir),
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    done = run_python(*args, "--gate", str(bad))
    assert done.returncode == EXIT_USAGE and "bad.jsonl, line 1" in done.stderr
    before = IndexStore(live.index_dir).current_id()
    (live.seeds_dir / SEED_FILE.name).unlink()
    for path in bbc_files(3):
        shutil.copy(path, live.seeds_dir / path.name)
    done = run_python(*args, "--gate", str(seed_queries), "--json")
    assert done.returncode == EXIT_GATE, done.stderr
    assert "not published" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert IndexStore(live.index_dir).current_id() == before
    done = run_python(*args, "--gate", str(seed_queries), "--gate-tolerance", "1", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["gate"]["passed"] is True


def test_with_no_live_snapshot_the_gate_publishes_and_says_so(
    tmp_path: Path, embedder: Embedder, seed_queries: Path
) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    gate = mrr_gate(
        seed_queries, embedder, tolerance=0.02, rules=MatchRules(no_match_threshold=0.3)
    )
    report = build_index(settings, embedder=embedder, gate=gate)
    assert report.published and report.gate is not None and report.gate.passed
    assert "no live snapshot" in report.gate.message and report.gate.candidate > 0.8


def stand_in_gate(queries: Path) -> Gate:
    return mrr_gate(queries, HashEmbedder(), 0.02, STAND_IN_RULES)


def test_the_gate_records_its_figure_beside_the_snapshot_and_verify_checks_it(
    tmp_path: Path, seed_queries: Path
) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    report = build_index(settings, embedder=HashEmbedder(), gate=stand_in_gate(seed_queries))
    store = IndexStore(settings.index_dir)
    record = store.gate_record(report.snapshot)
    assert report.gate is not None and record is not None
    assert record.mrr_at_10 == round(report.gate.candidate, 6) and record.tolerance == 0.02
    assert record.model_fingerprint == HashEmbedder.fingerprint
    assert store.verify().snapshot_id == report.snapshot
    verify = ("-m", "indexer", "verify", "--index", str(settings.index_dir))
    done = run_python(*verify)
    assert done.returncode == 0 and f"gate.json: MRR@10 {record.mrr_at_10:.3f}" in done.stdout
    gate_file = settings.index_dir / "snapshots" / report.snapshot / "gate.json"
    gate_file.write_text(gate_file.read_text().replace(report.snapshot, "20990101T000000Z"))
    with pytest.raises(SnapshotError, match=r"gate\.json belongs to another snapshot"):
        store.verify()
    done = run_python(*verify)
    assert done.returncode == 1 and "gate.json belongs to another snapshot" in done.stderr
    gate_file.write_text("{")
    with pytest.raises(SnapshotError, match=r"gate\.json is damaged"):
        store.verify()


@pytest.fixture
def gated_stand_in(tmp_path: Path, seed_queries: Path) -> Settings:
    """A live snapshot built and gated with the stand-in model, as before a model change."""
    settings = Settings(
        seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index",
        prune_grace_seconds=0,
    )  # fmt: skip
    build_index(settings, embedder=HashEmbedder(), gate=stand_in_gate(seed_queries))
    return settings


def test_after_a_model_change_the_gate_compares_with_the_recorded_figure(
    gated_stand_in: Settings, embedder: Embedder, seed_queries: Path
) -> None:
    store = IndexStore(gated_stand_in.index_dir)
    before = store.live_id()
    recorded = store.gate_record(before)
    assert recorded is not None and recorded.mrr_at_10 > 0.1  # the stand-in finds some answers
    # The bundled model over articles that do not answer the queries: worse than recorded.
    (gated_stand_in.seeds_dir / SEED_FILE.name).unlink()
    for path in bbc_files(3):
        shutil.copy(path, gated_stand_in.seeds_dir / path.name)
    gate = mrr_gate(
        seed_queries, embedder, tolerance=0.02, rules=MatchRules(no_match_threshold=0.3)
    )
    with pytest.raises(GateRefusedError, match="recorded when the live snapshot was gated"):
        build_index(gated_stand_in, embedder=embedder, gate=gate)
    assert store.current_id() == before
    # With the answers back, the bundled model beats the recorded figure and publishes.
    for path in bbc_files(3):
        (gated_stand_in.seeds_dir / path.name).unlink()
    shutil.copy(SEED_FILE, gated_stand_in.seeds_dir / SEED_FILE.name)
    report = build_index(gated_stand_in, embedder=embedder, gate=gate)
    assert report.published and report.gate is not None and report.gate.passed
    assert report.gate.live == recorded.mrr_at_10 and report.gate.candidate > recorded.mrr_at_10


def test_without_a_comparable_figure_the_gate_publishes_and_says_why(
    tmp_path: Path, gated_stand_in: Settings, embedder: Embedder, seed_queries: Path
) -> None:
    other_queries = tmp_path / "other.jsonl"
    other_queries.write_text(seed_queries.read_text().splitlines()[0] + "\n")
    gate = mrr_gate(
        other_queries, embedder, tolerance=0.02, rules=MatchRules(no_match_threshold=0.3)
    )
    report = build_index(gated_stand_in, embedder=embedder, gate=gate)
    assert report.published and report.gate is not None and report.gate.live is None
    assert "published without a comparison" in report.gate.message
    assert "gated with another query file" in report.gate.message
    never_gated = Settings(
        seeds_dir=gated_stand_in.seeds_dir, index_dir=tmp_path / "never-gated"
    )  # fmt: skip
    build_index(never_gated, embedder=HashEmbedder())
    report = build_index(never_gated, embedder=embedder, gate=gate)
    assert report.published and report.gate is not None and "never gated" in report.gate.message


def test_after_a_model_change_the_command_line_says_in_one_line_why_it_published(
    tmp_path: Path, seed_queries: Path
) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "index")
    build_index(settings, embedder=HashEmbedder())
    args = ["-m", "indexer", "build", "--seeds", str(settings.seeds_dir),
            "--index", str(settings.index_dir), "--gate", str(seed_queries)]  # fmt: skip
    done = run_python(*args)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stdout.splitlines() if "gate:" in line]
    assert len(said) == 1 and "published without a comparison" in said[0], done.stdout
