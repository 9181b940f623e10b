"""Where a search's time goes, stage by stage: every search answer carries it as a
``Server-Timing`` header, and ``scripts/bench_query.py`` reports each stage's p50."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

# In the order a search runs them: the query's vector; the passages close to it (and the
# "no good match" check); the best word matches; fusing, deduplicating, ordering and counting
# the matching set; reading the page's rows and highlights; their evidence sentences; building
# and encoding the answer.
STAGES = ("encode", "dense", "lexical", "fuse", "fetch", "evidence", "serialize")


class StageTimes:
    """Milliseconds spent in each stage of one search (a stage may be entered many times)."""

    def __init__(self) -> None:
        self._seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] += time.perf_counter() - started

    def header(self) -> str:
        """The ``Server-Timing`` value: ``encode;dur=1.234, dense;dur=0.210, ...`` (ms)."""
        return ", ".join(f"{name};dur={s * 1000:.3f}" for name, s in self._seconds.items())


def parse_server_timing(header: str) -> dict[str, float]:
    """Milliseconds by stage from a ``Server-Timing`` value (what ``StageTimes.header``
    writes); metrics without a duration are left out."""
    found = {}
    for metric in header.split(","):
        name, _, parameters = metric.strip().partition(";")
        for parameter in parameters.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key == "dur" and name:
                found[name] = float(value)
    return found
