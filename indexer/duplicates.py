"""Near-duplicate passage groups, computed at build time over every passage of the corpus.

News sites republish stories, so one text can sit in several articles; the service shows each
group of duplicates once. Two passages of *different* articles are duplicates when their
normalised texts are equal, or when the Jaccard similarity of their word 5-shingles is at least
0.9. Repeats inside one article are not duplicates. Groups are the connected components of the
duplicate pairs, so they are transitive.

Near-duplicate candidates come from MinHash LSH and are verified by the exact Jaccard of the
shingle sets: the sketch never adds a false pair, and the groups depend only on the passages,
not on their order. The sketches are datasketch's (2.x, its default affine32 scheme: crc32 of
each shingle, the MurmurHash3 finalizer, 128 odd-multiplier affine permutations mod 2^32 from
``RandomState(SEED)``), computed here with numpy a batch of passages at a time: importing
datasketch pulls in scipy, which took most of the fixed cost of adding one file to an index.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np

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
_SKETCH_BATCH = 256  # shingle sets hashed at once
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
    signatures = _minhashes([shingles for _, shingles in shingled])
    bands, rows = LSH_PARAMS
    candidates: set[tuple[int, int]] = set()
    for band in range(bands):
        buckets: dict[bytes, list[int]] = {}
        for key, signature in enumerate(signatures[:, band * rows : (band + 1) * rows]):
            buckets.setdefault(signature.tobytes(), []).append(key)
        candidates.update(
            (left, right)
            for bucket in buckets.values()
            for n, left in enumerate(bucket)
            for right in bucket[n + 1 :]
        )
    for left, right in sorted(candidates):
        (text, shingles), (other_text, other_shingles) = shingled[left], shingled[right]
        if _similar(shingles, other_shingles):
            yield text, other_text


def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """The NUM_PERM affine permutations (odd multiplier, offset) mod 2^32, drawn as datasketch
    draws them for its affine32 scheme."""
    generator = np.random.RandomState(SEED)
    multipliers = generator.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + 1
    offsets = generator.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return multipliers, offsets


def _fmix32(hashes: np.ndarray) -> np.ndarray:
    """The MurmurHash3 32-bit finalizer, a bijection that spreads crc32's structure."""
    hashes = hashes ^ (hashes >> np.uint32(16))
    hashes = hashes * np.uint32(0x85EBCA6B)
    hashes = hashes ^ (hashes >> np.uint32(13))
    hashes = hashes * np.uint32(0xC2B2AE35)
    mixed: np.ndarray = hashes ^ (hashes >> np.uint32(16))
    return mixed


def _minhashes(shingle_sets: Sequence[frozenset[str]]) -> np.ndarray:
    """One MinHash signature (NUM_PERM uint32 values) per non-empty shingle set, as rows;
    a batch of sets at a time, so the permuted hashes stay a few megabytes."""
    multipliers, offsets = _permutations()
    signatures = np.empty((len(shingle_sets), NUM_PERM), dtype=np.uint32)
    for first in range(0, len(shingle_sets), _SKETCH_BATCH):
        batch = shingle_sets[first : first + _SKETCH_BATCH]
        sizes = [len(shingles) for shingles in batch]
        # crc32: fast and stable across runs; the permutations supply the randomness.
        hashes = np.fromiter(
            (zlib.crc32(s.encode()) for shingles in batch for s in shingles),
            dtype=np.uint32, count=sum(sizes),
        )  # fmt: skip
        permuted = _fmix32(hashes)[:, None] * multipliers + offsets  # wraps mod 2^32, as meant
        starts = np.cumsum([0, *sizes[:-1]])
        signatures[first : first + len(batch)] = np.minimum.reduceat(permuted, starts, axis=0)
    return signatures


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
