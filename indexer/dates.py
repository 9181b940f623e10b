"""Read an article's publication date from its text, conservatively.

Seed files carry no metadata, so the date comes from two places only:

- captions: agency photo captions name the day the photo was taken ("02 February 2026,
  Palestinian Territories, ..."); a photo can be older than the article but never newer, so the
  latest caption date is the best estimate;
- a dateline opening the first body paragraph ("LONDON, Feb 2, 2026 (Reuters) -",
  "Published: 2 February 2026").

Anything else (a weekday, a month without a day, a date inside the body's sentences) describes
an event, not the publication, and is ignored. When unsure, the answer is ``None``.
"""

from __future__ import annotations

import datetime
import re

from indexer.parse import Article

# Month numbers by the first three letters, which every spelling below shares.
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
# Abbreviations may carry a full stop ("Jan.", "Sept."); "Sept" must come before "Sep".
_MONTH = (
    r"(?P<month>January|February|March|April|May|June|July|August|September|October|November"
    r"|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
)
_DAY = r"(?P<day>[0-9]{1,2})(?:st|nd|rd|th)?(?![0-9])"
# Four digits starting 19 or 20: news dates, and never a year the date type cannot hold.
_YEAR = r"(?P<year>(?:19|20)[0-9]{2})(?![0-9])"

# The three shapes a full date takes; each names its day, month and year groups.
DATE_PATTERNS = (
    re.compile(rf"(?<![0-9]){_DAY}\s+{_MONTH},?\s+{_YEAR}", re.IGNORECASE),  # 2 February 2026
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}", re.IGNORECASE),  # Feb. 2, 2026
    re.compile(
        r"(?<![0-9])(?P<year>(?:19|20)[0-9]{2})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})(?![0-9])"
    ),
)

# A dateline sits in the opening characters, before the article's first sentence.
DATELINE_WINDOW = 120
# Lower-case words a dateline's lead may hold; any other lower-case word means a sentence began.
_LEAD_WORDS = frozenset({"published", "updated", "posted", "last", "modified", "on", "at"})
# Times ("14:05 GMT") and agency credits ("(Reuters)", "/PRNewswire/") may flank the date.
_TIME = r"[0-9]{1,2}[:.][0-9]{2}(?:\s*[aApP]\.?[mM]\.?)?(?:\s+[A-Z]{2,4})?"
_AGENCY = r"(?:\([^()\n]{1,30}\)|/[^/\n]{1,30}/)"
# After the date a dateline ends: a dash, colon or bar, the end of a line, or the paragraph's end.
_DATELINE_END = re.compile(rf"[ \t]*(?:,?[ \t]*{_TIME})?(?:[ \t]*{_AGENCY})?[ \t]*(?:[-—–:|]|\n|$)")


def published_date(article: Article) -> datetime.date | None:
    """The article's publication date where its text states one, else ``None``. Never raises.

    A dateline at the start of the body wins: it states the publication itself, whereas a
    caption dates only its photo.
    """
    if article.paragraphs and (date := _dateline_date(article.paragraphs[0].text)):
        return date
    caption_dates = [date for caption in article.captions for date in _dates_in(caption.text)]
    return max(caption_dates, default=None)


def _dates_in(text: str) -> list[datetime.date]:
    """Every valid full date anywhere in ``text``."""
    found = (_to_date(match) for pattern in DATE_PATTERNS for match in pattern.finditer(text))
    return [date for date in found if date]


def _dateline_date(paragraph: str) -> datetime.date | None:
    """The date of a dateline opening ``paragraph``, if it opens with one."""
    found = _dateline(paragraph)
    return found[0] if found else None


def is_bare_dateline(paragraph: str) -> bool:
    """Whether ``paragraph`` is a dateline and nothing else ("Published: 2 February 2026"):
    it dates the article but is no passage to search."""
    found = _dateline(paragraph)
    return found is not None and not paragraph[found[1] :].strip(" \t\n-—–:|.")


def _dateline(paragraph: str) -> tuple[datetime.date, int] | None:
    """The date of a dateline opening ``paragraph`` and where the dateline ends."""
    window = paragraph[:DATELINE_WINDOW]
    matches = [match for pattern in DATE_PATTERNS if (match := pattern.search(window))]
    if not matches:
        return None
    first = min(matches, key=lambda match: match.start())
    # The end is checked against the whole paragraph: the window's cut is not a paragraph end.
    if not _is_dateline_lead(window[: first.start()]):
        return None
    end = _DATELINE_END.match(paragraph, first.end())
    date = _to_date(first)
    return (date, end.end()) if end and date else None


def _is_dateline_lead(lead: str) -> bool:
    """Whether the text before a date reads like a dateline (place, agency, "Updated", time)
    rather than the start of a sentence."""
    rest = re.sub(_AGENCY, " ", lead)
    rest = re.sub(_TIME, " ", rest)
    if re.search(r"[0-9]", rest) or re.search(r"[^\w\s,:;.'’&/|—–-]", rest):
        return False
    words = re.findall(r"[^\W\d_]+", rest)
    return all(word[0].isupper() or word.lower() in _LEAD_WORDS for word in words)


def _to_date(match: re.Match[str]) -> datetime.date | None:
    """The date a pattern matched, or ``None`` if it does not exist (31 February)."""
    month_text = match["month"].rstrip(".").lower()
    month = int(month_text) if month_text.isdigit() else _MONTHS[month_text[:3]]
    try:
        return datetime.date(int(match["year"]), month, int(match["day"]))
    except ValueError:
        return None
