"""``lakehouse-sql``: run SQL against the analyst catalog (read-only) and print the result."""

from __future__ import annotations

import argparse

import duckdb

from lakehouse.resources.catalog import CatalogResource


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse-sql", description=__doc__)
    parser.add_argument("sql", help='e.g. "SELECT * FROM ads_vehicle_hourly_stat LIMIT 5"')
    parser.add_argument(
        "--catalog", default=None, help="catalog file (default data/catalog.duckdb)"
    )
    args = parser.parse_args(argv)
    path = CatalogResource(path=args.catalog).resolved_path()
    with duckdb.connect(str(path), read_only=True) as conn:
        conn.sql(args.sql).show(max_rows=100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
