"""Every command line: one line naming what to fix, the documented exit codes, never a
traceback; and the model names a user may configure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest
from conftest import HashEmbedder, dated_bbc_files, free_port, new_corpus, run_python

from indexer.build import build_index
from indexer.embed import Embedder, packaged_model_path
from indexer.errors import EXIT_FAILURE, EXIT_USAGE, ModelError, UsageError
from indexer.settings import Settings, settings_to_environment
from indexer.store import IndexStore
from search_api.beir import check_beir_index, corpus_label

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def one_line_error(done: object) -> str:
    stderr = done.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
    return str(stderr)


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_a_hub_id_missing_from_the_cache_says_no_hub_is_reachable(empty_hub_cache: Path) -> None:
    with pytest.raises(ModelError, match="no model hub is reachable") as raised:
        Embedder(HUB_ID)
    assert "not found" not in str(raised.value) and "SEEDSEARCH_MODEL" in str(raised.value)


def test_a_hub_id_in_the_local_cache_resolves_to_its_files(empty_hub_cache: Path) -> None:
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = empty_hub_cache / "models--sentence-transformers--all-MiniLM-L6-v2"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(packaged_model_path(), repo / "snapshots" / revision)
    cached = Embedder(HUB_ID)
    assert cached.name == HUB_ID and cached.local_path == repo / "snapshots" / revision
    assert cached.fingerprint == Embedder().fingerprint  # the same weights: vectors may mix


def test_a_missing_model_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model folder not found: \./no-such-model"):
        Embedder("./no-such-model")


def test_the_build_names_an_uncached_hub_model_in_one_line(
    tmp_path: Path, empty_hub_cache: Path
) -> None:
    done = run_python(
        "-m", "indexer", "build", "--model", "acme/not-cached", "--seeds",
        str(new_corpus(tmp_path / "seeds")), "--index", str(tmp_path / "index"),
        env={"HF_HUB_CACHE": str(empty_hub_cache)},
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    assert "no model hub is reachable" in one_line_error(done)
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_a_bad_port_flag_is_named_as_the_flag(tmp_path: Path) -> None:
    done = run_python("-m", "search_api", "--port", "70000", "--index", str(tmp_path))
    assert done.returncode == EXIT_USAGE
    message = one_line_error(done)
    assert "--port" in message and "SEEDSEARCH_PORT" not in message


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_server_names_a_missing_model_before_serving(
    seed_settings: Settings, workers: str
) -> None:
    """With several workers the model is checked in a passing child process, so the
    supervisor never holds one; the error still arrives as one line."""
    done = run_python(
        "-m", "search_api", "--index", str(seed_settings.index_dir), "--port", str(free_port()),
        "--model", "./no-such-model", "--workers", workers,
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    assert "model folder not found: ./no-such-model" in one_line_error(done)


def test_one_server_process_refuses_an_inherited_metrics_folder(seed_settings: Settings) -> None:
    """prometheus_client would switch to file mode and sum leftover files from other runs."""
    done = run_python(
        "-m", "search_api", "--index", str(seed_settings.index_dir), "--port", str(free_port()),
        env={"PROMETHEUS_MULTIPROC_DIR": str(seed_settings.index_dir.parent / "metrics")},
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    assert "PROMETHEUS_MULTIPROC_DIR is set" in one_line_error(done)


def test_a_bad_port_variable_is_named_as_the_variable(tmp_path: Path) -> None:
    done = run_python(
        "-m", "search_api", "--index", str(tmp_path), env={"SEEDSEARCH_PORT": "70000"}
    )
    assert done.returncode == EXIT_USAGE
    assert "SEEDSEARCH_PORT" in one_line_error(done)


def test_a_configuration_error_is_not_reported_as_an_unreadable_query_file(
    tmp_path: Path, seed_queries: Path
) -> None:
    done = run_python(
        "scripts/evaluate.py", "--queries", str(seed_queries), "--index", str(tmp_path),
        env={"SEEDSEARCH_EXACT_SEARCH_LIMIT": "many"},
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    message = one_line_error(done)
    assert "SEEDSEARCH_EXACT_SEARCH_LIMIT" in message and "cannot read" not in message


def test_an_unreadable_index_is_not_reported_as_an_unreadable_query_file(
    tmp_path: Path, seed_queries: Path
) -> None:
    (tmp_path / "CURRENT").write_text("20990101T000000000000Z\n")
    done = run_python(
        "scripts/evaluate.py", "--queries", str(seed_queries), "--index", str(tmp_path)
    )
    assert done.returncode == EXIT_FAILURE
    message = one_line_error(done)
    assert "snapshot 20990101T000000000000Z" in message and str(seed_queries) not in message


def test_a_bad_query_line_is_named_with_its_file_in_one_line(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"query": "flood", "relevant": ["x"]}\n{"query": "", "relevant": ["x"]}\n')
    done = run_python("scripts/evaluate.py", "--queries", str(queries), "--index", str(tmp_path))
    assert done.returncode == EXIT_USAGE
    message = one_line_error(done)
    assert "queries.jsonl, line 2" in message and "query is empty" in message


def tiny_beir(folder: Path) -> Path:
    folder.mkdir()
    documents = [
        {"_id": "d1", "title": "Dam bursts", "text": "Floodwater swept through the valley."},
        {"_id": "d2", "title": "Budget vote", "text": "Parliament approved the spending plan."},
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in documents))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "flood valley"}) + "\n")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return folder


def test_a_beir_run_never_touches_an_index_it_did_not_build(tmp_path: Path) -> None:
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=tmp_path / "live")
    live = build_index(settings, embedder=HashEmbedder()).snapshot
    done = run_python(
        "scripts/evaluate.py", "--beir", str(tiny_beir(tmp_path / "bench")),
        "--index", str(settings.index_dir),
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    assert "did not build" in one_line_error(done)
    store = IndexStore(settings.index_dir)
    assert store.current_id() == live and store.snapshot_ids() == [live]


def test_a_beir_index_is_reused_only_for_the_folder_that_built_it(tmp_path: Path) -> None:
    bench = tiny_beir(tmp_path / "bench")
    store = IndexStore(tmp_path / "beir-index")
    check_beir_index(store, bench)  # empty: fine
    settings = Settings(seeds_dir=new_corpus(tmp_path / "seeds"), index_dir=store.root)
    build_index(settings, embedder=HashEmbedder(), corpus_label=corpus_label(bench))
    check_beir_index(store, bench)  # built from this folder: fine
    with pytest.raises(UsageError, match="did not build"):
        check_beir_index(store, tiny_beir(tmp_path / "other"))
    manifest = store.root / "snapshots" / store.current_id() / "manifest.json"  # type: ignore[operator]
    manifest.write_text(manifest.read_text().replace('"schema_version": 3', '"schema_version": 2'))
    with pytest.raises(UsageError, match=r"cannot check .*snapshot schema 2"):
        check_beir_index(store, bench)


def test_evaluate_builds_a_beir_folder_into_an_empty_index(tmp_path: Path) -> None:
    index = tmp_path / "beir-index"
    done = run_python(
        "scripts/evaluate.py", "--beir", str(tiny_beir(tmp_path / "bench")),
        "--index", str(index), "--mode", "dense", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    assert report["queries"] == 1 and report["ndcg_at_10"] == 1.0
    assert IndexStore(index).manifest().corpus == corpus_label(tmp_path / "bench")


def test_status_counts_the_articles_that_carry_a_date(tmp_path: Path) -> None:
    """Of twelve archive articles, the twelfth has no dateline."""
    seeds = tmp_path / "seeds"
    dated_bbc_files(seeds, 12, paragraphs=1)
    build_index(Settings(seeds_dir=seeds, index_dir=tmp_path / "index"), embedder=HashEmbedder())
    done = run_python("-m", "indexer", "status", "--index", str(tmp_path / "index"))
    assert done.returncode == 0, done.stderr
    assert "12 articles (11 dated)" in done.stdout
    as_json = run_python("-m", "indexer", "status", "--index", str(tmp_path / "index"), "--json")
    status = json.loads(as_json.stdout)
    assert status["articles"] == 12 and status["dated_articles"] == 11


def test_index_settings_come_from_the_environment_as_json(tmp_path: Path) -> None:
    args = ["-m", "indexer", "build", "--seeds", str(new_corpus(tmp_path / "seeds"))]
    done = run_python(
        *args, "--index", str(tmp_path / "index"),
        env={"SEEDSEARCH_INDEX_TYPE": "flat", "SEEDSEARCH_INDEX_PARAMS": '{"nprobe": 4}'},
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    assert "flat index has no parameter nprobe" in one_line_error(done)


def test_settings_travel_to_worker_processes_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        index_dir=tmp_path / "index", port=9001, workers=2, api_key="key",  # type: ignore[arg-type]
        index_params={"nprobe": 8}, index_type="ivf", precision="int8",
    )  # fmt: skip
    for name, value in settings_to_environment(settings).items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings
