"""Hostile input against a real server: schemathesis generates requests from the app's own
OpenAPI schema and runs all its checks (no 5xx, every answer matches the schema, no
schema-valid request refused, no schema-violating one accepted), operation by operation and as
the command line runs them (with the stateful phase, which chains calls), then hand-picked edge
cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import Server
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from search_api.limits import MAX_BODY_BYTES, MAX_HEADER_BYTES

EXAMPLES_PER_OPERATION = 60  # x 8 operations x 2 modes
CLI_EXAMPLES_PER_OPERATION = 100
TESTS = Path(__file__).resolve().parent


def _inverted_dates(filters: Any) -> bool:
    """date_from after date_to: a rule across two fields that JSON Schema cannot state, so such
    a request is valid and matches nothing."""
    if not isinstance(filters, dict):
        return False
    start, end = filters.get("date_from"), filters.get("date_to")
    return isinstance(start, str) and isinstance(end, str) and start > end


@schemathesis.check
def an_inverted_date_range_matches_nothing(ctx: Any, response: Any, case: Any) -> None:
    """A search whose date_from is after its date_to: no results, and a note saying so."""
    if case.operation.path != "/search" or response.status_code != 200:
        return
    body = case.body if isinstance(case.body, dict) else {}
    if not _inverted_dates(case.query if case.method.upper() == "GET" else body.get("filters")):
        return
    answer = response.json()
    assert answer["results"] == [], "an inverted date range returned results"
    assert "date_from" in (answer.get("note") or ""), "an inverted date range has no note"


# Every operation of the schema (a test below checks that the list is complete).
OPERATIONS = [
    ("GET", "/search"), ("POST", "/search"), ("GET", "/healthz"), ("GET", "/stats"),
    ("GET", "/articles/{article_id}"), ("GET", "/articles/{article_id}/similar"),
    ("GET", "/metrics"), ("POST", "/admin/reindex"),
    ("GET", "/admin/reindex/{job_id}"), ("GET", "/feed"),
]  # fmt: skip


def _schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_every_operation_is_fuzzed(server: Server) -> None:
    operations = [result.ok() for result in _schema(server).get_all_operations()]
    listed = {(operation.method.upper(), operation.path) for operation in operations}
    assert listed == set(OPERATIONS)


# Invalid requests can only be made where some input has rules to break (any string is a
# valid article id or API key).
TAKES_INPUT = {("GET", "/search"), ("POST", "/search"), ("GET", "/feed")}
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in GenerationMode
    if mode == GenerationMode.POSITIVE or (method, path) in TAKES_INPUT
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_the_api_does_what_its_schema_says(
    server: Server, method: str, path: str, mode: GenerationMode
) -> None:
    """Requests generated from the schema, valid ones and invalid ones, each answered as the
    schema says. Bounded and reproducible: a fixed number of examples, derandomized."""
    operation = _schema(server)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    def check(case: Any) -> None:
        case.call_and_validate()

    check()


def test_schemathesis_run_with_every_check_and_phase_finds_no_failure(
    server: Server, tmp_path: Path
) -> None:
    """The command line's run: examples, coverage, fuzzing and the stateful phase (which
    follows links between operations, such as a search's article_id into /articles), with every
    check, this module's included. Seeded, so a failure can be replayed."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.url}/openapi.json",
            "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(CLI_EXAMPLES_PER_OPERATION), "--seed", "1",
            "--generation-database", "none", "--workers", "1", "--no-color",
        ],
        # This module is the hooks file too, so the run applies its check; it imports conftest.
        cwd=tmp_path, env={**os.environ, "SCHEMATHESIS_HOOKS": __file__, "PYTHONPATH": str(TESTS)},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "✅ Stateful" in done.stdout  # it ran (a schema without links would skip it)


def _post(server: Server, content: str | bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/search", content=content, timeout=60,
        headers={"content-type": "application/json", **headers},
    )  # fmt: skip


@pytest.mark.parametrize(
    "query",
    ["\x00flood", "flood \u200f\u202e evacuations", "🌊 flood 🚒", "e\u0301vacuation",
     "'; DROP TABLE chunks; --", 'flood" OR text MATCH "x', "NEAR(flood evacuations)",
     "\ufeff", "ﷺ" * 500],
)  # fmt: skip
def test_unicode_sql_and_fts5_in_queries_get_normal_answers(server: Server, query: str) -> None:
    answer = httpx.get(f"{server.url}/search", params={"q": query}, timeout=60)
    assert answer.status_code == 200 and answer.json()["query"] == query.strip()


def test_oversized_deep_or_broken_requests_are_4xx_and_the_server_carries_on(
    server: Server,
) -> None:
    deep = '{"query": "x", "filters": ' + "[" * 100_000 + "]" * 100_000 + "}"
    huge = json.dumps({"query": "x", "filters": {"source": ["a" * 1000] * 1000}})
    assert len(huge) > MAX_BODY_BYTES
    assert _post(server, deep).status_code in (400, 413, 422)
    refused = _post(server, huge)
    assert refused.status_code == 413 and str(MAX_BODY_BYTES) in refused.json()["detail"]
    streamed = httpx.post(
        f"{server.url}/search", content=(b"x" * 8192 for _ in range(20)), timeout=60,
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert streamed.status_code == 413
    assert _post(server, b'{"query": "\xff\xfe"}').status_code == 400
    headers = {"x-padding": "a" * (MAX_HEADER_BYTES + 1)}
    assert httpx.get(f"{server.url}/healthz", headers=headers, timeout=60).status_code == 431
    answer = httpx.get(f"{server.url}/search", params={"q": "flood evacuations"}, timeout=60)
    assert answer.status_code == 200 and answer.json()["results"]
