"""The HTTP contract, against a real uvicorn process serving the seed index."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API_KEY, Server, run_python

from indexer.store import IndexStore
from search_api.models import MAX_QUERY_CHARS, SearchResponse
from search_api.timing import STAGES, parse_server_timing

RESULT_FIELDS = {
    "rank",
    "score",
    "chunk_id",
    "article_id",
    "title",
    "text",
    "source",
    "kind",
    "position",
    "published",
    "highlights",
    "evidence",
    "duplicates",
    "duplicate_sources",
}
RELOAD_SECONDS = 60


def get(server: Server, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, timeout=30)  # type: ignore[arg-type]


def post(server: Server, path: str, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", timeout=120, **kwargs)  # type: ignore[arg-type]


def test_get_search_answers_with_the_documented_shape(server: Server) -> None:
    response = get(server, "/search", q="flood evacuations", k=3)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "query", "mode", "took_ms", "snapshot", "total", "total_articles", "total_is_lower_bound",
        "results",
    }  # fmt: skip
    assert body["query"] == "flood evacuations" and body["mode"] == "hybrid"
    assert len(body["results"]) == 3
    assert all(set(result) >= RESULT_FIELDS for result in body["results"])
    assert body["results"][0]["title"].startswith("Morocco Evacuates")
    assert any(r["text"].startswith("Morocco has evacuated") for r in body["results"])


def test_every_search_says_where_its_time_went_in_server_timing(server: Server) -> None:
    answers = [
        get(server, "/search", q="flood evacuations in Morocco", k=3),
        post(server, "/search", json={"query": "fuel subsidies protests", "mode": "dense"}),
        get(server, "/search", q="sourdough starter hydration ratio"),  # no good match
    ]
    for response in answers:
        assert response.status_code == 200
        stages = parse_server_timing(response.headers["server-timing"])
        assert list(stages) == list(STAGES) and all(ms >= 0 for ms in stages.values())
        # took_ms covers every stage but serialize, measured the same way, inside it.
        assert sum(stages.values()) - stages["serialize"] <= response.json()["took_ms"] + 0.01
    hybrid, dense, off_topic = (parse_server_timing(r.headers["server-timing"]) for r in answers)
    assert hybrid["encode"] > 0 and hybrid["lexical"] > 0 and hybrid["fetch"] > 0
    assert dense["lexical"] == 0 and dense["fetch"] > 0
    assert answers[2].json()["note"] and off_topic["dense"] > 0 == off_topic["lexical"]


def test_post_search_takes_filters_collapse_and_highlight(server: Server) -> None:
    first = get(server, "/search", q="Hezbollah disarmament", k=1).json()["results"][0]
    body = {"query": "Lebanese army deployment", "k": 5, "mode": "dense",
            "filters": {"article_id": [first["article_id"]]},
            "collapse": True, "highlight": True}  # fmt: skip
    response = post(server, "/search", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 1 and results[0]["article_id"] == first["article_id"]
    assert response.json()["mode"] == "dense"


@pytest.mark.parametrize(
    "params",
    [{"q": ""}, {"q": "   "}, {"q": "x" * (MAX_QUERY_CHARS + 1)}, {"q": "flood", "k": 0},
     {"q": "flood", "k": 101}, {"q": "flood", "k": "ten"}, {"q": "flood", "k": 2.5},
     {"q": "flood", "mode": "fuzzy"}, {}, {"q": "flood", "min_score": "high"},
     {"q": "flood", "min_score": "nan"}, {"q": "flood", "min_score": "inf"},
     {"q": "flood", "date_from": "2026-02-30"}, {"q": "flood", "date_to": "02/01/2026"},
     {"q": "flood", "dedupe": "perhaps"}],
)  # fmt: skip
def test_bad_query_parameters_get_a_422_with_a_message(
    server: Server, params: dict[str, object]
) -> None:
    response = get(server, "/search", **params)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def test_an_inverted_date_range_matches_nothing_and_says_why(server: Server) -> None:
    """No schema can say date_from <= date_to, so the request is valid: an empty answer."""
    by_get = get(server, "/search", q="flood", date_from="2026-02-02", date_to="2026-02-01")
    by_post = post(server, "/search", json={
        "query": "flood", "filters": {"date_from": "2026-02-02", "date_to": "2026-02-01"}})  # fmt: skip
    for response in (by_get, by_post):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["results"] == []
        assert "date_from 2026-02-02 is after date_to 2026-02-01" in body["note"]


@pytest.mark.parametrize(
    "content",
    ['{"query": "flood"', "not json", "[]", '{"query": 5}', '{"query": "flood", "k": "3"}',
     '{"query": "flood", "k": true}', '{"query": "flood", "mode": null}', '{"query": "flood", "colour": 1}',
     '{"query": "flood", "filters": {"source": 7}}', '{"query": "flood", "collapse": "maybe"}',
     '{"query": "flood \\ud800"}', '{"query": "flood", "min_score": NaN}',
     '{"query": "flood", "filters": {"source": []}}',
     '{"query": "flood", "filters": {"date_from": "2026-13-01"}}',
     '{"query": "flood", "date_from": "2026-02-01"}',
     '{"query": "flood", "filters": {"source": [' + ", ".join(['"a"'] * 101) + "]}}"],
)  # fmt: skip
def test_bad_json_bodies_get_a_422_with_a_message(server: Server, content: str) -> None:
    response = post(
        server, "/search", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_dates_filter_over_get_and_post_and_every_result_says_when(server: Server) -> None:
    by_get = get(server, "/search", q="people crossing", k=10, date_from="2026-02-02").json()
    by_post = post(server, "/search", json={
        "query": "people crossing", "k": 10, "filters": {"date_from": "2026-02-02"}}).json()  # fmt: skip
    assert [r["chunk_id"] for r in by_get["results"]] == [r["chunk_id"] for r in by_post["results"]]
    assert by_get["results"] and all(r["published"] == "2026-02-02" for r in by_get["results"])
    # min_score 0 lets in passages of articles that give no date.
    everything = get(server, "/search", q="people crossing", k=20, min_score=0).json()["results"]
    assert {r["published"] for r in everything} >= {"2026-02-02", None}
    for result in everything:
        assert isinstance(result["evidence"], list) and result["evidence"]
        assert result["duplicates"] == 0 and result["duplicate_sources"] == []


def test_unknown_routes_and_methods_are_4xx(server: Server) -> None:
    assert get(server, "/nope").status_code == 404
    assert httpx.delete(f"{server.url}/search").status_code == 405


def test_health_stats_docs_and_page(server: Server) -> None:
    health = get(server, "/healthz").json()
    stats = get(server, "/stats").json()
    assert health["status"] == "ok" and health["snapshot"] == stats["snapshot"]
    assert stats["chunks"] >= 46 and stats["dimension"] == 384 and stats["index_type"] == "flat"
    assert "/search" in get(server, "/openapi.json").json()["paths"]
    assert get(server, "/docs").status_code == 200
    page = get(server, "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_metrics_count_requests_by_route_and_status(server: Server) -> None:
    get(server, "/search", q="")
    get(server, "/search", q="dam water", k=2)
    text = get(server, "/metrics").text
    assert 'seedsearch_requests_total{method="GET",route="/search",status="422"}' in text
    assert 'seedsearch_requests_total{method="GET",route="/search",status="200"}' in text
    assert (
        'seedsearch_request_seconds_bucket{le="0.005",method="GET",route="/search",status="200"}'
        in text
    )
    assert "seedsearch_index_chunks " in text


def test_admin_reindex_requires_the_api_key(server: Server) -> None:
    assert post(server, "/admin/reindex").status_code == 401
    assert post(server, "/admin/reindex", headers={"X-API-Key": "wrong"}).status_code == 401
    response = post(server, "/admin/reindex", headers={"X-API-Key": API_KEY})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] == "running" and response.headers["location"].endswith(job["job"])
    assert get(server, response.headers["location"]).status_code == 401
    finished = wait_for_rebuild(server, job["job"])
    assert finished["state"] == "succeeded", finished
    assert {"snapshot", "embedded", "reused", "errors"} <= set(finished["report"])
    missing = httpx.get(f"{server.url}/admin/reindex/nope", headers={"X-API-Key": API_KEY})
    assert missing.status_code == 404


def wait_for_rebuild(server: Server, job: str) -> dict[str, Any]:
    """Poll a rebuild started through the API until it ends (bounded)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state: dict[str, Any] = httpx.get(
            f"{server.url}/admin/reindex/{job}", headers={"X-API-Key": API_KEY}, timeout=30
        ).json()
        if state["state"] != "running":
            return state
        time.sleep(0.1)
    raise TimeoutError(f"rebuild {job} still running")


