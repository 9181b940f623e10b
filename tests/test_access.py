"""Access control on a real server with SEEDSEARCH_READ_KEY set: reads need the read key (or
the admin key), /healthz and /metrics stay open, the keys never show, CORS only for the
configured origin, and the scripts send the key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import API_KEY, CORS_ORIGIN, READ_KEY, Server, run_python

Keyed = tuple[Server, Path]


def _get(server: Server, path: str, key: str | None = None, **params: str) -> httpx.Response:
    headers = {"X-API-Key": key} if key is not None else {}
    return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "path", ["/search?q=flood", "/stats", "/articles/nope", "/openapi.json", "/healthz"]
)
def test_reads_need_the_read_or_the_admin_key(keyed_server: Keyed, path: str) -> None:
    server, _ = keyed_server
    route, _, query = path.partition("?")
    params = dict([query.split("=")]) if query else {}
    open_route = route in ("/openapi.json", "/healthz")
    for key, allowed in [(None, open_route), ("wrong", open_route), (READ_KEY, True),
                         (API_KEY, True)]:  # fmt: skip
        answer = _get(server, route, key, **params)
        if allowed:
            assert answer.status_code in (200, 404), (key, answer.text)
        else:
            assert answer.status_code == 401
            assert answer.json() == {"detail": "missing or wrong X-API-Key header"}


def test_the_read_key_does_not_open_the_admin_api(keyed_server: Keyed) -> None:
    server, _ = keyed_server
    answer = httpx.post(f"{server.url}/admin/reindex", headers={"X-API-Key": READ_KEY}, timeout=30)
    assert answer.status_code == 401


def test_the_keys_never_show_in_answers_metrics_or_logs(keyed_server: Keyed) -> None:
    server, log = keyed_server
    seen = [
        _get(server, "/search", READ_KEY, q="flood").text,
        _get(server, "/stats", API_KEY).text,
        _get(server, "/metrics").text,
        _get(server, "/search", "wrong").text,
        log.read_text(encoding="utf-8", errors="replace"),
    ]
    assert _get(server, "/metrics").status_code == 200
    assert not any(key in text for key in (READ_KEY, API_KEY) for text in seen)


def test_cors_answers_only_the_configured_origin(keyed_server: Keyed) -> None:
    server, _ = keyed_server
    for origin, allowed in [(CORS_ORIGIN, True), ("http://evil.example", False)]:
        answer = httpx.options(
            f"{server.url}/search", timeout=30,
            headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "X-API-Key"},
        )  # fmt: skip
        granted = answer.headers.get("access-control-allow-origin")
        assert (granted == origin) == allowed


def test_the_scripts_send_the_key(keyed_server: Keyed) -> None:
    server, _ = keyed_server
    args = ["scripts/search.py", "flood evacuations", "--api", server.url]
    refused = run_python(*args, env={"SEEDSEARCH_READ_KEY": "", "SEEDSEARCH_API_KEY": ""})
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: {server.url} needs a key: pass --api-key or set SEEDSEARCH_READ_KEY"
    )
    done = run_python(*args, "--api-key", READ_KEY)
    assert done.returncode == 0 and done.stdout.startswith("1. Morocco Evacuates")
    by_variable = run_python(*args, env={"SEEDSEARCH_READ_KEY": READ_KEY})
    assert by_variable.returncode == 0
