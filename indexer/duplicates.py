"""Near-duplicate passage groups, computed at build time over every passage of the corpus.

News sites republish stories, so one text can sit in several articles; the service shows each
group of duplicates once. Two passages of *different* articles are duplicates when their
normalised texts are equal, or when the Jaccard similarity of their word 5-shingles is at least
0.9. Repeats inside one article are not duplicates. Groups are the connected components of the
duplicate pairs, so they are transitive.

Near-duplicate candidates come from MinHash LSH (datasketch) and are verified by the exact
Jaccard of the shingle sets: the sketch never adds a false pair, and the groups depend only on
the passages, not on their order.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from fractions import Fraction

from datasketch import MinHash, MinHashLSH

SHINGLE_WORDS = 5
# A fraction, so that a pair right at the threshold is compared exactly.
THRESHOLD = Fraction(9, 10)
NUM_PERM = 128
SEED = 1  # fixed permutations: the same candidates on every build
# LSH (bands, rows), chosen for recall since verification drops false candidates: a pair at
# Jaccard 0.9 is a candidate with probability 1 - (1 - 0.9**8)**16 > 0.9998, one at 0.5 with
# 0.06. datasketch's own pick for threshold 0.9, (5, 25), finds only 31% of the pairs at 0.9
# (3 of the 7 near-duplicate paragraph pairs of the BBC corpus).
LSH_PARAMS = (16, 8)
_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """``text`` in NFKC, casefolded, with white space runs collapsed to one space and stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def duplicate_groups(passages: Sequence[tuple[str, str]]) -> list[int | None]:
    """The group of each ``(article_id, text)`` passage: the index of the group's first
    passage, or None for a passage without duplicates."""
    articles = [article for article, _ in passages]
    by_text: dict[str, list[int]] = {}
    for index, (_, text) in enumerate(passages):
        by_text.setdefault(normalise(text), []).append(index)
    groups = _UnionFind(len(passages))
    for members in by_text.values():
        _link(groups, members, members, articles)
    for left, right in _similar_pairs(list(by_text)):
        _link(groups, by_text[left], by_text[right], articles)
    return groups.labels()


def _shingles(normalised: str) -> frozenset[str]:
    """Word 5-shingles; none for a text of fewer words, which only the exact rule can match.
    Words leave punctuation out: a republished story with one full stop added is the same."""
    words = _WORD.findall(normalised)
    return frozenset(
        " ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)
    )


def _similar_pairs(texts: list[str]) -> Iterator[tuple[str, str]]:
    """Pairs of distinct ``texts`` whose shingle sets have Jaccard >= THRESHOLD."""
    shingled = [(text, shingles) for text in texts if (shingles := _shingles(text))]
    sketches = MinHash.bulk(
        [[shingle.encode() for shingle in shingles] for _, shingles in shingled],
        num_perm=NUM_PERM,
        seed=SEED,
        # Fast and stable across runs; MinHash needs only few collisions from it, the
        # permutations supply the randomness.
        hashfunc=zlib.crc32,
    )
    lsh = MinHashLSH(num_perm=NUM_PERM, params=LSH_PARAMS)
    with lsh.insertion_session() as session:
        for key, sketch in enumerate(sketches):
            session.insert(key, sketch)
    for key, sketch in enumerate(sketches):
        text, shingles = shingled[key]
        for other in lsh.query(sketch):
            other_text, other_shingles = shingled[other]
            if key < other and _similar(shingles, other_shingles):
                yield text, other_text


def _similar(left: frozenset[str], right: frozenset[str]) -> bool:
    return len(left & right) >= THRESHOLD * len(left | right)


def _link(groups: _UnionFind, left: list[int], right: list[int], articles: list[str]) -> None:
    """Join the groups as all pairs of a passage in ``left`` and one in ``right`` from
    different articles would, in linear time. Each list holds the passages of one normalised
    text, which the exact rule has already joined when they span several articles; so linking
    every passage to one partner of another article, where there is one, is enough."""
    for passages, partners in ((left, right), (right, left)):
        witnesses = _witnesses(partners, articles)
        for passage in passages:
            partner = next((w for w in witnesses if articles[w] != articles[passage]), None)
            if partner is not None:
                groups.union(passage, partner)


def _witnesses(passages: list[int], articles: list[str]) -> list[int]:
    """The first passage and the first from another article, if any: whatever a passage's
    article, it differs from one of them whenever it differs from any of ``passages``."""
    first = passages[0]
    other = next((p for p in passages if articles[p] != articles[first]), None)
    return [first] if other is None else [first, other]


class _UnionFind:
    """Disjoint sets of passage indexes whose root is always the smallest member."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]  # path halving
            item = self.parent[item]
        return item

    def union(self, left: int, right: int) -> None:
        low, high = sorted((self.find(left), self.find(right)))
        self.parent[high] = low

    def labels(self) -> list[int | None]:
        """Each item's root, or None for an item alone in its set."""
        roots = [self.find(item) for item in range(len(self.parent))]
        sizes: dict[int, int] = {}
        for root in roots:
            sizes[root] = sizes.get(root, 0) + 1
        return [root if sizes[root] > 1 else None for root in roots]
