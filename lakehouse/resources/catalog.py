"""The analysts' DuckDB catalog file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from lakehouse.paths import resolve_local

DEFAULT_CATALOG_PATH = "data/catalog.duckdb"


class CatalogResource(dg.ConfigurableResource):
    """The DuckDB database file whose views expose the warehouse tables to SQL and BI tools."""

    path: str | None = Field(
        default=None,
        description=f"Catalog file. Default $LAKEHOUSE_CATALOG_PATH or {DEFAULT_CATALOG_PATH}.",
    )

    def resolved_path(self) -> Path:
        raw = self.path or os.environ.get("LAKEHOUSE_CATALOG_PATH") or DEFAULT_CATALOG_PATH
        return resolve_local(raw)

    def role_path(self, role: str) -> Path:
        """The role's own catalog file, beside the main one: ``roles/<role>.duckdb``."""
        return self.resolved_path().parent / "roles" / f"{role}.duckdb"

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection, retried while another process holds the file's lock."""
        path = self.resolved_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Never download extensions mid-run (offline hosts would stall); load installed ones.
        config = {"autoinstall_known_extensions": False, "autoload_known_extensions": True}
        with DuckDBResource(database=str(path), connection_config=config).get_connection() as conn:
            yield conn