def test_admin_reindex_refuses_to_queue_behind_a_running_build(server: Server) -> None:
    with IndexStore(server.index_dir).build_lock(wait_seconds=0, notify=print):
        response = post(server, "/admin/reindex", headers={"X-API-Key": API_KEY})
    assert response.status_code == 409
    assert "another build is running" in response.json()["detail"]


def wait_for_new_snapshot(server: Server, old: str) -> str:
    deadline = time.monotonic() + RELOAD_SECONDS
    while time.monotonic() < deadline:
        current = get(server, "/stats").json()["snapshot"]
        if current != old:
            return str(current)
        time.sleep(0.1)
    raise TimeoutError("the server did not pick up the new snapshot")


def test_a_rebuild_in_another_process_is_served_without_a_restart(server: Server) -> None:
    before = get(server, "/stats").json()["snapshot"]
    (server.seeds_dir / "glacier.txt").write_text(
        "Glacier Collapse Buries Alpine Village\n\n"
        "A hanging glacier collapsed above the Swiss village of Blatten, burying homes under ice and mud.\n",
        encoding="utf-8",
    )
    done = run_python(
        "-m",
        "indexer",
        "build",
        "--seeds",
        str(server.seeds_dir),
        "--index",
        str(server.index_dir),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["embedded"] == 1
    assert wait_for_new_snapshot(server, before) == json.loads(done.stdout)["snapshot"]
    top = get(server, "/search", q="glacier collapse village", k=1).json()["results"][0]
    assert "Blatten" in top["text"]


def test_no_request_fails_while_snapshots_swap(server: Server) -> None:
    before = get(server, "/stats").json()["snapshot"]
    statuses: list[int] = []
    snapshots: list[str] = []
    rebuilt_event = threading.Event()
    (server.seeds_dir / "glacier.txt").write_text(
        "Glacier Update\n\nMeltwater lakes are being drained.\n"
    )

    def search_across_the_swap() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            after_swap = 0
            for _ in range(2000):  # bounded; stops 20 searches after the rebuild ended
                answer = client.get("/search", params={"q": "glacier meltwater", "k": 3})
                statuses.append(answer.status_code)
                snapshots.append(answer.json().get("snapshot", ""))
                after_swap += rebuilt_event.is_set()
                if after_swap >= 20:
                    return

    searching = threading.Thread(target=search_across_the_swap)
    searching.start()
    while not statuses and searching.is_alive():
        time.sleep(0.01)
    answers = [post(server, "/admin/reindex", headers={"X-API-Key": API_KEY})]
    wait_for_rebuild(server, answers[0].json()["job"])
    time.sleep(0.5)  # past the server's 0.2 s reload interval
    rebuilt_event.set()
    searching.join(timeout=RELOAD_SECONDS)
    assert snapshots[0] == before and snapshots[-1] != before
    assert set(statuses) == {200}
    [answer] = answers
    assert answer.status_code == 202, answer.text
    rebuilt = wait_for_rebuild(server, answer.json()["job"])["report"]
    assert rebuilt["published"] and rebuilt["embedded"] == 1 and rebuilt["snapshot"] != before
    assert get(server, "/stats").json()["snapshot"] == rebuilt["snapshot"]


def test_search_script_queries_a_running_service(server: Server) -> None:
    done = run_python(
        "scripts/search.py", "flood evacuations", "-k", "3", "--json", "--api", server.url
    )
    assert done.returncode == 0, done.stderr
    response = SearchResponse.model_validate_json(done.stdout)
    assert response.results[0].title.startswith("Morocco Evacuates")
    text = run_python("scripts/search.py", "flood evacuations", "--api", server.url)
    assert text.returncode == 0 and "1. Morocco Evacuates" in text.stdout


def test_evaluate_script_measures_a_running_service(server: Server, seed_queries: Path) -> None:
    done = run_python(
        "scripts/evaluate.py",
        "--queries",
        str(seed_queries),
        "--mode",
        "hybrid",
        "--api",
        server.url,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    assert report["queries"] == 20 and report["mrr_at_10"] > 0.6


def test_an_off_topic_query_is_answered_with_a_note_and_no_results(server: Server) -> None:
    body = get(server, "/search", q="quantum chromodynamics lattice").json()
    assert body["results"] == [] and body["note"] == "no passage matches this query well"
    explicit = get(server, "/search", q="quantum chromodynamics lattice", min_score=-1).json()
    assert explicit["results"] and "note" not in explicit


def test_explain_and_offset_travel_as_query_parameters(server: Server) -> None:
    body = get(server, "/search", q="flood evacuations", k=2, offset=1, explain="true").json()
    assert [r["rank"] for r in body["results"]] == [2, 3]
    assert set(body["results"][0]["explain"]) == {
        "dense_score", "dense_rank", "lexical_score", "lexical_rank", "article_boost", "fused_score",
        "recency_factor",
    }  # fmt: skip
    assert get(server, "/search", q="flood", offset=-1).status_code == 422
    assert get(server, "/search", q="flood", offset=901).status_code == 422


def test_a_result_can_be_read_in_its_article(server: Server) -> None:
    hit = get(server, "/search", q="Hezbollah disarmament", k=1).json()["results"][0]
    article = get(server, f"/articles/{hit['article_id']}").json()
    assert article["title"] == hit["title"] and article["source"] == hit["source"]
    assert hit["chunk_id"] in [p["chunk_id"] for p in article["passages"]]
    assert len(article["passages"]) == 13
    positions = [p["position"] for p in article["passages"]]
    assert positions == sorted(positions)
    missing = get(server, "/articles/0000000000000000")
    assert missing.status_code == 404 and "no article" in missing.json()["detail"]


def test_facets_travel_repeated_or_comma_separated_and_count_the_total(server: Server) -> None:
    repeated = httpx.get(
        f"{server.url}/search",
        params=[("q", "flood evacuations"), ("facets", "month"), ("facets", "source"),
                ("facets", "kind")],
    ).json()  # fmt: skip
    commas = get(server, "/search", q="flood evacuations", facets="month,source,kind").json()
    posted = post(
        server, "/search",
        json={"query": "flood evacuations", "facets": ["month", "source", "kind"]},
    ).json()  # fmt: skip
    assert repeated["facets"] == commas["facets"] == posted["facets"]
    assert set(commas["facets"]) == {"month", "source", "kind"}
    for counts in commas["facets"].values():
        assert sum(c["count"] for c in counts) == commas["total"] > 0
    assert "facets" not in get(server, "/search", q="flood evacuations").json()
    assert get(server, "/search", q="flood", facets="month,colour").status_code == 422


def test_sort_and_recency_travel_as_query_parameters(server: Server) -> None:
    plain = get(server, "/search", q="people crossing into Egypt", k=50).json()
    newest = get(server, "/search", q="people crossing into Egypt", k=50, sort="date").json()
    recent = get(
        server, "/search", q="people crossing into Egypt", k=50, recency_half_life_days=30,
        explain="true",
    ).json()  # fmt: skip
    assert plain["total"] == newest["total"] == recent["total"]
    ids = sorted(r["chunk_id"] for r in plain["results"])
    assert sorted(r["chunk_id"] for r in newest["results"]) == ids
    dates = [r["published"] or "" for r in newest["results"]]
    dated = [d for d in dates if d]
    assert dated == sorted(dated, reverse=True) and dates[: len(dated)] == dated
    assert all("recency_factor" in r["explain"] for r in recent["results"])
    for bad in ({"sort": "oldest"}, {"recency_half_life_days": 0}, {"recency_half_life_days": -3}):
        assert get(server, "/search", q="flood", **bad).status_code == 422
