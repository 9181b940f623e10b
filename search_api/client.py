"""One way for scripts to search: in-process from a snapshot, or over HTTP from a service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from search_api.models import SearchRequest, SearchResponse

SearchFunction = Callable[[SearchRequest], SearchResponse]


class SearchClientError(RuntimeError):
    """The search could not be run; the message is fit to print as is."""


def remote_search(api_url: str, timeout: float = 30.0) -> SearchFunction:
    client = httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout)

    def search(request: SearchRequest) -> SearchResponse:
        try:
            response = client.post("/search", json=request.model_dump(mode="json"))
        except httpx.HTTPError as error:
            raise SearchClientError(f"cannot reach {api_url}: {error}") from error
        if response.status_code != 200:
            raise SearchClientError(f"{api_url} answered {response.status_code}: {response.text}")
        return SearchResponse.model_validate_json(response.content)

    return search


def local_search(index_root: Path, model: str = "") -> SearchFunction:
    """Search the live snapshot under ``index_root`` in this process."""
    from indexer.embed import Embedder, ModelError
    from indexer.snapshot import NoSnapshotError
    from search_api.searcher import ModelMismatchError, Searcher

    try:
        embedder = Embedder(model)
        searcher = Searcher.open_live(index_root, embedder)
    except (NoSnapshotError, ModelMismatchError, ModelError) as error:
        raise SearchClientError(str(error)) from error
    except (OSError, ValueError, RuntimeError) as error:  # missing, corrupt or foreign files
        raise SearchClientError(f"cannot open the index at {index_root}: {error}") from error
    embedder.warm_up()  # so took_ms reports the query, not the model loading
    return searcher.search


def search_function(index_root: Path, api_url: str | None, model: str = "") -> SearchFunction:
    return remote_search(api_url) if api_url else local_search(index_root, model)
