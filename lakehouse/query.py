"""``lakehouse-sql``: run SQL against the analyst catalog, or a role's catalog, read-only."""

from __future__ import annotations

import argparse

import duckdb

from lakehouse.governance.policy import load_policy
from lakehouse.governance.role_catalog import connect_as_role
from lakehouse.resources.catalog import CatalogResource


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse-sql", description=__doc__)
    parser.add_argument("sql", help='e.g. "SELECT * FROM ads_vehicle_hourly_stat LIMIT 5"')
    parser.add_argument(
        "--catalog", default=None, help="catalog file (default data/catalog.duckdb)"
    )
    parser.add_argument(
        "--role",
        default=None,
        help="query as this role: its own catalog, granted tables only, masked, no file access",
    )
    args = parser.parse_args(argv)
    catalog = CatalogResource(path=args.catalog)
    if args.role:
        load_policy().role(args.role)  # an unknown role is refused by name
        conn = connect_as_role(catalog.role_path(args.role))
    else:
        conn = duckdb.connect(str(catalog.resolved_path()), read_only=True)
    with conn:
        conn.sql(args.sql).show(max_rows=100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
