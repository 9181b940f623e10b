"""The request and response shapes: one definition for the API, the CLI and the evaluator."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from indexer.chunk import ChunkKind
from indexer.store import IndexType
from search_api.matching import Facet

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = get_args(Mode)
DEFAULT_MODE: Mode = "hybrid"
Sort = Literal["relevance", "date"]
# Half-lives past a thousand years order nothing a news archive holds.
MAX_HALF_LIFE_DAYS = 365_000
MAX_QUERY_CHARS = 500
MAX_K = 100
# Results past this many are not worth paging to; it bounds the candidate lists too.
MAX_OFFSET = 900


MAX_FILTER_VALUES = 100
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# At least one character that is not white space by Python's rule (str.isspace), spelled out:
# JSON Schema's \S would let through \x1c-\x1f and \x85, which the server strips as blank.
NOT_BLANK = r"[^\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _encodable(text: str) -> str:
    """Reject text that cannot be UTF-8 (lone surrogates, which JSON escapes can carry)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (lone surrogate)") from None
    return text


def _whole(value: object) -> object:
    """2.0 is the integer 2 in JSON Schema; 2.5, "2" and true stay errors (strict int)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[int, BeforeValidator(_whole), Field(strict=True)]

# One value or a list of them: a lone string counts as a list of one, and the schema says so.
StrList = Annotated[
    list[Annotated[str, AfterValidator(_encodable)]],
    BeforeValidator(_as_list),
    Field(min_length=1, max_length=MAX_FILTER_VALUES),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": MAX_FILTER_VALUES,
                },
            ]
        }
    ),
]


class Filters(BaseModel):
    """Keep only passages from these sources (paths under seeds/) or articles, and published
    within these dates (inclusive; articles without a date drop out when either is set)."""

    model_config = ConfigDict(extra="forbid")

    source: StrList | None = None
    article_id: StrList | None = None
    date_from: date | None = Field(default=None, description="YYYY-MM-DD, inclusive")
    date_to: date | None = Field(default=None, description="YYYY-MM-DD, inclusive")

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        """Only YYYY-MM-DD: pydantic alone would also take timestamps and numbers."""
        if isinstance(value, str) and not ISO_DATE.fullmatch(value):
            raise ValueError("a date must be written YYYY-MM-DD")
        if value is not None and not isinstance(value, str | date):
            raise ValueError("a date must be a YYYY-MM-DD string")
        return value

    def inverted_dates(self) -> str | None:
        """Why nothing can match when ``date_from`` is after ``date_to``; None otherwise. A
        valid request (no schema can state the rule), answered with no results and this note."""
        if self.date_from and self.date_to and self.date_from > self.date_to:
            return f"date_from {self.date_from} is after date_to {self.date_to}: nothing matches"
        return None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        description=(
            f"natural-language query, 1-{MAX_QUERY_CHARS} characters, not blank; "
            '"a phrase" must be in a passage\'s text, -word must not (docs/api.md)'
        ),
        min_length=1, max_length=MAX_QUERY_CHARS, pattern=NOT_BLANK,
    )  # fmt: skip
    k: WholeNumber = Field(default=10, ge=1, le=MAX_K, description="results to return")
    mode: Mode = DEFAULT_MODE
    filters: Filters = Field(default_factory=Filters)
    min_score: float | None = Field(
        default=None,
        allow_inf_nan=False,
        strict=True,  # a number: true and "0.5" are refused
        description="drop results scoring below this (replaces the 'no good match' check)",
    )
    offset: WholeNumber = Field(
        default=0, ge=0, le=MAX_OFFSET, description="results to skip (paging)"
    )
    # Strict: the schema says boolean, so 0, 1 and "yes" are refused, not coerced.
    collapse: bool = Field(
        default=False, strict=True, description="only the best passage per article"
    )
    dedupe: bool = Field(
        default=True, strict=True, description="show each group of near-duplicate passages once"
    )
    highlight: bool = Field(
        default=True, strict=True, description="mark query terms in the returned text"
    )
    explain: bool = Field(
        default=False, strict=True, description="add each result's scores and ranks"
    )
    sort: Sort = Field(
        default="relevance",
        description="relevance, or date: newest first (ties by relevance, undated last)",
    )
    recency_half_life_days: float | None = Field(
        default=None, gt=0, le=MAX_HALF_LIFE_DAYS, allow_inf_nan=False, strict=True,
        description="prefer newer passages: each score counts 1 + w x 2^(-age/this) times, "
        "age in days before the newest matching passage (or date_to); the set is unchanged",
    )  # fmt: skip
    facets: list[Facet] | None = Field(
        default=None, description="count the matching results by month, source and/or kind"
    )

    @field_validator("facets")
    @classmethod
    def _distinct_facets(cls, facets: list[Facet] | None) -> list[Facet] | None:
        return list(dict.fromkeys(facets)) if facets is not None else None

    @field_validator("query", mode="before")
    @classmethod
    def _query_has_words(cls, query: object) -> object:
        """Strip and say plainly what is wrong, before the declared length and pattern apply."""
        if not isinstance(query, str):
            return query  # the type check names it
        query = _encodable(query).strip()
        if not query:
            raise ValueError("query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise ValueError(f"query is longer than {MAX_QUERY_CHARS} characters")
        return query


class ValidationProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer: one readable sentence, and for a 422 the structured problems."""

    detail: str
    errors: list[ValidationProblem] | None = None


