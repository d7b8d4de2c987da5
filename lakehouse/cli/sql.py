"""``lakehouse sql``: run SQL against the analyst catalog, or preview it as a role, read-only."""

from __future__ import annotations

from pathlib import Path

import click
import duckdb

from lakehouse.resources.catalog import CatalogResource
from lakehouse.warehouse.catalog_file import first_line


@click.command(name="sql")
@click.argument("sql")
@click.option(
    "--catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Catalog file (default $LAKEHOUSE_CATALOG_PATH or data/catalog.duckdb in the project).",
)
@click.option(
    "--role",
    default=None,
    help="Preview as this role: its granted tables only, masked, no file access. A preview, "
    "not a security boundary.",
)
def command(sql: str, catalog: Path | None, role: str | None) -> None:
    """Run SQL, e.g. "SELECT * FROM ads_vehicle_hourly_stat LIMIT 5"."""
    resource = CatalogResource(path=str(catalog.resolve()) if catalog else None)
    try:
        conn = _connect(resource, role)
        with conn:
            result = conn.sql(sql)
            if result is not None:  # statements such as SET return no relation
                result.show(max_rows=100)
    except (duckdb.Error, OSError, ValueError) as exc:
        # One line, no traceback: the user's SQL or setup is wrong, not the program.
        raise click.ClickException(first_line(exc)) from None


def _connect(resource: CatalogResource, role: str | None) -> duckdb.DuckDBPyConnection:
    if not role:
        return resource.connect_read_only()
    # Imported here: only role previews need the policy, storage and pyarrow datasets.
    from lakehouse.governance.policy import load_policy
    from lakehouse.governance.preview import connect_for_role
    from lakehouse.resources.storage import LakehouseStorage

    return connect_for_role(load_policy(), role, LakehouseStorage(), resource)
