"""Parse seed files into articles: headline, captions and body paragraphs with offsets.

The seed format (see DESIGN.md): a headline; image captions, each repeated; a ``TT`` line (a
site artefact); the headline and captions again; then body paragraphs separated by blank lines.
Lines holding only white space count as blank. A file without ``TT`` markers is a single
article whose first line is its headline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from indexer.errors import SourceError

ARTEFACT_LINE = "TT"
_LINE = re.compile(r"[^\n]*\n?")


class Span(NamedTuple):
    """The one character span in the code: offsets ``text[start:end]`` into some text."""

    start: int
    end: int


@dataclass(frozen=True)
class Piece:
    """A piece of the source text and where it sits: ``source[start:end] == text``."""

    text: str
    span: Span

    @property
    def start(self) -> int:
        return self.span.start

    @property
    def end(self) -> int:
        return self.span.end


@dataclass(frozen=True)
class Article:
    title: str
    captions: tuple[Piece, ...]
    paragraphs: tuple[Piece, ...]


def decode_source(data: bytes) -> str:
    """A seed file's bytes as UTF-8 text, or ``SourceError`` saying why they are not."""
    if b"\x00" in data:
        raise SourceError("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceError(
            f"not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None
    if not text.strip():
        raise SourceError("empty file")
    return text


def _stripped_span(text: str, start: int, end: int) -> Piece:
    """The piece ``text[start:end]`` without surrounding white space."""
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    right = len(piece.rstrip())
    return Piece(piece[left:right], Span(start + left, start + right))


def _blocks(text: str) -> list[list[Piece]]:
    """Runs of non-blank lines, each line as a stripped span."""
    blocks: list[list[Piece]] = []
    current: list[Piece] = []
    for match in _LINE.finditer(text):
        if not match.group():
            break
        line = _stripped_span(text, match.start(), match.end())
        if line.text:
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _block_span(text: str, block: list[Piece]) -> Piece:
    return Piece(text[block[0].start : block[-1].end], Span(block[0].start, block[-1].end))


def _unique(lines: list[Piece]) -> tuple[Piece, ...]:
    """Keep the first occurrence of each distinct line."""
    seen: set[str] = set()
    kept = []
    for line in lines:
        if line.text not in seen:
            seen.add(line.text)
            kept.append(line)
    return tuple(kept)


@dataclass
class _Header:
    """Where one article's header sits among the blocks."""

    first_block: int  # the headline's block: the previous article's body ends before it
    body_block: int  # the first block after the repeated headline and captions
    title: str
    captions: tuple[Piece, ...]


def _find_header(blocks: list[list[Piece]], marker: int) -> _Header:
    """Read the header around the ``TT`` line found in ``blocks[marker]``."""
    block = blocks[marker]
    tt_at = next(i for i, line in enumerate(block) if line.text == ARTEFACT_LINE)
    after = block[tt_at + 1 :] or (blocks[marker + 1] if marker + 1 < len(blocks) else [])
    # The headline is repeated right after the marker; that copy is the reliable one.
    title = after[0].text if after else (block[0].text if tt_at else "")
    before = block[:tt_at]
    first_block = marker
    if not before or before[0].text != title:
        # Walk back over caption blocks to the headline's block; without one, claim nothing.
        known = {title} | {line.text for line in before}
        start = marker - 1
        while start >= 0 and all(line.text in known for line in blocks[start]):
            if blocks[start][0].text == title:
                before = [line for b in blocks[start:marker] for line in b] + before
                first_block = start
                break
            start -= 1
    captions = _unique([line for line in before if line.text != title])
    repeated = {title, ARTEFACT_LINE} | {caption.text for caption in captions}
    body_block = marker + 1
    while body_block < len(blocks) and all(line.text in repeated for line in blocks[body_block]):
        body_block += 1
    return _Header(first_block, body_block, title, captions)


def parse_articles(text: str) -> list[Article]:
    """Find every article in a seed file's text. Never raises; returns [] for blank text."""
    blocks = _blocks(text)
    markers = [
        i for i, block in enumerate(blocks) if any(line.text == ARTEFACT_LINE for line in block)
    ]
    if not markers:
        return _single_article(text, blocks)
    headers = [_find_header(blocks, marker) for marker in markers]
    articles = []
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        body_end = following.first_block if following else len(blocks)
        body = blocks[header.body_block : max(body_end, header.body_block)]
        paragraphs = tuple(_block_span(text, block) for block in body)
        articles.append(Article(header.title, header.captions, paragraphs))
    return articles


def _single_article(text: str, blocks: list[list[Piece]]) -> list[Article]:
    """A file without markers: the first line is the headline, the rest is body."""
    if not blocks:
        return []
    headline, *rest_of_first = blocks[0]
    body = ([rest_of_first] if rest_of_first else []) + blocks[1:]
    paragraphs = tuple(_block_span(text, block) for block in body)
    return [Article(headline.text, (), paragraphs)]
