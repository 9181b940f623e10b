"""The command-line scripts, run as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import ROOT, run_python

from indexer.settings import Settings
from indexer.store import IndexStore
from search_api.models import SearchRequest, SearchResponse
from search_api.searcher import Searcher

OFF_TOPIC = ROOT / "tests" / "data" / "off_topic_queries.txt"


def test_search_script_puts_the_flood_lead_in_the_top_three(seed_settings: Settings) -> None:
    done = run_python(
        "scripts/search.py", "flood evacuations", "--index", str(seed_settings.index_dir)
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.split("\n\n")[0]
    assert first.startswith("1. Morocco Evacuates 50,000") and "evacua" in first
    top_three = "\n\n".join(done.stdout.split("\n\n")[:3])
    assert "Morocco has evacuated more than 50,000 people" in top_three


def test_search_script_marks_the_evidence_and_shows_dates(
    seed_settings: Settings, searcher: Searcher
) -> None:
    args = ["scripts/search.py", "patients crossing Rafah", "-k", "3", "--date-from", "2026-02-02"]
    done = run_python(*args, "--index", str(seed_settings.index_dir))
    assert done.returncode == 0, done.stderr
    blocks = done.stdout.split("\n\n")[:-1]
    request = SearchRequest.model_validate(
        {"query": "patients crossing Rafah", "k": 3, "filters": {"date_from": "2026-02-02"}}
    )
    expected = searcher.search(request).results
    assert len(blocks) == len(expected) > 0
    for block, result in zip(blocks, expected, strict=True):
        assert block.splitlines()[1].strip().startswith("2026-02-02 · ")
        marked = " ".join(block.split("**")[1::2][0].split())  # pipes get ** rather than bold
        evidence = result.text[result.evidence[0].start : result.evidence[0].end]
        assert marked == " ".join(evidence.split())
    done = run_python(*args[:2], "--date-to", "2026-02-31", "--index", str(seed_settings.index_dir))
    assert done.returncode == 2 and "date_to" in done.stderr


def test_search_script_prints_the_api_json_shape(
    seed_settings: Settings, searcher: Searcher
) -> None:
    args = ["scripts/search.py", "Hezbollah disarmament", "-k", "2", "--mode", "dense", "--json"]
    done = run_python(*args, "--index", str(seed_settings.index_dir))
    assert done.returncode == 0, done.stderr
    response = SearchResponse.model_validate_json(done.stdout)
    assert response.mode == "dense" and [r.rank for r in response.results] == [1, 2]
    # The same passages, in the same order, as the searcher gives in-process.
    expected = searcher.search(SearchRequest(query="Hezbollah disarmament", k=2, mode="dense"))
    assert [r.chunk_id for r in response.results] == [r.chunk_id for r in expected.results]
    assert response.snapshot == IndexStore(seed_settings.index_dir).current_id()
    assert response.took_ms > 0


def test_search_script_without_an_index_prints_a_one_line_hint(tmp_path: Path) -> None:
    done = run_python("scripts/search.py", "flood", "--index", str(tmp_path / "missing"))
    assert done.returncode == 1
    assert done.stderr.strip().endswith("run python -m indexer build first")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_search_script_rejects_bad_arguments_clearly(seed_settings: Settings) -> None:
    done = run_python("scripts/search.py", "  ", "--index", str(seed_settings.index_dir))
    assert done.returncode == 2 and "query is empty" in done.stderr
    done = run_python(
        "scripts/search.py", "flood", "-k", "500", "--index", str(seed_settings.index_dir)
    )
    assert done.returncode == 2 and "less than or equal to 100" in done.stderr


def test_evaluate_reports_every_mode_above_a_quality_floor(
    seed_settings: Settings, seed_queries: Path
) -> None:
    done = run_python(
        "scripts/evaluate.py",
        "--queries",
        str(seed_queries),
        "--index",
        str(seed_settings.index_dir),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    reports = {r["mode"]: r for r in json.loads(done.stdout)}
    assert set(reports) == {"hybrid", "dense", "lexical"}
    # Regression floors a little under the figures in docs/quality.md (0.835 / 0.767 / 0.882).
    assert reports["hybrid"]["mrr_at_10"] >= 0.78
    assert reports["dense"]["mrr_at_10"] >= 0.70
    assert reports["lexical"]["mrr_at_10"] >= 0.80
    assert all(set(r["recall"]) == {"1", "5", "10"} for r in reports.values())


def _figures(value: object) -> list[float]:
    """Every number in a JSON value (dict keys aside), flattened."""
    if isinstance(value, dict):
        return [f for v in value.values() for f in _figures(v)]
    if isinstance(value, list):
        return [f for v in value for f in _figures(v)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [float(value)]
    return []


def test_evaluate_json_holds_every_figure_the_table_prints(
    seed_settings: Settings, seed_queries: Path
) -> None:
    args = ["scripts/evaluate.py", "--queries", str(seed_queries), "--off-topic", str(OFF_TOPIC)]
    args += ["--index", str(seed_settings.index_dir)]
    table, as_json = run_python(*args), run_python(*args, "--json")
    assert table.returncode == as_json.returncode == 0, table.stderr + as_json.stderr
    reports = json.loads(as_json.stdout)
    assert [r["mode"] for r in reports] == ["hybrid", "dense", "lexical"]
    for report in reports:
        mode = report["mode"]
        assert {"queries", "mrr_at_10", "recall", "missed", "no_match", "off_topic"} < set(report)
        assert report["off_topic"] == len(OFF_TOPIC.read_text().splitlines()) > 0
        assert report["no_match_recall"] == round(
            report["off_topic_no_match"] / report["off_topic"], 4
        )
        emptied = report["no_match"] + report["off_topic_no_match"]
        assert report["no_match_precision"] == round(report["off_topic_no_match"] / emptied, 4)
        printed = [
            line
            for line in table.stdout.splitlines()
            if line.startswith((f"| {mode} |", f"{mode}: ")) and "no relevant passage" not in line
        ]
        assert len(printed) == 2  # the table's row and the "no good match" line
        assert (
            f"(precision {report['no_match_precision']}, recall {report['no_match_recall']})"
            in printed[1]
        )
        figures = {
            round(f, 3) for f in _figures({k: v for k, v in report.items() if k != "missed"})
        }
        for number in re.findall(r"\d+(?:\.\d+)?", " ".join(printed)):
            assert round(float(number), 3) in figures, f"{mode}: {number} is not in the JSON"
        if report["missed"]:
            assert (
                f"{mode}: no relevant passage in the top 10 for {report['missed']}" in table.stdout
            )


def test_evaluate_with_an_unreadable_query_file_says_so(tmp_path: Path) -> None:
    done = run_python("scripts/evaluate.py", "--queries", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2 and "cannot read" in done.stderr and "nope.jsonl" in done.stderr


def test_a_blank_api_key_leaves_the_admin_api_disabled(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEEDSEARCH_API_KEY", "  ")
    assert Settings().api_key is None
    monkeypatch.setenv("SEEDSEARCH_API_KEY", "secret")
    key = Settings().api_key
    assert key is not None and key.get_secret_value() == "secret"


def test_search_script_says_when_nothing_matches_well(seed_settings: Settings) -> None:
    done = run_python(
        "scripts/search.py",
        "quantum chromodynamics lattice",
        "--index",
        str(seed_settings.index_dir),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no passage matches this query well")


def imported_modules(importtime_log: str) -> set[str]:
    """The modules a ``python -X importtime`` run imported, from its stderr."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime_log.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_a_local_search_imports_neither_the_http_client_nor_torch(
    seed_settings: Settings,
) -> None:
    index = str(seed_settings.index_dir)
    done = run_python("-X", "importtime", "scripts/search.py", "flood", "--index", index)
    assert done.returncode == 0, done.stderr
    imported = imported_modules(done.stderr)
    assert {"onnxruntime", "faiss", "search_api.searcher"} <= imported  # the log was read
    unneeded = {"httpx", "torch", "transformers", "sentence_transformers", "datasketch", "tqdm"}
    assert not imported & unneeded, imported & unneeded
    # Asking a service needs the HTTP client: this port has no server, so it says so.
    remote = run_python(
        "-X", "importtime", "scripts/search.py", "flood", "--api", "http://127.0.0.1:9"
    )
    assert remote.returncode == 1 and "httpx" in imported_modules(remote.stderr)
    assert "cannot reach http://127.0.0.1:9" in remote.stderr
