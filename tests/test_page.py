"""The search page at GET /, driven in headless Chromium against a live server.

Uses Debian's chromium (/usr/bin/chromium) through Playwright; ``playwright install`` is never
needed. The ``live_server`` fixture (tests/conftest.py) gives the base URL of a uvicorn process
serving an index built from seeds/; ``dated_server`` (this module) one serving the seed file and
twenty BBC business articles dated from October 2024 to April 2025 (see ``DATES``), for the
totals, timeline, sort, source chips and grouping.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import READ_KEY, bbc_files, new_corpus, running_server
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from indexer.build import build_index
from indexer.embed import Embedder
from indexer.settings import Settings
from search_api.evaluation import dated_text

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
PHONE = {"width": 375, "height": 740}
CHIPS = 8  # source chips before "All N sources" opens the rest, on a screen wider than a phone

# business/001.txt ... 020.txt in order: October 2024 to April 2025 with January empty, and
# three undated articles.
DATES = [
    "2025-03-03", "2025-02-12", "2024-11-20", "2025-03-05", "2024-10-28",
    "2025-02-17", None, "2024-12-02", "2024-12-09", None,
    "2025-03-21", "2025-04-08", "2024-11-14", "2025-02-25", "2025-04-30",
    None, "2025-03-11", "2024-12-04", "2025-02-19", "2025-04-07",
]  # fmt: skip
# Matches about thirty passages of a dozen of those articles (several of some) in four
# months and undated, from more sources than the page shows chips for at first.
DATED_QUERY = "economy growth"
DATED_PAGE = "/?q=economy%20growth"

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


def write_dated_corpus(directory: Path) -> Path:
    """A seeds folder: the seed file and business/NNN.txt, BBC articles dated as ``DATES``
    by a dateline paragraph after the headline (every fourth one an ISO date)."""
    seeds = new_corpus(directory)
    (seeds / "business").mkdir(exist_ok=True)
    for number, (path, day) in enumerate(zip(bbc_files(len(DATES)), DATES, strict=True)):
        published = datetime.date.fromisoformat(day) if day else None
        text = dated_text(path.read_text(encoding="utf-8"), published, iso=number % 4 == 3)
        (seeds / "business" / path.name).write_text(text, encoding="utf-8")
    return seeds


@pytest.fixture(scope="module")
def dated_server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dated")
    settings = Settings(seeds_dir=write_dated_corpus(root / "seeds"), index_dir=root / "index")
    build_index(settings, embedder=embedder)
    with running_server(settings.index_dir, root / "server.log") as (url, _):
        yield url


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def search(server: str, query: str, **parameters: Any) -> Any:
    """The API's answer to what the page asks for this query (50 passages, month and source
    facets), with these parameters on top."""
    fields = {"q": query, "k": 50, "facets": "month,source", **parameters}
    return get_json(f"{server}/search?{urllib.parse.urlencode(fields, doseq=True)}")


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def month_facet(answer: Any) -> tuple[list[dict[str, Any]], int]:
    """The dated months of an answer's month facet, and its undated count."""
    months = answer["facets"]["month"]
    undated = sum(month["count"] for month in months if month["value"] == "undated")
    return [month for month in months if month["value"] != "undated"], undated


