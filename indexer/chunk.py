"""Turn parsed articles into passages (chunks) ready to embed.

Passages are captions and body paragraphs; every chunk carries its article's headline. A
paragraph longer than the model's input window is split on sentence boundaries into windows
that each fit, sharing the paragraph's metadata.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from indexer.dates import is_bare_dateline, published_date
from indexer.parse import Article, Piece, Span

ChunkKind = Literal["paragraph", "caption"]
TokenCounter = Callable[[str], int]

# Group 1 is the gap between pieces: closing quotes and brackets stay with their sentence.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(\s+)")
_WORD_END = re.compile(r"(\s+)")


@dataclass(frozen=True)
class Chunk:
    id: str
    article_id: str
    kind: ChunkKind
    title: str
    text: str
    embed_text: str
    source: str
    start: int
    end: int
    position: int
    published: str | None = None  # the article's publication date, ISO, when the text gives it


# Bump when chunking logic changes, so builds stop reusing chunks cut the old way.
CHUNKER_VERSION = 3


@dataclass(frozen=True)
class ChunkingParams:
    """Everything that decides how a file becomes chunks; recorded in the manifest."""

    max_tokens: int
    embed_title: bool
    version: int = CHUNKER_VERSION


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def embed_text_for(title: str, text: str, embed_title: bool) -> str:
    return f"{title}\n{text}" if embed_title and title else text


def _pieces(whole: Piece, boundary: re.Pattern[str]) -> list[Piece]:
    """Split a piece at each boundary's gap (group 1), keeping offsets into the source."""
    pieces, cursor = [], 0
    for match in boundary.finditer(whole.text):
        gap_start, gap_end = match.span(1)
        pieces.append(
            Piece(whole.text[cursor:gap_start], Span(whole.start + cursor, whole.start + gap_start))
        )
        cursor = gap_end
    pieces.append(Piece(whole.text[cursor:], Span(whole.start + cursor, whole.end)))
    return [piece for piece in pieces if piece.text]


def sentence_spans(text: str) -> list[Span]:
    """Each sentence of ``text``, split where the chunker splits."""
    return [piece.span for piece in _pieces(Piece(text, Span(0, len(text))), _SENTENCE_END)]


def evidence_sentences(chunks: Sequence[Chunk]) -> list[tuple[int, int, int]]:
    """(row, start, end) of every sentence of the chunks that hold two or more: those get a
    vector of their own so a result can point at the sentence that answers. A one-sentence
    chunk's own vector already does."""
    found = []
    for row, chunk in enumerate(chunks):
        spans = sentence_spans(chunk.text)
        if len(spans) > 1:
            found += [(row, start, end) for start, end in spans]
    return found


def sentences_in_embedded_text(
    chunks: Sequence[Chunk], sentences: Sequence[tuple[int, int, int]]
) -> list[list[Span]]:
    """Each chunk's evidence sentences as spans of the text it embeds, which may start with
    the headline: offsets into ``text`` shifted by what precedes it in ``embed_text``."""
    spans: list[list[Span]] = [[] for _ in chunks]
    for row, start, end in sentences:
        shift = len(chunks[row].embed_text) - len(chunks[row].text)
        spans[row].append(Span(start + shift, end + shift))
    return spans


def _merge(source_text: str, first: Piece, last: Piece) -> Piece:
    return Piece(source_text[first.start : last.end], Span(first.start, last.end))


def split_to_fit(span: Piece, source_text: str, fits: Callable[[str], bool]) -> list[Piece]:
    """Greedily pack sentences (or, for an overlong sentence, words) into windows that fit."""
    if fits(span.text):
        return [span]
    windows: list[Piece] = []
    for boundary in (_SENTENCE_END, _WORD_END):
        units = _pieces(span, boundary)
        if len(units) > 1:
            break
    else:
        return [span]  # one unbreakable token run: the model truncates it
    current: Piece | None = None
    for unit in units:
        candidate = unit if current is None else _merge(source_text, current, unit)
        if fits(candidate.text):
            current = candidate
            continue
        if current is not None:
            windows.append(current)
        # A single unit that still does not fit is split again, on words.
        if fits(unit.text):
            current = unit
        else:
            windows.extend(split_to_fit(unit, source_text, fits))
            current = None
    if current is not None:
        windows.append(current)
    return windows


def chunk_articles(
    articles: list[Article],
    source: str,
    source_text: str,
    params: ChunkingParams,
    count_tokens: TokenCounter,
) -> list[Chunk]:
    """All chunks of one file, in reading order, with ids stable across builds."""
    chunks: list[Chunk] = []
    seen_titles: Counter[str] = Counter()
    seen_texts: Counter[tuple[str, str]] = Counter()
    for article in articles:
        seen_titles[article.title] += 1
        article_id = _digest(source, article.title, seen_titles[article.title])[:16]
        published = published_date(article)
        title_cost = count_tokens(article.title) + 1 if params.embed_title else 0
        # An overlong headline may not starve the passage: it gets at least half the window.
        budget = max(params.max_tokens - title_cost, params.max_tokens // 2)

        def fits(text: str, budget: int = budget) -> bool:
            # A word-piece token covers at least one character: short texts need no count.
            return len(text) <= budget or count_tokens(text) <= budget

        for position, kind, span in _passages(article):
            for window in split_to_fit(span, source_text, fits):
                seen_texts[(kind, window.text)] += 1
                chunk_id = _digest(source, kind, window.text, seen_texts[(kind, window.text)])[:16]
                chunks.append(
                    Chunk(
                        id=chunk_id,
                        article_id=article_id,
                        kind=kind,
                        title=article.title,
                        text=window.text,
                        embed_text=embed_text_for(article.title, window.text, params.embed_title),
                        source=source,
                        start=window.start,
                        end=window.end,
                        position=position,
                        published=published.isoformat() if published else None,
                    )
                )
    return chunks


def _passages(article: Article) -> Iterator[tuple[int, ChunkKind, Piece]]:
    """Captions first, then body paragraphs, numbered in reading order. A first paragraph
    that is only a dateline dates the article and is no passage (unless it is all there is)."""
    kinds: list[tuple[ChunkKind, Piece]] = [("caption", c) for c in article.captions]
    kinds += [("paragraph", p) for p in article.paragraphs]
    dateline = (
        (
            article.paragraphs[0]
            if len(kinds) > 1 and is_bare_dateline(article.paragraphs[0].text)
            else None
        )
        if article.paragraphs
        else None
    )
    for position, (kind, span) in enumerate(kinds):
        if span is not dateline:
            yield position, kind, span
