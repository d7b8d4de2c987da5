"""``lakehouse sql``: run SQL against the analyst catalog, or a role's catalog, read-only."""

from __future__ import annotations

import click
import duckdb

from lakehouse.governance.policy import load_policy
from lakehouse.governance.role_catalog import connect_as_role
from lakehouse.resources.catalog import CatalogResource


@click.command(name="sql")
@click.argument("sql")
@click.option("--catalog", default=None, help="Catalog file (default data/catalog.duckdb).")
@click.option(
    "--role",
    default=None,
    help="Preview as this role: its granted tables only, masked, no file access.",
)
def command(sql: str, catalog: str | None, role: str | None) -> None:
    """Run SQL, e.g. "SELECT * FROM ads_vehicle_hourly_stat LIMIT 5"."""
    resource = CatalogResource(path=catalog)
    if role:
        load_policy().role(role)  # an unknown role is refused by name
        conn = connect_as_role(resource.role_path(role))
    else:
        conn = duckdb.connect(str(resource.resolved_path()), read_only=True)
    with conn:
        try:
            conn.sql(sql).show(max_rows=100)
        except duckdb.Error as exc:
            raise click.ClickException(str(exc).strip()) from None