def month_range(month: str) -> tuple[str, str]:
    year, number = map(int, month.split("-"))
    following = datetime.date(year + number // 12, number % 12 + 1, 1)
    return f"{month}-01", (following - datetime.timedelta(days=1)).isoformat()


def total_text(answer: Any) -> str:
    """What the page says of an answer's totals: "12 passages in 5 articles match"."""
    total, articles = answer["total"], answer["total_articles"]
    if answer["total_is_lower_bound"]:
        return (
            f"At least {plural(total, 'passage')} in at least {plural(articles, 'article')} match"
        )
    return f"{plural(total, 'passage')} in {plural(articles, 'article')} " + (
        "matches" if total == 1 else "match"
    )


def wait_for_results(page: Page) -> None:
    expect(page.locator("#results > li").first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_have_text(
        re.compile(r"^(At least )?\d+ passages? in (at least )?\d+ articles? match(es)?$")
    )
    expect(page.locator("#results")).not_to_have_attribute("aria-busy", "true")


def by_article(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Passages per article, articles in the order of their first passage."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(result["article_id"], []).append(result)
    return groups


def shown_dates(page: Page) -> list[str]:
    """The publication date of every article in the list, top to bottom."""
    return page.locator(
        "#results > li > .result-meta .meta-published .meta-value"
    ).all_inner_texts()


def bars(page: Page) -> Locator:
    return page.locator("#timeline svg rect")


def test_enter_searches_and_highlights(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    page.locator("#q").fill("flood evacuations")
    page.locator("#q").press("Enter")
    wait_for_results(page)

    first = page.locator("#results > li").first
    expect(first.locator(".result-title")).to_contain_text("Morocco")
    expect(first.locator("> .result-text")).to_contain_text(re.compile("evacuat", re.IGNORECASE))
    expect(page.locator("#results mark").first).to_be_visible()
    expect(first.locator("> .result-meta .meta-score .meta-value")).to_have_text(
        re.compile(r"^-?\d+\.\d{3}$")
    )
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
    page.set_viewport_size(PHONE)
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
    expect(hit).to_have_text(first.locator("> .result-text").inner_text())
    first.get_by_role("button", name="Hide the article").click()
    expect(first.locator(".article")).to_have_count(0)


def test_the_answering_sentence_is_bold_and_every_article_shows_its_date(
    page: Page, live_server: str
) -> None:
    answer = search(live_server, "patients crossing Rafah")
    articles = list(by_article(answer["results"]).values())
    page.goto(live_server + "/?q=patients%20crossing%20Rafah")
    wait_for_results(page)
    items = page.locator("#results > li")
    expect(items).to_have_count(len(articles))
    for item, passages in zip(items.all(), articles, strict=True):
        best = passages[0]
        sentences = [best["text"][e["start"] : e["end"]] for e in best["evidence"]]
        expect(item.locator("> .result-text strong.evidence")).to_have_text(sentences)
        expect(item.locator("> .result-meta .meta-published .meta-value")).to_have_text(
            best["published"] or "date unknown"
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


def test_the_total_counts_passages_and_articles_as_the_api_does(
    page: Page, dated_server: str
) -> None:
    answer = search(dated_server, DATED_QUERY)
    assert answer["total"] <= 50, "the page's first request holds the whole answer"
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)
    expect(page.locator("#status")).to_have_text(total_text(answer))
    expect(page.locator("#status")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#results > li")).to_have_count(answer["total_articles"])
    expect(page.locator("#shown")).to_contain_text(
        f"{answer['total_articles']} of {answer['total_articles']} articles "
        f"({answer['total']} of {plural(answer['total'], 'passage')})"
    )
    expect(page.get_by_role("button", name="Show more")).to_be_hidden()


def test_the_timeline_draws_one_bar_per_month_and_counts_the_undated(
    page: Page, dated_server: str
) -> None:
    dated, undated = month_facet(search(dated_server, DATED_QUERY))
    assert len(dated) >= 3 and undated > 0, "the corpus must give the timeline something to draw"
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)
    expect(bars(page)).to_have_count(len(dated))
    labels = [f"{m['value']}: {plural(m['count'], 'passage')}" for m in dated]
    assert [bar.get_attribute("aria-label") for bar in bars(page).all()] == labels
    for label in labels:
        expect(page.get_by_role("button", name=label, exact=True)).to_be_visible()
    heights = [float(bar.get_attribute("height") or 0) for bar in bars(page).all()]
    busiest = max(range(len(dated)), key=lambda i: dated[i]["count"])
    assert heights[busiest] == max(heights)
    expect(page.locator("#undated")).to_have_text(f"Undated: {plural(undated, 'passage')}")
    # The page draws it: nothing is fetched from anywhere but this server.
    fetched = page.evaluate("performance.getEntriesByType('resource').map(entry => entry.name)")
    assert all(url.startswith(dated_server + "/") for url in fetched), fetched


def test_a_bar_searches_its_month_and_show_all_dates_widens_again(
    page: Page, dated_server: str
) -> None:
    answer = search(dated_server, DATED_QUERY)
    dated, _ = month_facet(answer)
    busiest = max(dated, key=lambda month: month["count"])
    first, last = month_range(busiest["value"])
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)

    page.get_by_role(
        "button", name=f"{busiest['value']}: {plural(busiest['count'], 'passage')}"
    ).click()
    expect(page).to_have_url(re.compile(rf"[?&]date_from={first}&date_to={last}(&|$)"))
    wait_for_results(page)
    narrowed = search(dated_server, DATED_QUERY, date_from=first, date_to=last)
    assert narrowed["total"] == busiest["count"], "the bar counts what its month holds"
    expect(page.locator("#status")).to_have_text(total_text(narrowed))
    dates = shown_dates(page)
    assert dates and all(date.startswith(busiest["value"] + "-") for date in dates), dates
    expect(page.locator("#date-from")).to_have_value(first)
    expect(page.locator("#date-to")).to_have_value(last)
    expect(bars(page)).to_have_count(1)
    expect(bars(page).first).to_have_attribute("aria-pressed", "true")

    page.get_by_role("button", name="Show all dates").click()
    expect(page).not_to_have_url(re.compile("date_from"))
    wait_for_results(page)
    expect(page.locator("#status")).to_have_text(total_text(answer))
    expect(bars(page)).to_have_count(len(dated))
    expect(page.locator("#date-from")).to_have_value("")


def test_the_timeline_is_one_tab_stop_with_arrow_keys_and_enter(
    page: Page, dated_server: str
) -> None:
    dated, _ = month_facet(search(dated_server, DATED_QUERY))
    labels = [f"{m['value']}: {plural(m['count'], 'passage')}" for m in dated]
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)
    page.locator("#q").focus()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "rect":
            break
    focused = "document.activeElement.getAttribute('aria-label')"
    assert page.evaluate(focused) == labels[-1], "the timeline's tab stop is the newest month"
    stroke = "getComputedStyle(document.activeElement).stroke"
    assert page.evaluate(stroke) not in ("", "none"), "a focused bar shows its focus"
    page.keyboard.press("Home")
    assert page.evaluate(focused) == labels[0]
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == labels[1]

    page.keyboard.press("Enter")
    first, last = month_range(dated[1]["value"])
    expect(page).to_have_url(re.compile(rf"[?&]date_from={first}&date_to={last}(&|$)"))
    wait_for_results(page)
    assert page.evaluate(focused) == labels[1], "focus stays on the bar just pressed"
    page.keyboard.press("Enter")  # the chosen month again: every date
    expect(page).not_to_have_url(re.compile("date_from"))
    wait_for_results(page)
    expect(bars(page)).to_have_count(len(dated))


def test_newest_first_sorts_articles_by_date_with_undated_last(
    page: Page, dated_server: str
) -> None:
    answer = search(dated_server, DATED_QUERY, sort="date")
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)
    page.get_by_label("Sort").select_option("date")
    expect(page).to_have_url(re.compile(r"[?&]sort=date(&|$)"))
    wait_for_results(page)
    dates = shown_dates(page)
    known = [date for date in dates if date != "date unknown"]
    assert len(set(known)) > 1 and known == sorted(known, reverse=True), dates
    assert dates == known + ["date unknown"] * (len(dates) - len(known)), dates
    titles = [passages[0]["title"] for passages in by_article(answer["results"]).values()]
    expect(page.locator("#results > li > .result-title")).to_have_text(titles)
    page.reload()
    wait_for_results(page)
    expect(page.get_by_label("Sort")).to_have_value("date")


def test_a_source_chip_filters_by_its_source_and_a_second_press_lets_it_go(
    page: Page, dated_server: str
) -> None:
    answer = search(dated_server, DATED_QUERY)
    sources = answer["facets"]["source"]
    assert len(sources) > CHIPS, "more sources than chips at first"
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)
    chips = page.locator("#source-chips button")
    expect(chips).to_have_count(CHIPS)
    expect(chips.locator(".chip-name")).to_have_text([s["value"] for s in sources[:CHIPS]])
    expect(chips.locator(".chip-count")).to_have_text([str(s["count"]) for s in sources[:CHIPS]])
    every = page.get_by_role("button", name=f"All {len(sources)} sources")
    every.click()
    expect(chips).to_have_count(len(sources))
    expect(every).to_have_attribute("aria-expanded", "true")

    # One only the full list shows, and whose passages still clear the "no good match" bar on
    # their own (a source whose best passage is weak answers nothing when it is the filter).
    source = next(
        s
        for s in sources[CHIPS:]
        if search(dated_server, DATED_QUERY, source=s["value"])["total"] == s["count"]
    )
    chip = page.get_by_role(
        "button", name=f"{source['value']}: {plural(source['count'], 'passage')}"
    )
    chip.click()
    expect(page).to_have_url(
        re.compile(rf"[?&]source={re.escape(urllib.parse.quote(source['value'], safe=''))}(&|$)")
    )
    wait_for_results(page)
    narrowed = search(dated_server, DATED_QUERY, source=source["value"])
    assert narrowed["total"] == source["count"]
    expect(page.locator("#status")).to_have_text(total_text(narrowed))
    shown = page.locator("#results .meta-source .meta-value").all_inner_texts()
    assert shown and set(shown) == {source["value"]}
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(chip).to_be_focused()

    chip.click()
    expect(page).not_to_have_url(re.compile(r"[?&]source="))
    wait_for_results(page)
    expect(page.locator("#status")).to_have_text(total_text(answer))
    expect(chip).to_have_attribute("aria-pressed", "false")


