"""Deterministic fault injection for the crash and full-disk tests: nothing else sets it.

``SEEDSEARCH_FAULT=<point>:<action>`` makes a build act at one named point:

- ``kill``: SIGKILL the build there, as a power cut or the OOM killer would. At a file-writing
  point the file is first cut to half its length, as a write interrupted part-way leaves it.
- ``enospc`` / ``erofs``: raise the ``OSError`` a full disk or a read-only mount gives there.

The points, in build order: ``embedding`` (after the first batch is cached), ``vectors``,
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
FAULT_POINTS = ("embedding", "vectors", "chunks", "sentences", "manifest", "publish", "published")
_ERRORS = {"enospc": errno.ENOSPC, "erofs": errno.EROFS}


def fault_point(point: str, path: Path | None = None) -> None:
    """Act here if ``SEEDSEARCH_FAULT`` names this point; otherwise do nothing."""
    name, _, action = os.environ.get(FAULT_VARIABLE, "").partition(":")
    if name != point:
        return
    if action == "kill":
        if path is not None and path.is_file():
            os.truncate(path, path.stat().st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    if action in _ERRORS:
        code = _ERRORS[action]
        raise OSError(code, os.strerror(code), str(path) if path else None)
