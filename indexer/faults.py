"""Deterministic fault injection for the crash and full-disk tests: nothing else sets it.

``SEEDSEARCH_FAULT=<point>:<action>`` makes a build act at one named point:

- ``kill``: SIGKILL the build there, as a power cut or the OOM killer would. At a file-writing
  point the file is first cut to half its length, as a write interrupted part-way leaves it.
- ``enospc`` / ``erofs``: raise the ``OSError`` a full disk or a read-only mount gives there.
- ``append``: add a paragraph to the file at hand, as a writer saving it mid-build would.

The points, in build order: ``read`` (a seed file scanned, about to be read), ``embedding`` (after the first batch is cached), ``vectors``,
``chunks`` and ``sentences`` (each data file written), ``manifest`` (written, before the
digests are checked), ``publish`` (everything fsynced, before CURRENT moves) and ``published``
(right after CURRENT moved).
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

FAULT_VARIABLE = "SEEDSEARCH_FAULT"
FAULT_POINTS = (
    "read",
    "embedding",
    "vectors",
    "chunks",
    "sentences",
    "manifest",
    "publish",
    "published",
)
_WRITE_POINTS = ("vectors", "chunks", "sentences", "manifest")  # a kill there cuts the file
_ERRORS = {"enospc": errno.ENOSPC, "erofs": errno.EROFS}


def fault_point(point: str, path: Path | None = None) -> None:
    """Act here if ``SEEDSEARCH_FAULT`` names this point; otherwise do nothing."""
    if point not in FAULT_POINTS:  # a misspelt point would never fire, and its test never fail
        raise ValueError(f"unknown fault point {point!r}")
    name, _, action = os.environ.get(FAULT_VARIABLE, "").partition(":")
    if name != point:
        return
    if action == "kill":
        if point in _WRITE_POINTS and path is not None and path.is_file():
            os.truncate(path, path.stat().st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "append" and path is not None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write("\n\nA paragraph written while the build was reading the file.\n")
    if action in _ERRORS:
        code = _ERRORS[action]
        raise OSError(code, os.strerror(code), str(path) if path else None)
