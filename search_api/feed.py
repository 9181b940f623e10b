"""Atom 1.0 feeds of a search's newest matching articles (``GET /feed``): data in, bytes out.

Ids are name-based UUIDs (RFC 4122, version 5) written as ``urn:uuid:`` URNs: an entry's from
its article id, the feed's from its query and filters. They stay the same across rebuilds for
as long as the article ids do (a file's path, headline and its place among same-named
headlines), and need no domain name as ``tag:`` URIs would.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from search_api.models import SearchRequest, SearchResult

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml"
DEFAULT_ENTRIES = 20
# Fixed for good: every id ever handed to a feed reader is derived from it.
ID_NAMESPACE = uuid.UUID("6f1c4a1e-2d0b-5b7e-9a52-5eed5ea7c0de")
# Characters XML 1.0 cannot carry, in any escaping: most C0 controls and the non-characters.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_KEY_PARAMETER = re.compile(r"([?&]key=)[^&#\s]*")

ET.register_namespace("", ATOM)


@dataclass(frozen=True)
class FeedEntry:
    id: str
    title: str
    updated: str  # RFC 3339
    published: str | None  # RFC 3339, for dated articles
    link: str
    summary: str
    source: str


@dataclass(frozen=True)
class Feed:
    id: str
    title: str
    updated: str  # RFC 3339
    self_link: str
    page_link: str  # the same search on the page
    entries: tuple[FeedEntry, ...]


def article_url(base: str, article_id: str) -> str:
    """The search page showing the article."""
    return f"{base.rstrip('/')}/?article={quote(article_id, safe='')}"


def entry_id(article_id: str) -> str:
    return uuid.uuid5(ID_NAMESPACE, f"article:{article_id}").urn


def feed_id(request: SearchRequest) -> str:
    """The same query, mode and filters give the same id, whatever ``k`` and the order of
    the sources."""
    filters = request.filters
    identity = {
        "q": request.query, "mode": request.mode,
        "source": sorted(filters.source) if filters.source else None,
        "date_from": filters.date_from.isoformat() if filters.date_from else None,
        "date_to": filters.date_to.isoformat() if filters.date_to else None,
    }  # fmt: skip
    return uuid.uuid5(ID_NAMESPACE, "feed:" + json.dumps(identity, sort_keys=True)).urn


def day_time(day: str) -> str:
    """A publication day (YYYY-MM-DD) as an RFC 3339 time: its midnight UTC."""
    return f"{day}T00:00:00Z"


def search_parameters(request: SearchRequest) -> list[tuple[str, str]]:
    """The query string naming this feed's search (no ``k``, never a key)."""
    filters = request.filters
    parameters = [("q", request.query), ("mode", request.mode)]
    parameters += [("source", source) for source in filters.source or ()]
    for name, day in (("date_from", filters.date_from), ("date_to", filters.date_to)):
        if day is not None:
            parameters.append((name, day.isoformat()))
    return parameters


def feed_for(
    request: SearchRequest,
    results: Sequence[SearchResult],
    first_indexed: Mapping[str, str],
    built_at: str,
    base: str,
) -> Feed:
    """The feed of collapsed, date-sorted ``results``; an undated article's time is when its
    source file was first indexed (``first_indexed``, else the snapshot's ``built_at``)."""
    base = base.rstrip("/")
    entries = tuple(
        FeedEntry(
            id=entry_id(result.article_id), title=result.title,
            updated=(
                day_time(result.published)
                if result.published
                else first_indexed.get(result.source) or built_at
            ),
            published=day_time(result.published) if result.published else None,
            link=article_url(base, result.article_id), summary=result.text, source=result.source,
        )
        for result in results
    )  # fmt: skip
    parameters = search_parameters(request)
    return Feed(
        id=feed_id(request),
        title=f"seedsearch: {request.query}",
        updated=max((entry.updated for entry in entries), key=_instant, default=built_at),
        self_link=f"{base}/feed?{urlencode(parameters)}",
        page_link=f"{base}/?{urlencode([*parameters, ('sort', 'date')])}",
        entries=entries,
    )


def _instant(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> None:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    if text is not None:
        element.text = _text(text)


def render(feed: Feed) -> bytes:
    """The feed as an Atom 1.0 document in UTF-8."""
    root = ET.Element(f"{{{ATOM}}}feed")
    _add(root, "id", feed.id)
    _add(root, "title", feed.title)
    _add(root, "updated", feed.updated)
    author = ET.SubElement(root, f"{{{ATOM}}}author")
    _add(author, "name", "seedsearch")
    _add(root, "link", rel="self", type=MEDIA_TYPE, href=_text(feed.self_link))
    _add(root, "link", rel="alternate", type="text/html", href=_text(feed.page_link))
    _add(root, "generator", "seedsearch")
    for entry in feed.entries:
        element = ET.SubElement(root, f"{{{ATOM}}}entry")
        _add(element, "id", entry.id)
        _add(element, "title", entry.title)
        _add(element, "updated", entry.updated)
        if entry.published:
            _add(element, "published", entry.published)
        _add(element, "link", rel="alternate", type="text/html", href=_text(entry.link))
        _add(element, "summary", entry.summary, type="text")
        _add(element, "category", term=_text(entry.source), label="source")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def redact_key(target: str) -> str:
    """A request target with the value of any ``key`` parameter hidden."""
    return _KEY_PARAMETER.sub(r"\1***", target)


class KeyRedaction(logging.Filter):
    """Keeps the read key a feed URL carries out of uvicorn's access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn.access: (client, method, target, HTTP version, status).
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, target, version, status = record.args
            if isinstance(target, str) and "key=" in target:
                record.args = (client, method, redact_key(target), version, status)
        return True


KEY_REDACTION = KeyRedaction()
