"""One way for scripts to search: in-process from a snapshot, or over HTTP from a service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from indexer.settings import Settings
from search_api.errors import ClientError
from search_api.matching import MatchRules
from search_api.models import SearchRequest, SearchResponse

if TYPE_CHECKING:
    from search_api.searcher import Searcher

SearchFunction = Callable[[SearchRequest], SearchResponse]


@contextmanager
def remote_search(
    api_url: str, api_key: str | None = None, timeout: float = 30.0
) -> Iterator[SearchFunction]:
    """Search a running service (sending ``api_key`` as X-API-Key when given); its connection
    closes when the block ends."""
    import httpx  # only here: importing it costs a local search a tenth of its start-up

    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout, headers=headers) as client:

        def search(request: SearchRequest) -> SearchResponse:
            try:
                response = client.post("/search", json=request.model_dump(mode="json"))
            except httpx.HTTPError as error:
                raise ClientError(f"cannot reach {api_url}: {error}") from error
            if response.status_code == 401:
                raise ClientError(
                    f"{api_url} needs a key: pass --api-key or set SEEDSEARCH_READ_KEY"
                )
            if response.status_code != 200:
                raise ClientError(f"{api_url} answered {response.status_code}: {response.text}")
            return SearchResponse.model_validate_json(response.content)

        yield search


@contextmanager
def local_searcher(settings: Settings) -> Iterator[Searcher]:
    """The live snapshot under ``settings.index_dir``, opened in this process with the model
    warmed up (so took_ms reports the query, not the model loading)."""
    from indexer.embed import Embedder
    from indexer.store import IndexStore
    from search_api.searcher import Searcher

    store = IndexStore(settings.index_dir)
    embedder = Embedder.for_index(settings, store, export=False)
    searcher = Searcher.open(
        store, embedder, rules=MatchRules.from_settings(settings),
        time_limit=settings.query_timeout_seconds,
    )  # fmt: skip
    try:
        embedder.warm_up()
        yield searcher
    finally:
        searcher.close()


@contextmanager
def local_search(settings: Settings) -> Iterator[SearchFunction]:
    """Search the live snapshot under ``settings.index_dir`` in this process."""
    with local_searcher(settings) as searcher:
        yield searcher.search


def open_search(
    settings: Settings, api_url: str | None, api_key: str | None = None
) -> AbstractContextManager[SearchFunction]:
    """Search ``api_url`` when given (with ``api_key``, else the configured read or admin key),
    else the configured index in this process."""
    if not api_url:
        return local_search(settings)
    configured = settings.read_key or settings.api_key
    key = api_key or (configured.get_secret_value() if configured else None)
    return remote_search(api_url, key)
