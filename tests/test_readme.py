"""The README stays a newcomer's first hour: short, true to the settings, linked to docs/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from indexer.settings import ENV_PREFIX, Settings, flag_name

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 400
# An internal tracker reference ("issue 7", "(issue #8)"); other projects are cited by name
# and number ("Typesense #376") or by URL.
ISSUE_NUMBER = re.compile(r"\bissue\s+#?\d+", re.IGNORECASE)
# A Markdown link or image whose target is relative: [text](target) or ![alt](target).
RELATIVE_LINK = re.compile(r"!?\[[^\]]*\]\((?![a-z][a-z0-9+.-]*:)([^)\s]+)\)", re.IGNORECASE)


def section(markdown: str, heading: str) -> str:
    """The text under ``## heading``, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown tables in ``text``, as lists of stripped cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:] if rows else rows  # the header row


def configuration_rows() -> dict[str, list[str]]:
    """The configuration table, by the setting each row's ``SEEDSEARCH_*`` variable names."""
    found: dict[str, list[str]] = {}
    for cells in table_rows(section(README.read_text(encoding="utf-8"), "Configuration")):
        variable = re.fullmatch(rf"`{ENV_PREFIX}([A-Z0-9_]+)`", cells[0])
        assert variable, f"a configuration row that names no {ENV_PREFIX}* variable: {cells}"
        field = variable.group(1).lower()
        assert field not in found, f"{cells[0]} is listed twice"
        found[field] = cells
    return found


def default_of(field: str) -> Any:
    return Settings.model_fields[field].get_default(call_default_factory=True)


def literal(cell: str) -> Any:
    """The first backticked value of a default cell, parsed as JSON where it is JSON."""
    match = re.match(r"`([^`]*)`", cell)
    if match is None:
        return None
    try:
        return json.loads(match.group(1))
    except json.JSONDecodeError:
        return match.group(1)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_configuration_table_lists_every_setting_and_only_settings() -> None:
    listed = set(configuration_rows())
    assert listed - set(Settings.model_fields) == set(), "rows naming no setting"
    assert set(Settings.model_fields) - listed == set(), "settings missing from the table"


def test_the_configuration_table_gives_each_setting_its_flag_and_default() -> None:
    for field, (variable, flag, default, meaning) in configuration_rows().items():
        assert meaning, f"{variable} has no meaning"
        if flag:
            assert flag == f"`{flag_name(field)}`", f"{variable}: the flag is {flag_name(field)}"
        expected = default_of(field)
        stated = literal(default)
        if stated is None:  # "unset (...)" or a description, for settings without a value
            assert expected in (None, ""), f"{variable}: the default is {expected!r}"
        elif isinstance(expected, bool | int | float):
            assert stated == pytest.approx(expected), f"{variable}: the default is {expected!r}"
        else:
            assert str(stated) == str(expected), f"{variable}: the default is {expected!r}"


def test_the_readme_reads_in_ten_minutes() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_no_internal_issue_numbers(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = [m.group(0) for m in ISSUE_NUMBER.finditer(text)]
    assert found == [], f"{path.relative_to(ROOT)} names internal issues: {found}"


def test_every_readme_link_into_docs_resolves() -> None:
    links = RELATIVE_LINK.findall(README.read_text(encoding="utf-8"))
    into_docs = [link for link in links if link.startswith("docs/")]
    assert into_docs, "README.md links to nothing under docs/"
    for link in into_docs:
        target, _, anchor = link.partition("#")
        path = ROOT / target
        assert path.is_file(), f"README.md links to {target}, which does not exist"
        if anchor:
            assert anchor in anchors(path.read_text(encoding="utf-8")), f"no section {link}"


def test_links_within_and_between_docs_resolve() -> None:
    for page in sorted(DOCS.glob("*.md")):
        for link in RELATIVE_LINK.findall(page.read_text(encoding="utf-8")):
            target, _, anchor = link.partition("#")
            path = (page.parent / target).resolve() if target else page
            assert path.is_file(), f"docs/{page.name} links to {target}, which does not exist"
            if anchor and path.suffix == ".md":
                text = path.read_text(encoding="utf-8")
                assert anchor in anchors(text), f"docs/{page.name}: no section {link}"


@pytest.mark.parametrize("name", ["page.png", "page-375.png"])
def test_the_screenshots_are_small(name: str) -> None:
    picture = DOCS / name
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size < 150_000
