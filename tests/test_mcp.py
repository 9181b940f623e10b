"""The MCP tools, driven by the SDK's own client over both transports (stdio: a child process
with a bare environment; streamable HTTP: /mcp on a real server), answer as the HTTP API does."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx
import httpx2
import pytest
from conftest import API_KEY, READ_KEY, ROOT, Server
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

Keyed = tuple[Server, Any]
# A query, and the same filters as /search parameters and as the tool's argument.
QUESTIONS: list[tuple[str, dict[str, str]]] = [
    ("flood evacuations", {}),
    ("people crossing", {"date_from": "2026-02-02"}),
]
K = 5
LEGACY_INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "test", "version": "0"}},
}  # fmt: skip
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _api(server: Server, path: str, **params: str | int) -> Any:
    answer = httpx.get(
        f"{server.url}{path}", params=params, headers={"X-API-Key": READ_KEY}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _expected_hits(server: Server, query: str, filters: dict[str, str]) -> list[tuple[Any, ...]]:
    """What GET /search?collapse=true answers: one passage per article, best first."""
    body = _api(server, "/search", q=query, k=K, collapse="true", **filters)
    assert body["results"], "the question must have answers to compare"
    return [(r["article_id"], r["title"], r["text"], r["published"]) for r in body["results"]]


def _expected_article(server: Server, article_id: str) -> dict[str, Any]:
    article = _api(server, f"/articles/{article_id}")
    return {
        "id": article_id, "title": article["title"], "published": article["published"],
        "text": "\n\n".join(passage["text"] for passage in article["passages"]),
        "metadata": {"source": article["source"], "passages": len(article["passages"])},
    }  # fmt: skip


async def _ask(client: Client) -> dict[str, Any]:
    """Every question's hits, a fetched article and a fetch of an unknown id."""
    tools = await client.list_tools()
    assert {tool.name for tool in tools.tools} == {"search", "fetch"}
    hits = {}
    for query, filters in QUESTIONS:
        arguments: dict[str, Any] = {"query": query, "k": K}
        if filters:
            arguments["filters"] = filters
        answer = await client.call_tool("search", arguments)
        assert not answer.is_error, answer.content
        assert answer.structured_content is not None
        hits[query] = answer.structured_content["results"]
    first = hits[QUESTIONS[0][0]][0]["id"]
    fetched = await client.call_tool("fetch", {"id": first})
    unknown = await client.call_tool("fetch", {"id": "no-such-article"})
    return {"hits": hits, "fetched": fetched, "unknown": unknown}


def _check(answers: dict[str, Any], server: Server, base: str) -> None:
    for query, filters in QUESTIONS:
        hits = answers["hits"][query]
        assert [(h["id"], h["title"], h["text"], h["published"]) for h in hits] == _expected_hits(
            server, query, filters
        )
        assert all(h["url"] == f"{base}/?article={h['id']}" for h in hits)
    fetched = answers["fetched"]
    assert not fetched.is_error, fetched.content
    document = fetched.structured_content
    assert document.pop("url") == f"{base}/?article={document['id']}"
    assert document == _expected_article(server, document["id"])
    unknown = answers["unknown"]
    assert unknown.is_error
    assert "no article 'no-such-article'" in unknown.content[0].text


def test_stdio_tools_answer_as_the_http_api(keyed_server: Keyed) -> None:
    server, _ = keyed_server
    # Only what the SDK hands every child (PATH, HOME, ...): the module sets HF_HUB_OFFLINE.
    command = StdioServerParameters(
        command=sys.executable, args=["-m", "search_api.mcp", "--index", str(server.index_dir)],
        cwd=ROOT,
    )  # fmt: skip

    async def talk() -> dict[str, Any]:
        async with Client(command, read_timeout_seconds=120) as client:
            return await _ask(client)

    _check(asyncio.run(talk()), server, "http://127.0.0.1:8000")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_http_tools_at_slash_mcp_answer_as_the_http_api(keyed_server: Keyed, mode: str) -> None:
    """``auto`` speaks the session-less protocol revision; ``legacy`` the initialize
    handshake, served statelessly."""
    server, _ = keyed_server

    async def talk() -> dict[str, Any]:
        async with (
            httpx2.AsyncClient(headers={"X-API-Key": READ_KEY}, timeout=60) as http,
            Client(
                streamable_http_client(f"{server.url}/mcp", http_client=http), mode=mode
            ) as client,
        ):
            return await _ask(client)

    _check(asyncio.run(talk()), server, server.url)


def test_slash_mcp_needs_the_read_or_admin_key_and_keeps_no_session(keyed_server: Keyed) -> None:
    server, _ = keyed_server
    for key, allowed in [(None, False), ("wrong", False), (READ_KEY, True), (API_KEY, True)]:
        headers = MCP_HEADERS | ({"X-API-Key": key} if key else {})
        answer = httpx.post(
            f"{server.url}/mcp", json=LEGACY_INITIALIZE, headers=headers, timeout=60
        )
        if allowed:
            assert answer.status_code == 200, answer.text
            # Stateless: any worker of --workers N can answer the client's next request.
            assert "mcp-session-id" not in answer.headers
        else:
            assert answer.status_code == 401
            assert answer.json() == {"detail": "missing or wrong X-API-Key header"}
