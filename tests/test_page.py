"""The search page at GET /, driven in headless Chromium against a live server.

Uses Debian's chromium (/usr/bin/chromium) through Playwright; ``playwright install`` is never
needed. The ``live_server`` fixture (tests/conftest.py) gives the base URL of a uvicorn process
serving an index built from seeds/.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import READ_KEY
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 30_000  # the first query may wait for the model

pytestmark = [
    pytest.mark.browser,
    # Skipped only on a developer machine without Chromium; in CI (.ci/run installs it) a missing
    # browser must fail, not pass silently.
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK) and not os.environ.get("CI"),
        reason=f"{CHROMIUM} is not installed (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def wait_for_results(page: Page) -> None:
    expect(page.locator("#results > li").first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_have_text(re.compile(r"^\d+ results? in \d+ ms$"))


def test_enter_searches_and_highlights(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    page.locator("#q").fill("flood evacuations")
    page.locator("#q").press("Enter")
    wait_for_results(page)

    first = page.locator("#results > li").first
    expect(first.locator(".result-title")).to_contain_text("Morocco")
    expect(first.locator(".result-text")).to_contain_text(re.compile("evacuat", re.IGNORECASE))
    expect(page.locator("#results mark").first).to_be_visible()
    expect(first.locator(".meta-score .meta-value")).to_have_text(re.compile(r"^-?\d+\.\d{3}$"))
    expect(page).to_have_url(re.compile(r"[?&]q=flood(\+|%20)evacuations(&|$)"))
    expect(page.locator("#hint")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()


def test_empty_query_shows_hint_not_error(page: Page, live_server: str) -> None:
    searches: list[str] = []
    page.on("request", lambda request: "/search" in request.url and searches.append(request.url))
    page.goto(live_server + "/")
    expect(page.locator("#hint")).to_be_visible()

    page.locator("#q").fill("   ")
    page.locator("#q").press("Enter")
    expect(page.locator("#hint")).to_be_visible()
    expect(page.locator("#hint")).to_contain_text("flood evacuations")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#error")).to_have_text("")
    expect(page.locator("#results > li")).to_have_count(0)
    assert searches == [], "an empty query must not call the API"


def test_shareable_url_runs_the_search(page: Page, live_server: str) -> None:
    page.goto(live_server + "/?q=Hezbollah%20disarmament")
    expect(page.locator("#q")).to_have_value("Hezbollah disarmament")
    wait_for_results(page)
    expect(page.locator("#results")).to_contain_text("Hezbollah")
    expect(page.locator("#mode")).to_have_value("hybrid")


def test_stats_shows_chunk_count(page: Page, live_server: str) -> None:
    stats = get_json(live_server + "/stats")
    page.goto(live_server + "/")
    expect(page.locator("#stats")).to_contain_text(re.compile(rf"\b{stats['chunks']} passages?\b"))
    expect(page.locator("#stats")).to_contain_text(stats["snapshot"])


def test_keyboard_only(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    focused = ""
    for _ in range(10):
        focused = page.evaluate("document.activeElement && document.activeElement.id")
        if focused == "q":
            break
        page.keyboard.press("Tab")
    assert focused == "q", "Tab never reached the query box"

    page.keyboard.type("flood evacuations")
    page.keyboard.press("Enter")
    wait_for_results(page)
    expect(page.locator("#results > li").first.locator(".result-title")).to_contain_text("Morocco")

    # The next stops are the mode selector and the Search button, in that order.
    page.keyboard.press("Tab")
    expect(page.locator("#mode")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#submit")).to_be_focused()


def test_no_horizontal_scroll_on_a_phone(page: Page, live_server: str) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(live_server + "/?q=flood%20evacuations")
    wait_for_results(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page is {width}px wide at a 375px viewport"


def test_the_api_docs_render_without_a_cdn(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/search").first).to_be_visible()


def test_an_off_topic_query_says_nothing_matches_well(page: Page, live_server: str) -> None:
    page.goto(live_server + "/?q=quantum%20chromodynamics%20lattice")
    expect(page.locator("#status")).to_contain_text("No passage matches this query well")
    expect(page.locator("#results > li")).to_have_count(0)
    expect(page.locator("#error")).to_be_hidden()


def test_a_result_opens_in_its_article_with_the_hit_marked(page: Page, live_server: str) -> None:
    page.goto(live_server + "/?q=Hezbollah%20disarmament")
    wait_for_results(page)
    first = page.locator("#results > li").first
    first.get_by_role("button", name="Read the article").click()
    expect(first.locator(".article > li")).to_have_count(13)
    hit = first.locator(".article .hit")
    expect(hit).to_have_count(1)
    expect(hit).to_have_attribute("aria-current", "true")
    expect(hit).to_have_text(first.locator(".result-text").inner_text())
    first.get_by_role("button", name="Hide the article").click()
    expect(first.locator(".article")).to_have_count(0)


def test_the_answering_sentence_is_bold_and_every_result_shows_its_date(
    page: Page, live_server: str
) -> None:
    api = get_json(live_server + "/search?q=patients%20crossing%20Rafah&k=10")["results"]
    page.goto(live_server + "/?q=patients%20crossing%20Rafah")
    wait_for_results(page)
    items = page.locator("#results > li")
    expect(items).to_have_count(len(api))
    for index, result in enumerate(api):
        item = items.nth(index)
        sentences = [result["text"][e["start"] : e["end"]] for e in result["evidence"]]
        expect(item.locator("strong.evidence")).to_have_text(sentences)
        expect(item.locator(".meta-published .meta-value")).to_have_text(
            result["published"] or "date unknown"
        )


def test_the_date_range_filters_results_and_travels_in_the_url(
    page: Page, live_server: str
) -> None:
    page.goto(live_server + "/?q=people%20leaving")
    wait_for_results(page)
    expect(
        page.locator(".meta-published .meta-value", has_text="date unknown").first
    ).to_be_visible()
    page.locator("#date-from").fill("2026-02-02")
    page.locator("#date-from").dispatch_event("change")
    expect(page).to_have_url(re.compile(r"[?&]date_from=2026-02-02(&|$)"))
    wait_for_results(page)
    dates = page.locator(".meta-published .meta-value")
    expect(dates.first).to_have_text("2026-02-02")
    assert set(dates.all_inner_texts()) == {"2026-02-02"}
    page.reload()
    wait_for_results(page)
    expect(page.locator("#date-from")).to_have_value("2026-02-02")


def test_the_page_asks_for_the_read_key_and_keeps_it_for_the_tab(
    page: Page, keyed_server: tuple[Any, Any]
) -> None:
    server, _ = keyed_server
    page.goto(server.url + "/?q=flood%20evacuations")
    expect(page.locator("#key-form")).to_be_visible(timeout=TIMEOUT_MS)
    page.locator("#api-key").fill("not the key")
    page.locator("#api-key").press("Enter")
    expect(page.locator("#key-hint")).to_contain_text("not accepted", timeout=TIMEOUT_MS)
    page.locator("#api-key").fill(READ_KEY)
    page.locator("#api-key").press("Enter")
    wait_for_results(page)
    expect(page.locator("#key-form")).to_be_hidden()
    expect(page.locator("#stats")).to_contain_text("passages")
    page.reload()  # the same tab keeps the key
    wait_for_results(page)
    expect(page.locator("#key-form")).to_be_hidden()
