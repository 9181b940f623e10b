"""The project's one exception family, and how every command line reports it.

Every domain error derives from ``SeedsearchError`` and carries the exit code its command line
returns. The indexer's errors live here; the service's own (``NotReadyError``, ``ClientError``)
live in ``search_api.errors``, since the indexer never imports the service. The codes are the
same in every CLI (``python -m indexer``, ``python -m search_api``, ``scripts/*.py``):

- 0: success
- 1: a runtime failure (nothing could be published, the index cannot be opened, the server or
  a remote service cannot be reached)
- 2: a usage or configuration error (bad flag, bad ``SEEDSEARCH_*`` variable, bad input file)
- 3: the build's quality gate refused to publish the new snapshot
- 4: another build holds the build lock, so nothing was done (``build --no-wait`` says so at
  once; ``build`` and ``rollback`` after waiting for it)
"""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_GATE = 3
EXIT_LOCKED = 4


class SeedsearchError(Exception):
    """Base of every error the project raises on purpose; its message names what to fix."""

    exit_code = EXIT_FAILURE


class ConfigurationError(SeedsearchError):
    """A flag or ``SEEDSEARCH_*`` variable has an unusable value; the message names it."""

    exit_code = EXIT_USAGE


class UsageError(SeedsearchError):
    """A command was asked for something it cannot do with these arguments or input files."""

    exit_code = EXIT_USAGE


class ModelError(ConfigurationError):
    """The configured embedding model cannot be found or loaded."""


class ModelFileMissingError(SeedsearchError):
    """The exported ONNX model a server needs is not under the index root."""


class IndexSpecError(ConfigurationError):
    """An index type or parameter that does not exist or cannot hold."""


class SourceError(SeedsearchError):
    """A seed file that cannot be read as text; the message says why.

    A build records it against the file and goes on with the others."""


class BuildError(SeedsearchError):
    """Nothing could be published; the message says why."""


class BuildLockedError(BuildError):
    """Another build holds the index lock."""

    exit_code = EXIT_LOCKED


class JobRecordError(SeedsearchError):
    """A rebuild job's record under the index root cannot be read."""


class GateRefusedError(BuildError):
    """The new snapshot scored too far below the live one; it was not published."""

    exit_code = EXIT_GATE


class SnapshotError(SeedsearchError):
    """A snapshot cannot be opened or read: missing, damaged, or of an unknown format."""


class NoSnapshotError(SnapshotError):
    """There is no published snapshot to search yet."""

    def __init__(self, index_root: object) -> None:
        super().__init__(f"no index at {index_root}; run python -m indexer build first")


class ModelMismatchError(SnapshotError):
    """The snapshot was built with another model than the one loaded to search it."""


class QueryTimeoutError(SeedsearchError):
    """A search ran past its time limit and was stopped."""


def run_command(command: Callable[[], int]) -> int:
    """Run a command-line body: a ``SeedsearchError`` becomes one line on stderr and its code."""
    try:
        return command()
    except SeedsearchError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
