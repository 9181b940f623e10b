"""Chunking: passages, stable ids, and splitting overlong paragraphs to fit the model."""

from __future__ import annotations

from conftest import SEED_FILE
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.chunk import ChunkingParams, chunk_articles, split_to_fit
from indexer.parse import Piece, Span, parse_articles

SEED_TEXT = SEED_FILE.read_text(encoding="utf-8")
PARAMS = ChunkingParams(max_tokens=254, embed_title=True)


def count_words(text: str) -> int:
    return len(text.split())


def seed_chunks(text: str = SEED_TEXT, params: ChunkingParams = PARAMS) -> list:
    return chunk_articles(parse_articles(text), "seed.txt", text, params, count_words)


def test_passages_are_captions_and_paragraphs_each_carrying_its_headline() -> None:
    chunks = seed_chunks()
    assert [c.kind for c in chunks].count("caption") == 4
    assert [c.kind for c in chunks].count("paragraph") == 42
    lead = next(c for c in chunks if c.text.startswith("Morocco has evacuated"))
    assert lead.title.startswith("Morocco Evacuates 50,000")
    assert lead.embed_text == f"{lead.title}\n{lead.text}"
    assert all(SEED_TEXT[c.start : c.end] == c.text for c in chunks)


def test_without_the_title_option_only_the_passage_is_embedded() -> None:
    chunks = seed_chunks(params=ChunkingParams(max_tokens=254, embed_title=False))
    assert all(c.embed_text == c.text for c in chunks)


def test_chunk_ids_survive_edits_elsewhere_in_the_file() -> None:
    before = {c.text: c.id for c in seed_chunks()}
    edited_text = SEED_TEXT.replace("An analyst said the momentum", "An analyst said that momentum")
    after = {c.text: c.id for c in seed_chunks(edited_text)}
    changed = set(before.items()) ^ set(after.items())
    assert len(changed) == 2  # only the edited paragraph, old and new
    assert len({c.id for c in seed_chunks()}) == 46


def test_a_long_paragraph_is_split_on_sentence_boundaries_into_windows_that_fit() -> None:
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(40)]
    text = "Headline\n\n" + " ".join(sentences) + "\n"
    chunks = chunk_articles(
        parse_articles(text), "long.txt", text, ChunkingParams(50, False), count_words
    )
    assert len(chunks) > 1
    assert all(count_words(c.text) <= 50 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert len({c.position for c in chunks}) == 1
    assert " ".join(c.text for c in chunks) == " ".join(sentences)


def test_the_headline_counts_against_the_window_when_it_is_embedded() -> None:
    text = "A five word long headline\n\n" + "word " * 60 + "\n"
    chunks = chunk_articles(
        parse_articles(text), "t.txt", text, ChunkingParams(30, True), count_words
    )
    assert all(count_words(c.embed_text) <= 30 + 1 for c in chunks)
    assert all(count_words(c.text) <= 30 - 6 for c in chunks)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["word", "end.", "  ", "\n", "Why?", "x" * 30]), max_size=120).map(
        " ".join
    )
)
def test_windows_cover_the_paragraph_and_keep_offsets(text: str) -> None:
    source = "pre " + text
    span = Piece(source[4:], Span(4, len(source)))
    if not span.text.strip():
        return
    windows = split_to_fit(span, source, lambda t: count_words(t) <= 8)
    assert all(source[w.start : w.end] == w.text for w in windows)
    assert " ".join(w.text for w in windows).split() == span.text.split()
    assert all(count_words(w.text) <= 8 for w in windows)


def test_closing_quotes_stay_with_their_sentence_when_a_paragraph_is_split() -> None:
    text = (
        'Head\n\nHe said "stop." Then they left the river bank. "Go!" she shouted (twice.) Done.\n'
    )
    chunks = chunk_articles(
        parse_articles(text), "q.txt", text, ChunkingParams(6, False), count_words
    )
    assert [c.text for c in chunks] == [
        'He said "stop."',
        "Then they left the river bank.",
        '"Go!" she shouted (twice.) Done.',
    ]


def test_an_overlong_headline_leaves_the_passage_half_the_window() -> None:
    text = "word " * 40 + "\n\nA short body of exactly seven words.\n"
    chunks = chunk_articles(
        parse_articles(text), "t.txt", text, ChunkingParams(20, True), count_words
    )
    assert [c.text for c in chunks] == ["A short body of exactly seven words."]
