"""The seed format: articles, headlines, captions and paragraphs with exact offsets."""

from __future__ import annotations

import pytest
from conftest import SEED_FILE
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.errors import SourceError
from indexer.parse import ARTEFACT_LINE, decode_source, parse_articles

SEED_TEXT = SEED_FILE.read_text(encoding="utf-8")


def test_the_seed_file_holds_four_articles_four_captions_and_42_paragraphs() -> None:
    articles = parse_articles(SEED_TEXT)
    assert len(articles) == 4
    assert sum(len(a.captions) for a in articles) == 4
    assert sum(len(a.paragraphs) for a in articles) == 42
    assert [a.title for a in articles] == [
        "Miami Talks Aim to Bridge Gaps in Gaza Deal’s Second Phase",
        "Dozen People Entered Egypt from Gaza on First Day of Rafah Opening",
        "Paris Calls on 50 Countries to Support Lebanese Army",
        "Morocco Evacuates 50,000 as Flooding Threatens City After Weeks of Heavy Rain",
    ]


def test_every_offset_points_at_its_text_in_the_source() -> None:
    for article in parse_articles(SEED_TEXT):
        for span in (*article.captions, *article.paragraphs):
            assert SEED_TEXT[span.start : span.end] == span.text
            assert span.text == span.text.strip()


def test_artefacts_headlines_and_repeated_captions_are_not_passages() -> None:
    for article in parse_articles(SEED_TEXT):
        texts = [s.text for s in (*article.captions, *article.paragraphs)]
        assert ARTEFACT_LINE not in texts
        assert article.title not in texts
        assert len(set(texts)) == len(texts)
        caption_texts = {c.text for c in article.captions}
        assert not caption_texts & {p.text for p in article.paragraphs}


def test_the_flood_article_starts_with_its_lead() -> None:
    flood = parse_articles(SEED_TEXT)[-1]
    assert flood.paragraphs[0].text.startswith("Morocco has evacuated more than 50,000 people")
    assert flood.captions[0].text.startswith("Flooding in Ksar el-Kebir, Morocco")


def test_a_file_without_markers_is_one_article_headed_by_its_first_line() -> None:
    text = "Ad sales boost profit\n\nFirst paragraph.\n \u00a0\nSecond paragraph\nwraps here.\n"
    [article] = parse_articles(text)
    assert article.title == "Ad sales boost profit"
    assert article.captions == ()
    assert [p.text for p in article.paragraphs] == [
        "First paragraph.",
        "Second paragraph\nwraps here.",
    ]


def test_space_only_lines_and_trailing_spaces_are_blank_and_trimmed() -> None:
    text = "Head\n\nCap one  \nCap one\nTT\n   \nHead\n\nCap one \nCap one\n\nBody one.\n\t \nBody two.\n"
    [article] = parse_articles(text)
    assert [c.text for c in article.captions] == ["Cap one"]
    assert [p.text for p in article.paragraphs] == ["Body one.", "Body two."]


def test_blank_text_has_no_articles() -> None:
    assert parse_articles("") == []
    assert parse_articles(" \n\n\t\n") == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["TT", "\n", " ", "a", "Head", "\u00a0", "é", ".", "\r\n"]), max_size=60
    ).map("".join)
)
def test_parsing_seed_like_text_never_raises_and_offsets_hold(text: str) -> None:
    _assert_offsets_hold(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parsing_arbitrary_text_never_raises_and_offsets_hold(text: str) -> None:
    _assert_offsets_hold(text)


def _assert_offsets_hold(text: str) -> None:
    for article in parse_articles(text):
        for span in (*article.captions, *article.paragraphs):
            assert text[span.start : span.end] == span.text
            assert span.text


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"Title\n\n\xff\xfe bad bytes\n", "not valid UTF-8"), (b"", "empty"), (b" \n\n", "empty"),
     (b"\x89PNG\r\n\x1a\n\x00\x00", "binary")],
)  # fmt: skip
def test_unreadable_files_raise_a_clear_reason(content: bytes, reason: str) -> None:
    with pytest.raises(SourceError, match=reason):
        decode_source(content)


def test_captions_in_blocks_of_their_own_before_the_marker_belong_to_the_next_article() -> None:
    text = "H1\n\nC1\nTT\n\nH1\n\nC1\n\nBody one.\n\nH2\n\nC2\n\nC2\nTT\n\nH2\n\nC2\n\nBody two.\n"
    first, second = parse_articles(text)
    assert [p.text for p in first.paragraphs] == ["Body one."]
    assert (second.title, [c.text for c in second.captions]) == ("H2", ["C2"])
    assert [p.text for p in second.paragraphs] == ["Body two."]
