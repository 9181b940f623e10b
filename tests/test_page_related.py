"""The page's "Related coverage" under an article, in headless Chromium (see tests/test_page.py)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from playwright.sync_api import Page, expect
from test_page import browser, page, pytestmark, wait_for_results

__all__ = ["browser", "page", "pytestmark"]  # the browser fixtures and marks of test_page.py


def similar(server: str, article: str) -> list[dict[str, object]]:
    address = f"{server}/articles/{urllib.parse.quote(article)}/similar"
    with urllib.request.urlopen(address, timeout=30) as response:
        articles: list[dict[str, object]] = json.load(response)["articles"]
    return articles


def test_an_articles_view_links_its_related_coverage(page: Page, live_server: str) -> None:
    page.goto(live_server + "/?q=Hezbollah%20disarmament")
    wait_for_results(page)
    first = page.locator("#results > li").first
    first.get_by_role("button", name="Read the article").click()
    related = first.get_by_role("region", name="Related coverage")
    links = related.locator(".related-link")
    expect(links.first).to_be_visible()
    href = first.locator(".article-link").get_attribute("href")
    assert href is not None
    article = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["article"][0]
    expected = similar(live_server, article)
    expect(links).to_have_text([str(a["title"]) for a in expected])
    first.get_by_role("button", name="Hide the article").click()
    expect(first.locator(".related")).to_have_count(0)

    page.goto(live_server + href)  # the article on its own lists them too, and links on
    links = page.locator("#article-view .related-link")
    expect(links).to_have_count(len(expected))
    links.first.click()
    expect(page).to_have_url(live_server + "/?article=" + str(expected[0]["article_id"]))
    expect(page.locator("#article-view-title")).to_have_text(str(expected[0]["title"]))
