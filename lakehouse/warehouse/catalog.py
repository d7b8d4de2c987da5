"""Keep one catalog view per warehouse table, named after the table.

The views read the hive-partitioned Parquet directly (``dt``/``hh`` as strings, as in the
seed), so a partition published later is visible through the view without touching the
catalog. A view is only (re)written when its definition changes, which keeps writers off the
catalog file, and its lock, on nearly every run.
"""

from __future__ import annotations

import duckdb

from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import Zone
from lakehouse.sql_text import quote_identifier, quote_literal


def table_glob(warehouse: Zone, table: str, hourly: bool = True) -> str:
    """Where DuckDB finds the table's files: a local path or an ``s3://`` URL."""
    path = warehouse.path(table, "dt=*/hh=*/*.parquet" if hourly else "dt=*/*.parquet")
    return path if warehouse.is_local else warehouse.display(path)


def view_sql(warehouse: Zone, table: str, hourly: bool = True) -> str:
    hive_types = "{'dt': 'VARCHAR', 'hh': 'VARCHAR'}" if hourly else "{'dt': 'VARCHAR'}"
    return (
        f"CREATE OR REPLACE VIEW {quote_identifier(table)} AS SELECT * FROM read_parquet("
        f"{quote_literal(table_glob(warehouse, table, hourly))}, hive_partitioning = true, "
        f"hive_types = {hive_types})"
    )


def ensure_view(catalog: CatalogResource, warehouse: Zone, table: str, hourly: bool = True) -> str:
    """Create or refresh the table's view; returns what happened, for run metadata.

    Views over an S3 warehouse need DuckDB's httpfs extension in the catalog; where it cannot
    be loaded the view is skipped with the reason rather than failing the layer.
    """
    statement = view_sql(warehouse, table, hourly)
    with catalog.get_connection() as conn:
        if _current_definition(conn, table) == statement:
            return "unchanged"
        try:
            conn.execute(statement)
        except duckdb.Error as exc:
            if warehouse.is_local:
                raise
            return f"skipped: {_first_line(exc)} (S3 views need DuckDB's httpfs in the catalog)"
        conn.execute(f"COMMENT ON VIEW {quote_identifier(table)} IS {quote_literal(statement)}")
    return "created"


def _current_definition(conn: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """The statement that created the view, kept in its comment."""
    row = conn.execute(
        "SELECT comment FROM duckdb_views() WHERE view_name = ? AND NOT internal", [table]
    ).fetchone()
    return row[0] if row else None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
