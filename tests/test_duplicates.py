"""Near-duplicate passage groups: the exact and MinHash rules, articles, transitivity, and the
articles the BBC corpus publishes twice."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from conftest import BBC, shared
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.duplicates import duplicate_groups, normalise
from indexer.parse import parse_articles

WORDS = [f"word{i}" for i in range(200)]


def text(count: int, changed: Sequence[int] = ()) -> str:
    """``count`` distinct words, with the words at ``changed`` positions replaced."""
    return " ".join("other" if i in changed else WORDS[i] for i in range(count))


def jaccard(left: str, right: str) -> float:
    """Jaccard similarity of the word 5-shingles, as the issue defines it."""

    def shingles(passage: str) -> set[tuple[str, ...]]:
        words = normalise(passage).split()
        return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}

    a, b = shingles(left), shingles(right)
    return len(a & b) / len(a | b)


def partition(passages: Sequence[tuple[str, str]]) -> set[frozenset[tuple[str, str]]]:
    """The groups as sets of passages, which do not depend on the passages' order."""
    members: dict[int, set[tuple[str, str]]] = {}
    for passage, group in zip(passages, duplicate_groups(passages), strict=True):
        if group is not None:
            members.setdefault(group, set()).add(passage)
    return {frozenset(group) for group in members.values()}


def test_normalise_folds_unicode_forms_case_and_white_space() -> None:
    assert normalise("  Ｔｈｅ\u00a0ﬁNAL\t\n STRAẞE  ") == "the final strasse"
    assert normalise("") == ""


def test_exact_duplicates_in_different_forms_group_across_articles() -> None:
    passages = [
        ("a", "The Final Straße, Ｐｈａｓｅ ①"),
        ("b", "unrelated"),
        ("b", "  the ﬁnal\u00a0STRASSE,\n\tphase 1 "),
        ("c", "THE FINAL STRASSE, PHASE 1"),
    ]
    assert duplicate_groups(passages) == [0, None, 0, 0]


def test_repeats_inside_one_article_are_not_duplicates() -> None:
    long = text(60)
    passages = [("a", long), ("a", long), ("a", "Short one."), ("a", "short ONE.")]
    assert duplicate_groups(passages) == [None] * 4
    # A copy in another article joins all of them.
    assert duplicate_groups([("a", long), ("a", long), ("b", long)]) == [0, 0, 0]


def test_no_passages() -> None:
    assert duplicate_groups([]) == []


@pytest.mark.parametrize(
    ("words", "changed", "grouped"),
    [
        (60, [59], True),  # one shingle of 56 differs: Jaccard 55/57
        (60, [0], True),  # the first word: one shingle too
        (100, [50], True),  # five shingles differ: 91/101, just above 0.9
        (60, [30], False),  # five shingles of 56: 51/61, one word is too much here
        (60, range(20, 32), False),  # a sentence rewritten
        (4, [3], False),  # under five words only the exact rule applies
    ],
)
def test_near_duplicates_need_shingle_jaccard_of_at_least_0_9(
    words: int, changed: Sequence[int], grouped: bool
) -> None:
    original, edited = text(words), text(words, changed)
    if words >= 5:
        assert (jaccard(original, edited) >= 0.9) == grouped
    expected = [0, 0] if grouped else [None, None]
    assert duplicate_groups([("a", original), ("b", edited)]) == expected


def test_near_duplicates_inside_one_article_are_not_duplicates() -> None:
    assert duplicate_groups([("a", text(60)), ("a", text(60, [59]))]) == [None, None]


def test_groups_are_transitive() -> None:
    first, middle, last = text(100), text(100, [30]), text(100, [30, 70])
    assert jaccard(first, middle) >= 0.9 and jaccard(middle, last) >= 0.9
    assert duplicate_groups([("a", first), ("c", last)]) == [None, None]
    passages = [("a", first), ("x", "alone"), ("b", middle), ("c", last), ("d", last.upper())]
    assert duplicate_groups(passages) == [0, None, 0, 0, 0]


def test_grouping_does_not_depend_on_passage_order() -> None:
    passages = [
        ("a", text(60)),
        ("b", text(60, [59])),
        ("b", text(100)),
        ("c", text(100, [50])),
        ("d", text(100, [50, 51])),
        ("d", "Same words"),
        ("e", "same   WORDS"),
        ("e", "same words"),
        ("f", text(60, [30])),
        ("f", "alone"),
    ]
    expected = partition(passages)
    assert len(expected) == 3
    shuffled = list(passages)
    for seed in range(20):
        random.Random(seed).shuffle(shuffled)
        assert partition(shuffled) == expected