class Highlight(BaseModel):
    """A matched query term: ``text[start:end]``."""

    start: int
    end: int


class Evidence(BaseModel):
    """The sentence (or two) that best answers the query: ``text[start:end]``."""

    start: int
    end: int


class Explain(BaseModel):
    """Why a passage ranks where it does: each list's score and rank (null where that list
    missed it; hybrid still gives the exact cosine it fused), and the fused score."""

    dense_score: float | None
    dense_rank: int | None
    lexical_score: float | None
    lexical_rank: int | None
    article_boost: float
    fused_score: float
    recency_factor: float | None = Field(
        default=None, description="with recency_half_life_days: what the score was multiplied by"
    )


class SearchResult(BaseModel):
    rank: int
    score: float
    chunk_id: str
    article_id: str
    title: str
    text: str
    source: str
    kind: ChunkKind
    position: int
    start: int = Field(description="offset of the passage in its source file")
    end: int
    published: str | None = Field(
        default=None, description="the article's publication date, YYYY-MM-DD"
    )
    highlights: list[Highlight] = Field(default_factory=list)
    evidence: list[Evidence] = Field(
        default_factory=list, description="the sentence (or two) of text that answers best"
    )
    duplicates: int = Field(
        default=0, description="near-duplicates of this passage (passing the filters) not shown"
    )
    duplicate_sources: list[str] = Field(
        default_factory=list, description="the sources of those duplicates, sorted"
    )
    explain: Explain | None = Field(default=None, exclude_if=lambda value: value is None)


class FacetValue(BaseModel):
    value: str = Field(description="YYYY-MM or 'undated' for month; a source; a kind")
    count: int


class SearchResponse(BaseModel):
    query: str
    mode: Mode
    took_ms: float
    snapshot: str
    # Why the list is empty, when the service decided so; left out of the JSON otherwise.
    note: str | None = Field(default=None, exclude_if=lambda note: note is None)
    total: int = Field(description="results the query has in all (the same on every page)")
    total_articles: int = Field(description="distinct articles those results come from")
    total_is_lower_bound: bool = Field(
        description="true when an approximate index or a depth bound cut the count short"
    )
    facets: dict[Facet, list[FacetValue]] | None = Field(
        default=None, exclude_if=lambda facets: facets is None,
        description="counts of all the results by each facet asked for",
    )  # fmt: skip
    results: list[SearchResult]


class Passage(BaseModel):
    chunk_id: str
    kind: ChunkKind
    position: int
    text: str
    start: int
    end: int


class Article(BaseModel):
    """One article, to read a result in its context."""

    article_id: str
    title: str
    source: str
    published: str | None
    passages: list[Passage]


MAX_SIMILAR = 50


class SimilarArticle(BaseModel):
    """An article close to another one, with the passage that ties them."""

    article_id: str
    title: str
    source: str
    published: str | None
    score: float = Field(description="cosine of the two articles' vectors")
    duplicate: bool = Field(
        description="every passage of this article is a near-duplicate of one of the other's"
    )
    chunk_id: str = Field(description="this article's passage closest to the other article")
    text: str


class SimilarArticles(BaseModel):
    article_id: str
    articles: list[SimilarArticle] = Field(
        description="the k closest other articles, best first, then every duplicate"
    )


class Stats(BaseModel):
    snapshot: str
    built_at: str
    model: str
    dimension: int
    index_type: IndexType
    files: int
    articles: int
    chunks: int