def test_an_article_shows_its_best_passage_and_opens_its_others_in_place(
    page: Page, dated_server: str
) -> None:
    answer = search(dated_server, DATED_QUERY)
    articles = list(by_article(answer["results"]).values())
    at, passages = next((i, p) for i, p in enumerate(articles) if len(p) > 2)
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)
    item = page.locator("#results > li").nth(at)
    expect(item.locator(".result-title")).to_have_text(passages[0]["title"])
    expect(item.locator("> .result-text")).to_have_text(passages[0]["text"])
    others = item.locator(".more-list > li")
    toggle = item.get_by_role("button", name=f"{len(passages) - 1} more passages from this article")
    expect(toggle).to_have_accessible_name(f"{len(passages) - 1} more passages from this article")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(others.first).to_be_hidden()

    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(others.locator(".result-text")).to_have_text([p["text"] for p in passages[1:]])
    expect(others.first).to_be_visible()
    expect(page.locator("#results > li")).to_have_count(len(articles))  # in place
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(others.first).to_be_hidden()

    # Reading on marks the best passage as the hit and the article's other matches.
    item.get_by_role("button", name="Read the article").click()
    expect(item.locator(".article .hit")).to_have_text(passages[0]["text"])
    expect(item.locator(".article .match")).to_have_count(len(passages) - 1)

    page.get_by_label("One entry per article").uncheck()
    expect(page).to_have_url(re.compile(r"[?&]view=passages(&|$)"))
    expect(page.locator("#results > li")).to_have_count(answer["total"])


