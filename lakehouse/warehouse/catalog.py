"""Keep one catalog view per warehouse table, named after the table.

The views read the hive-partitioned Parquet directly (``dt``/``hh`` as strings, as in the
seed), so a partition published later is visible through the view without touching the
catalog. The catalog file is only rebuilt when a view's definition changes, and then beside the
old file and renamed over it (see ``catalog_file``), so readers never hold up a run.
"""

from __future__ import annotations

from collections.abc import Sequence

from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import Zone
from lakehouse.sql_text import quote_identifier, quote_literal
from lakehouse.warehouse.catalog_file import write_catalog


def partition_columns(hourly: bool = True, layout: Sequence[str] | None = None) -> Sequence[str]:
    """The table's hive folders: ``dt, hh`` (hourly), ``dt`` (daily), or an explicit layout."""
    if layout:
        return layout
    return ("dt", "hh") if hourly else ("dt",)


def table_glob(
    warehouse: Zone, table: str, hourly: bool = True, layout: Sequence[str] | None = None
) -> str:
    """Where DuckDB finds the table's files (``table`` may be a folder path, e.g. in a share)."""
    folders = "/".join(f"{c}=*" for c in partition_columns(hourly, layout))
    path = warehouse.path(table, f"{folders}/*.parquet")
    return path if warehouse.is_local else warehouse.display(path)


HIVE_TYPES = "{'dt': 'VARCHAR', 'hh': 'VARCHAR'}"


def view_sql(
    warehouse: Zone, table: str, hourly: bool = True, layout: Sequence[str] | None = None
) -> str:
    columns = partition_columns(hourly, layout)
    hive_types = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    return (
        f"CREATE OR REPLACE VIEW {quote_identifier(table)} AS SELECT * FROM read_parquet("
        f"{quote_literal(table_glob(warehouse, table, hourly, layout))}, "
        f"hive_partitioning = true, hive_types = {hive_types})"
    )


def ensure_view(
    catalog: CatalogResource,
    warehouse: Zone,
    table: str,
    hourly: bool = True,
    layout: Sequence[str] | None = None,
) -> str:
    """Make sure the catalog has the table's view; returns what happened, for run metadata.

    An unchanged view costs a read of the catalog's manifest and never opens the database, so
    readers holding the catalog open do not stand in a run's way; a changed one rebuilds the
    catalog beside the old file and swaps it in. Views over an S3 warehouse need DuckDB's
    httpfs extension in the catalog; where it cannot be loaded the view is skipped with the
    reason (and tried again next time) rather than failing the layer.
    """
    update = write_catalog(
        catalog.resolved_path(), {table: view_sql(warehouse, table, hourly, layout)}, merge=True
    )
    if table in update.skipped:
        hint = "" if warehouse.is_local else " (S3 views need DuckDB's httpfs in the catalog)"
        return f"skipped: {update.skipped[table]}{hint}"
    return "unchanged" if update.status == "unchanged" else "created"
