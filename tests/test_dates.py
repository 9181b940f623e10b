"""Publication dates: read from photo captions and body datelines, never guessed."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from conftest import BBC, SEED_FILE, shared
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.dates import published_date
from indexer.parse import Article, Piece, Span, parse_articles


def article(*paragraphs: str, captions: tuple[str, ...] = ()) -> Article:
    def span(text: str) -> Piece:
        return Piece(text, Span(0, len(text)))

    return Article("Headline", tuple(map(span, captions)), tuple(map(span, paragraphs)))


BODY = "Mediators are convening for fresh talks in Miami, Florida."


def test_the_seed_articles_take_their_dates_from_dated_captions_only() -> None:
    articles = parse_articles(SEED_FILE.read_text(encoding="utf-8"))
    assert [(a.title.split()[0], published_date(a)) for a in articles] == [
        ("Miami", None),
        ("Dozen", datetime.date(2026, 2, 2)),
        ("Paris", None),  # "on January 23" in its caption names no year
        ("Morocco", datetime.date(2026, 2, 1)),
    ]


@pytest.mark.parametrize(
    "caption",
    [
        "02 February 2026, Palestinian Territories, Khan Yunis: patients wait. Photo: dpa",
        "Flooding in Ksar el-Kebir, Morocco, 02 February 2026, amid heavy rainfall. (EPA)",
        "Crowds in Rabat on February 2, 2026 (AFP)",
        "Crowds in Rabat, Feb. 2 2026",
        "Crowds in Rabat, 2nd Feb 2026",
        "Crowds in Rabat, 2026-02-02",
    ],
)
def test_a_full_date_anywhere_in_a_caption_dates_the_article(caption: str) -> None:
    assert published_date(article(BODY, captions=(caption,))) == datetime.date(2026, 2, 2)


def test_abbreviated_months_with_and_without_full_stops_are_read() -> None:
    for text, expected in [
        ("Jan. 5, 2026", datetime.date(2026, 1, 5)),
        ("Sept 30 2025", datetime.date(2025, 9, 30)),
        ("Sep. 30, 2025", datetime.date(2025, 9, 30)),
        ("5 DEC 2024", datetime.date(2024, 12, 5)),
    ]:
        assert published_date(article(BODY, captions=(f"A photo, {text}.",))) == expected


def test_the_latest_of_several_caption_dates_wins() -> None:
    captions = (
        "An archive photo of the port, 14 March 1998.",
        "Rescuers on 01 February 2026, Ksar el-Kebir.",
        "The river rising, 31 January 2026.",
    )
    assert published_date(article(BODY, captions=captions)) == datetime.date(2026, 2, 1)


@pytest.mark.parametrize(
    "opening",
    [
        "LONDON, Feb 2, 2026 (Reuters) - Shares fell sharply.",
        "WASHINGTON (AP) — Monday 2 February 2026 — The president said.",
        "WASHINGTON (AP) — Monday 2 February 2026\nThe president said.",
        "2 February 2026 — Talks resumed in Cairo.",
        "Published: 2 February 2026",
        "Published: 2 February 2026\nTalks resumed in Cairo.",
        "Updated 14:05 GMT, 2 February 2026",
        "Last updated on 2 February 2026, 14:05 GMT",
        "NEW YORK, Feb. 2, 2026 /PRNewswire/ -- The company said.",
        "PARIS, 2026-02-02: Talks resumed.",
    ],
)
def test_a_dateline_opening_the_first_paragraph_dates_the_article(opening: str) -> None:
    assert published_date(article(opening, BODY)) == datetime.date(2026, 2, 2)


def test_a_dateline_outranks_older_and_newer_caption_dates() -> None:
    dated = article("Published: 2 February 2026", BODY, captions=("Rabat, 03 March 2026.",))
    assert published_date(dated) == datetime.date(2026, 2, 2)


@pytest.mark.parametrize(
    "paragraphs",
    [
        ("Talks resumed on Monday in Cairo.",),  # a bare weekday
        ("Monday — Talks resumed in Cairo.",),
        ("In January 2005 - the firm said - sales rose.",),  # a month without a day
        ("January 2005: sales rose.",),
        ("Shares fell on 2 February 2026 - a record drop.",),  # an event in a sentence
        ("On 2 February 2026, voters went to the polls.",),
        ("Monday 2 February 2026 The president said.",),  # no dateline separator
        (BODY, "Published: 2 February 2026"),  # not the first paragraph
        ("x" * 120 + " 2 February 2026 — late.",),  # beyond the opening characters
        ("31 February 2026 — Talks resumed.",),  # no such day
        ("2026-02-30 — Talks resumed.",),
        ("Published: 2 February 26 — Talks resumed.",),  # a two-digit year
    ],
)
def test_text_that_names_no_publication_date_gives_none(paragraphs: tuple[str, ...]) -> None:
    assert published_date(article(*paragraphs)) is None


@pytest.mark.parametrize(
    "caption",
    [
        "Macron welcomes Salam in Paris on January 23 (AFP)",
        "Displaced Palestinians gather on Monday in Khan Younis (AFP)",
        "Flooding in Ksar el-Kebir, February 2026",
        "Flooding in Ksar el-Kebir, 31 February 2026",
        "Flooding in Ksar el-Kebir, 2026-13-01",
    ],
)
def test_captions_without_a_valid_full_date_give_none(caption: str) -> None:
    assert published_date(article(BODY, captions=(caption,))) is None


def test_an_article_with_no_text_has_no_date() -> None:
    assert published_date(Article("", (), ())) is None


@settings(max_examples=300, derandomize=True)
@given(
    title=st.text(),
    captions=st.lists(st.text(), max_size=3),
    paragraphs=st.lists(st.text(), max_size=3),
)
def test_any_text_gives_a_date_or_none_and_never_raises(
    title: str, captions: list[str], paragraphs: list[str]
) -> None:
    def span(text: str) -> Piece:
        return Piece(text, Span(0, len(text)))

    parsed = Article(title, tuple(map(span, captions)), tuple(map(span, paragraphs)))
    assert published_date(parsed) is None or isinstance(published_date(parsed), datetime.date)


@settings(max_examples=300, derandomize=True)
@given(
    day=st.integers(-5, 40),
    month=st.sampled_from(["Jan", "Feb.", "February", "Sept", "13", "02"]),
    year=st.integers(0, 99999),
    filler=st.text(alphabet=" ,.-—:()0123456789APMGT\n", max_size=12),
)
def test_date_like_text_with_impossible_parts_never_raises(
    day: int, month: str, year: int, filler: str
) -> None:
    texts = [f"{day} {month} {year}", f"{month} {day}, {year}", f"{year}-{month}-{day:02d}"]
    for text in texts:
        dated = article(filler + text + filler, captions=(text,))
        assert published_date(dated) is None or isinstance(published_date(dated), datetime.date)


def bbc_articles() -> list[tuple[Path, Article]]:
    """Each BBC file with its one article (no ``TT`` markers: one article per file)."""
    found = []
    for path in sorted(shared(BBC).glob("*/*.txt")):
        # One file is not valid UTF-8; replacing its bad bytes keeps every article in the count.
        (parsed,) = parse_articles(path.read_bytes().decode("utf-8", "replace"))
        found.append((path, parsed))
    return found


def test_undated_bbc_articles_get_no_date() -> None:
    """The BBC corpus (2004-5) states no publication dates: a date here is a false positive."""
    articles = bbc_articles()
    assert len(articles) == 2225
    dated = [(path, date) for path, a in articles if (date := published_date(a))]
    for path, date in dated:
        print(f"{path}: {date}")  # shown with -s, to inspect any article that gets a date
    assert dated == []