def test_show_more_pages_on_to_the_total(page: Page, dated_server: str) -> None:
    answer = search(dated_server, DATED_QUERY)
    # Pages of 4 passages instead of 50, so that this small corpus needs several.
    page.route(
        re.compile(r"/search\?"),
        lambda route: route.continue_(url=route.request.url.replace("k=50", "k=4")),
    )
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)
    more = page.locator("#more")
    expect(more).to_have_accessible_name("Show more")
    pages = 1
    while more.is_visible():
        more.click()
        expect(more).not_to_have_attribute("aria-disabled", "true")
        pages += 1
        assert pages <= answer["total"], "paging never ended"
    assert pages > 2
    expect(page.locator("#status")).to_have_text(total_text(answer))
    articles = list(by_article(answer["results"]).values())
    expect(page.locator("#results > li > .result-title")).to_have_text(
        [passages[0]["title"] for passages in articles]
    )
    counts = [
        item.locator(".more-list > li").count() for item in page.locator("#results > li").all()
    ]
    assert counts == [len(passages) - 1 for passages in articles]
    expect(page.locator("#shown")).to_contain_text(
        f"({answer['total']} of {answer['total']} passages)"
    )


def test_the_timeline_chips_and_passages_fit_a_phone(page: Page, dated_server: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(dated_server + DATED_PAGE)
    wait_for_results(page)
    expect(bars(page).first).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^All \d+ sources$")).click()
    page.locator(".more-passages:visible").first.click()
    page.locator("#results .read-on").first.click()
    expect(page.locator("#results .article").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width}px wide at a 375px viewport"
    box = page.locator("#timeline svg").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_a_filter_that_leaves_nothing_keeps_the_way_back(page: Page, dated_server: str) -> None:
    answer = search(dated_server, DATED_QUERY)
    page.goto(dated_server + DATED_PAGE + "&date_from=2030-01-01")
    expect(page.locator("#status")).to_contain_text("No passage matches this query well")
    expect(page.locator("#results > li")).to_have_count(0)
    expect(page.locator("#date-range")).to_have_text("Only from 2030-01-01")
    page.get_by_role("button", name="Show all dates").click()
    wait_for_results(page)
    expect(page.locator("#status")).to_have_text(total_text(answer))


# ---- one article on its own: /?article=ID ---------------------------------


def an_article(server: str) -> Any:
    """GET /articles/{id} of the first article the API finds for the Hezbollah question."""
    article_id = search(server, "Hezbollah disarmament")["results"][0]["article_id"]
    return get_json(f"{server}/articles/{urllib.parse.quote(article_id, safe='')}")


def article_address(article: Any) -> str:
    return "/?" + urllib.parse.urlencode({"article": article["article_id"]})


def expect_the_article(page: Page, article: Any) -> None:
    """The article view shows ``article`` whole: headline (focused), date, source, passages."""
    view = page.locator("#article-view")
    title = view.get_by_role("heading", level=2)
    expect(title).to_have_text(article["title"])
    expect(title).to_be_focused()
    expect(view.locator(".meta-published .meta-value")).to_have_text(
        article["published"] or "date unknown"
    )
    expect(view.locator(".meta-source .meta-value")).to_have_text(article["source"])
    expect(view.locator(".article > li")).to_have_text(
        [passage["text"] for passage in article["passages"]]
    )
    expect(page).to_have_title(f"{article['title']} – seedsearch")


def test_an_article_address_shows_the_whole_article_under_the_search_form(
    page: Page, live_server: str
) -> None:
    article = an_article(live_server)
    page.set_viewport_size(PHONE)
    page.goto(live_server + article_address(article))
    expect_the_article(page, article)
    expect(page.locator("#q")).to_be_visible()
    expect(page.locator("#hint")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the article is {width}px wide at a 375px viewport"

    # The search form above it still searches, and the article gives way to the answer.
    page.locator("#q").fill("flood evacuations")
    page.locator("#q").press("Enter")
    wait_for_results(page)
    expect(page.locator("#article-view")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/\?q=flood"))


def test_an_unknown_article_says_there_is_no_such_article(page: Page, live_server: str) -> None:
    page.goto(live_server + "/?article=no-such-article")
    title = page.locator("#article-view").get_by_role("heading", level=2)
    expect(title).to_have_text("No article “no-such-article”")
    expect(title).to_be_focused()
    expect(page.locator("#article-view")).to_contain_text("No article 'no-such-article'")
    expect(page.locator("#article-view .article")).to_have_count(0)
    expect(page.get_by_role("link", name="Back to search")).to_have_attribute("href", "/")
    expect(page.locator("#error")).to_be_hidden()


def test_a_result_links_to_its_article_and_the_article_back_to_search(
    page: Page, live_server: str
) -> None:
    article = an_article(live_server)
    page.goto(live_server + "/?q=Hezbollah%20disarmament")
    wait_for_results(page)
    link = page.locator("#results > li").first.get_by_role("link", name="Link to this article")
    expect(link).to_have_attribute("href", article_address(article))
    link.click()
    expect(page).to_have_url(live_server + article_address(article))
    expect_the_article(page, article)

    page.get_by_role("link", name="Back to search").click()
    expect(page.locator("#hint")).to_be_visible()
    expect(page.locator("#article-view")).to_be_hidden()


def test_an_article_address_asks_for_the_read_key(
    page: Page, live_server: str, keyed_server: tuple[Any, Any]
) -> None:
    article = an_article(live_server)  # the keyed server serves a copy of the same index
    server, _ = keyed_server
    page.goto(server.url + article_address(article))
    expect(page.locator("#key-form")).to_be_visible()
    page.locator("#api-key").fill(READ_KEY)
    page.locator("#api-key").press("Enter")
    expect_the_article(page, article)
    expect(page.locator("#key-form")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
