"""The build's quality gate, with the real model and the seed dev queries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SEED_FILE, bbc_files, new_corpus, run_python

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.errors import EXIT_GATE, EXIT_USAGE, GateRefusedError
from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.gate import mrr_gate

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
    gate = mrr_gate(seed_queries, embedder, tolerance=0.02, no_match_threshold=0.3)
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
    gate = mrr_gate(seed_queries, embedder, tolerance=0.02, no_match_threshold=0.3)
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
    gate = mrr_gate(seed_queries, embedder, tolerance=0.02, no_match_threshold=0.3)
    report = build_index(settings, embedder=embedder, gate=gate)
    assert report.published and report.gate is not None and report.gate.passed
    assert "no live snapshot" in report.gate.message and report.gate.candidate > 0.8
