"""The data service's configuration: environment variables (``LAKEHOUSE_API_*``) with defaults.

Read when the app is created, never at import, so tests and the CLI can set them first.
Storage, policy and project home come from the lakehouse's own settings (``LAKEHOUSE_*_URL``,
``LAKEHOUSE_POLICY_PATH``, ``LAKEHOUSE_HOME``), exactly as the pipeline reads them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.paths import resolve_local

DEFAULT_KEYS_PATH = "data/api_keys.json"


class ServiceSettings(BaseSettings):
    """Tunables of ``lakehouse serve``; each maps to ``LAKEHOUSE_API_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LAKEHOUSE_API_", extra="ignore")

    keys_path: str = Field(
        default=DEFAULT_KEYS_PATH,
        description="The API key file (salted hashes only); relative paths are taken from "
        "the project home.",
    )
    rate_limit: float = Field(
        default=50.0, gt=0, description="Requests per second each key may make, sustained."
    )
    rate_burst: int = Field(
        default=100, ge=1, description="Requests a key may make at once before the rate applies."
    )
    cache_max_age: int = Field(
        default=0,
        ge=0,
        description="Seconds a client may reuse a response without revalidating (ETag).",
    )
    listing_ttl_seconds: float = Field(
        default=5.0,
        ge=0,
        description="On an object store, how long a partition listing is reused; new hours "
        "appear within this delay (local folders are listed on every request).",
    )
    response_cache_mb: int = Field(
        default=64,
        ge=0,
        description="Memory for pages already served, reused while their ETag holds (0: off).",
    )
    memory_limit: str = Field(
        default="1GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$", description="DuckDB memory limit."
    )
    threads: int = Field(default=2, ge=1, description="DuckDB threads per query.")

    def resolved_keys_path(self) -> Path:
        """The key file as an absolute path (anchored at the project home when relative)."""
        return resolve_local(self.keys_path)
