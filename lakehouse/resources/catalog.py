"""The analysts' DuckDB catalog file, and where the role catalogs sit beside it."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from lakehouse.paths import resolve_local

DEFAULT_CATALOG_PATH = "data/catalog.duckdb"


class CatalogResource(dg.ConfigurableResource):
    """The DuckDB database file whose views expose the warehouse tables to SQL and BI tools.

    Runs never open it for writing: it is rebuilt beside itself and renamed over when a view
    changes (``lakehouse.warehouse.catalog_file``), so readers can keep it open at any time.
    """

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

    def connect_read_only(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection, as every reader should hold one."""
        path = self.resolved_path()
        if not path.exists():
            raise FileNotFoundError(
                f"no catalog at {path}: materialize a layer first (see the README)"
            )
        return duckdb.connect(str(path), read_only=True)