def all_pairs_groups(passages: Sequence[tuple[str, str]]) -> list[int | None]:
    """The issue's definition taken literally: every pair of passages compared."""
    group = list(range(len(passages)))
    for i, (article, passage) in enumerate(passages):
        for j, (other_article, other) in enumerate(passages[:i]):
            same = normalise(passage) == normalise(other)
            near = (
                min(len(passage.split()), len(other.split())) >= 5
                and jaccard(passage, other) >= 0.9
            )
            if article != other_article and (same or near):
                old, new = sorted((group[i], group[j]), reverse=True)
                group = [new if g == old else g for g in group]
    return [g if group.count(g) > 1 else None for g in group]


VARIANTS = [text(3), text(3).upper(), text(60), text(60, [59]), text(60, [30]), text(100)]
VARIANTS += [text(100, [50]), text(100, [50, 51]), text(100, [0]).title()]


@settings(max_examples=300, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(VARIANTS)), max_size=9))
def test_groups_match_comparing_all_pairs(passages: list[tuple[str, str]]) -> None:
    assert duplicate_groups(passages) == all_pairs_groups(passages)


# Articles the BBC corpus publishes twice, found by comparing every pair of files.
BBC_REPUBLISHED = [
    ("business/007.txt", "business/253.txt"),  # the same text
    ("politics/004.txt", "politics/330.txt"),  # the same body under another headline
    ("sport/112.txt", "sport/121.txt"),  # 18 paragraphs, another headline
    ("entertainment/102.txt", "entertainment/341.txt"),  # "Akira Hurosawa" corrected
    ("tech/286.txt", "tech/391.txt"),  # one paragraph edited
]


Groups = dict[str, list[tuple[str, int | None]]]


@pytest.fixture(scope="module")
def bbc_groups() -> Groups:
    """Each BBC article's paragraphs with their groups, grouped over the whole corpus."""
    passages = []
    for path in sorted(shared(BBC).glob("*/*.txt")):
        name = f"{path.parent.name}/{path.name}"
        # One file is not valid UTF-8; replacing its bad bytes keeps it in the corpus.
        (article,) = parse_articles(path.read_bytes().decode("utf-8", "replace"))
        passages += [(name, paragraph.text) for paragraph in article.paragraphs]
    by_article: Groups = {}
    for (name, paragraph), group in zip(passages, duplicate_groups(passages), strict=True):
        by_article.setdefault(name, []).append((paragraph, group))
    return by_article


def groups_of(bbc_groups: Groups, name: str) -> list[int | None]:
    return [group for _, group in bbc_groups[name]]


@pytest.mark.parametrize(("first", "second"), BBC_REPUBLISHED)
def test_bbc_articles_published_twice_have_all_paragraphs_grouped(
    bbc_groups: Groups, first: str, second: str
) -> None:
    assert None not in groups_of(bbc_groups, first)
    assert groups_of(bbc_groups, first) == groups_of(bbc_groups, second)


def test_unrelated_bbc_articles_share_no_group(bbc_groups: Groups) -> None:
    """Two articles that are each published twice, so that both have groups."""
    first = set(groups_of(bbc_groups, "business/007.txt"))
    second = set(groups_of(bbc_groups, "business/214.txt"))
    assert None not in first | second
    assert not first & second


def test_bbc_repeats_inside_one_article_stay_ungrouped(bbc_groups: Groups) -> None:
    """No other article has this line, which sport/190.txt repeats three times."""
    article = bbc_groups["sport/190.txt"]
    repeats = [group for line, group in article if line == "Winners meet in final match"]
    assert repeats == [None, None, None]


def test_the_sketches_are_datasketchs(bbc_groups: Groups) -> None:
    """The numpy MinHash computes datasketch's own sketches (affine32, crc32, seed 1), bit
    for bit, so its LSH bands find the candidates datasketch's would."""
    import zlib

    from datasketch import MinHash

    from indexer.duplicates import NUM_PERM, SEED, _minhashes, _shingles

    texts = [text for paragraphs in bbc_groups.values() for text, _ in paragraphs][:600]
    sets = [shingles for shingles in (_shingles(normalise(t)) for t in texts) if shingles]
    expected = MinHash.bulk(
        [[shingle.encode() for shingle in shingles] for shingles in sets],
        num_perm=NUM_PERM, seed=SEED, hashfunc=zlib.crc32,
    )  # fmt: skip
    assert len(sets) > 500
    assert (_minhashes(sets) == [sketch.hashvalues for sketch in expected]).all()
