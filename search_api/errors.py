"""The service's errors, in the project's one exception family (``indexer.errors``)."""

from __future__ import annotations

from indexer.errors import SeedsearchError


class NotReadyError(SeedsearchError):
    """No snapshot can be served yet; the message tells the operator what to do."""


class ClientError(SeedsearchError):
    """A running search service could not answer."""
