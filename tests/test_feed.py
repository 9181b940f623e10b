"""Topic feeds: GET /feed as a feed reader sees it (parsed by feedparser) on a real server over
a small dated BBC archive, across a rebuild that adds an article; the read key as a parameter;
the feed document, the first-indexed times and the public base URL as pure logic."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from conftest import READ_KEY, Server, dated_bbc_files, eventually, running_server

from indexer.build import build_index
from indexer.chunk import ChunkingParams
from indexer.embed import Embedder
from indexer.errors import ConfigurationError
from indexer.plan import SeedFile, plan_build
from indexer.settings import Settings, settings_from_flags
from indexer.store import IndexStore, Manifest, SourceFile
from search_api import feed
from search_api.models import SearchRequest, SearchResult

# Over the first 24 articles of the dated archive: two dated entertainment articles and one
# undated (entertainment-003), so the order and the undated rule both show.
TOPIC = "film awards"
OFF_TOPIC = "quantum chromodynamics lattice gauge"
NEWEST = "2026-03-01"  # after every date of the archive (which ends on 2026-02-02)
NEW_ARTICLE = f"""Film awards season opens with a surprise

{NEWEST}

The first film awards of the season went to a small independent film, a surprise to critics.

Its director thanked the actors and said the award would help the film reach more cinemas.
"""


def _feed(url: str, **params: Any) -> Any:
    answer = httpx.get(f"{url}/feed", params=params, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(feed.MEDIA_TYPE)
    parsed = feedparser.parse(answer.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


@dataclass(frozen=True)
class Archive:
    server: Server
    before: Any  # the topic's feed before the rebuild
    after: Any  # and after it
    first_built_at: str


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Archive]:
    """A server over 24 dated BBC articles; the topic's feed read, a newer article on the
    topic added and built in, and the feed read again once the server serves it."""
    root = tmp_path_factory.mktemp("feed")
    settings = Settings(seeds_dir=root / "seeds", index_dir=root / "index")
    dated_bbc_files(settings.seeds_dir, 24, paragraphs=2)
    build_index(settings, embedder=embedder)
    first = IndexStore(settings.index_dir).manifest()
    environment = {"SEEDSEARCH_RELOAD_INTERVAL_SECONDS": "0.2"}
    with running_server(settings.index_dir, root / "server.log", environment) as (url, _):
        before = _feed(url, q=TOPIC)
        # The rebuild's clock past the first build's second, so a time it copied from the
        # first build differs from one it took itself.
        built = datetime.datetime.fromisoformat(first.built_at)
        assert eventually(lambda: datetime.datetime.now(datetime.UTC) >= built
                          + datetime.timedelta(seconds=1), 5)  # fmt: skip
        (settings.seeds_dir / "zz-new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        snapshot = build_index(settings, embedder=embedder).snapshot
        assert eventually(lambda: httpx.get(f"{url}/stats").json()["snapshot"] == snapshot, 30)
        after = _feed(url, q=TOPIC)
        yield Archive(Server(url, settings.seeds_dir, settings.index_dir), before, after,
                      first.built_at)  # fmt: skip


def _times(parsed: Any) -> list[datetime.datetime]:
    return [datetime.datetime.fromisoformat(entry.updated) for entry in parsed.entries]


def _dated(parsed: Any) -> list[Any]:
    return [entry for entry in parsed.entries if entry.get("published")]


def test_a_topic_feed_lists_its_articles_newest_first_and_the_undated_last(
    archive: Archive,
) -> None:
    entries = archive.before.entries
    dated = _dated(archive.before)
    assert len(dated) >= 2 and len(entries) > len(dated)
    assert entries[: len(dated)] == dated  # the undated ones last
    times = _times(archive.before)[: len(dated)]
    assert times == sorted(times, reverse=True)
    assert len({entry.id for entry in entries}) == len(entries)  # one entry per article
    for entry in entries:
        assert entry.title and entry.summary and entry.id.startswith("urn:uuid:")
        assert entry.link.startswith(f"{archive.server.url}/?article=")
    assert (
        archive.before.feed.updated
        == max(entries, key=lambda e: datetime.datetime.fromisoformat(e.updated)).updated
    )


def test_an_entry_links_to_its_article_on_the_page(archive: Archive) -> None:
    entry = archive.before.entries[0]
    article_id = entry.link.rpartition("=")[2]
    article = httpx.get(f"{archive.server.url}/articles/{article_id}", timeout=30).json()
    assert article["title"] == entry.title
    assert feed.entry_id(article_id) == entry.id
    assert any(p["text"] == entry.summary for p in article["passages"])


def test_a_rebuild_keeps_the_ids_and_a_newer_article_comes_first(archive: Archive) -> None:
    before = [entry.id for entry in archive.before.entries]
    after = [entry.id for entry in archive.after.entries]
    assert after[1:] == before
    newest = archive.after.entries[0]
    assert newest.title == "Film awards season opens with a surprise"
    assert newest.updated.startswith(NEWEST)
    assert archive.after.feed.id == archive.before.feed.id


def test_an_undated_article_keeps_its_time_across_a_rebuild(archive: Archive) -> None:
    undated = [entry for entry in archive.before.entries if not entry.get("published")]
    assert undated
    times = {entry.id: entry.updated for entry in archive.after.entries}
    for entry in undated:
        assert entry.updated == archive.first_built_at == times[entry.id]


def test_k_limits_the_entries_and_a_source_filter_applies(archive: Archive) -> None:
    assert len(_feed(archive.server.url, q=TOPIC, k=1).entries) == 1
    source = archive.after.entries[-1].tags[0].term
    only = _feed(archive.server.url, q=TOPIC, source=source)
    assert [entry.id for entry in only.entries] == [archive.after.entries[-1].id]
    assert only.feed.id != archive.after.feed.id


def test_a_query_with_no_good_match_is_an_empty_feed(archive: Archive) -> None:
    empty = _feed(archive.server.url, q=OFF_TOPIC)
    assert empty.entries == [] and empty.feed.updated and empty.feed.id
    assert _feed(archive.server.url, q=TOPIC, date_from="2026-01-01", date_to="2025-01-01")


def test_bad_parameters_are_422_with_a_message(archive: Archive) -> None:
    for params in [{}, {"q": " "}, {"q": TOPIC, "k": "101"}, {"q": TOPIC, "date_to": "May"}]:
        answer = httpx.get(f"{archive.server.url}/feed", params=params, timeout=30)
        assert answer.status_code == 422 and answer.json()["detail"]


def test_the_read_key_opens_the_feed_as_a_parameter_and_only_the_feed(
    keyed_server: tuple[Server, Path],
) -> None:
    server, log = keyed_server
    url = f"{server.url}/feed"
    assert httpx.get(url, params={"q": "flood"}, timeout=30).status_code == 401
    assert httpx.get(url, params={"q": "flood", "key": "wrong"}, timeout=30).status_code == 401
    opened = httpx.get(url, params={"q": "flood", "key": READ_KEY}, timeout=60)
    assert opened.status_code == 200 and feedparser.parse(opened.content).entries
    by_header = httpx.get(url, params={"q": "flood"}, headers={"X-API-Key": READ_KEY}, timeout=60)
    assert by_header.status_code == 200
    search = httpx.get(f"{server.url}/search", params={"q": "flood", "key": READ_KEY}, timeout=30)
    assert search.status_code == 401
    # The access log shows the request, not the key.
    assert eventually(lambda: "key=***" in log.read_text(encoding="utf-8", errors="replace"), 10)
    assert READ_KEY not in log.read_text(encoding="utf-8", errors="replace")


def test_the_schema_declares_the_feed_and_its_key_parameter(archive: Archive) -> None:
    schema = httpx.get(f"{archive.server.url}/openapi.json", timeout=30).json()
    operation = schema["paths"]["/feed"]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"q", "k", "mode", "source", "date_from", "date_to", "key"} <= names
    assert feed.MEDIA_TYPE in operation["responses"]["200"]["content"]
    assert "key" not in {p["name"] for p in schema["paths"]["/search"]["get"]["parameters"]}


# ---- pure logic -------------------------------------------------------------------------


def _result(article_id: str, published: str | None, source: str = "a.txt") -> SearchResult:
    return SearchResult.model_validate(
        {"rank": 1, "score": 0.5, "chunk_id": "c" + article_id, "article_id": article_id,
         "title": f"Headline {article_id}", "text": "A passage\x00 with a NUL.", "source": source,
         "kind": "paragraph", "position": 0, "start": 0, "end": 10, "published": published,
         "highlights": [], "evidence": [], "duplicates": 0, "duplicate_sources": []}
    )  # fmt: skip


def test_the_feed_document_is_valid_atom_even_for_control_characters() -> None:
    request = SearchRequest(query="flood\x00 \u200f evacuations")
    results = [_result("a1", "2026-02-01"), _result("a2", None, "b.txt")]
    document = feed.feed_for(request, results, {"b.txt": "2026-11-01T10:00:00+00:00"},
                             "2026-11-30T00:00:00+00:00", "https://news.example/search/")  # fmt: skip
    parsed = feedparser.parse(feed.render(document))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [entry.updated for entry in parsed.entries] == [
        "2026-02-01T00:00:00Z", "2026-11-01T10:00:00+00:00"
    ]  # fmt: skip
    assert parsed.entries[0].link == "https://news.example/search/?article=a1"
    assert parsed.feed.updated == "2026-11-01T10:00:00+00:00"
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links["self"].startswith("https://news.example/search/feed?q=flood")


def test_the_feed_id_names_the_query_and_filters_not_k_or_the_order_of_sources() -> None:
    def request(**fields: Any) -> SearchRequest:
        return SearchRequest.model_validate({"query": "flood", **fields})

    two = {"source": ["a.txt", "b.txt"]}
    assert feed.feed_id(request(filters=two, k=5)) == feed.feed_id(
        request(filters={"source": ["b.txt", "a.txt"]}, k=50)
    )
    assert feed.feed_id(request()) != feed.feed_id(request(mode="dense"))
    assert feed.feed_id(request()) != feed.feed_id(request(filters={"date_from": "2026-01-01"}))
    assert feed.entry_id("a1") == feed.entry_id("a1") != feed.entry_id("a2")


def test_the_access_log_never_shows_a_key_parameter() -> None:
    assert feed.redact_key("/feed?q=x&key=secret&k=2") == "/feed?q=x&key=***&k=2"
    assert feed.redact_key("/feed?key=secret") == "/feed?key=***"
    assert feed.redact_key("/feed?monkey=1") == "/feed?monkey=1"


def test_each_file_keeps_the_time_it_was_first_indexed() -> None:
    params = ChunkingParams(max_tokens=254, embed_title=False)
    seeds = [SeedFile("a.txt", "1" * 64), SeedFile("b.txt", "2" * 64)]
    plan = plan_build(None, {}, seeds, params, "f" * 64, {"a.txt": "2026-01-01T00:00:00+00:00"},
                      "2026-11-30T00:00:00+00:00")  # fmt: skip
    assert [step.first_indexed for step in plan.files] == [
        "2026-01-01T00:00:00+00:00", "2026-11-30T00:00:00+00:00"
    ]  # fmt: skip


def test_a_manifest_from_before_first_indexed_times_reads_as_its_build_time() -> None:
    manifest = Manifest(
        snapshot_id="s1", model_name="m", model_fingerprint="f", dimension=8, chunking={},
        index_type="flat", files=[SourceFile("a.txt", "1" * 64, 1, 1)], articles=1, chunks=1,
        built_at="2026-11-28T00:00:00+00:00",
    )  # fmt: skip
    old = asdict(manifest)
    del old["files"][0]["first_indexed"]
    read = Manifest.from_json(json.dumps(old))
    assert read.files[0].first_indexed == "2026-11-28T00:00:00+00:00"


def test_the_public_base_url_is_an_http_address() -> None:
    assert settings_from_flags(public_base_url="https://news.example/").public_base_url == (
        "https://news.example"
    )
    with pytest.raises(ConfigurationError, match="public-base-url"):
        settings_from_flags(public_base_url="news.example")
