"""Role catalogs: one DuckDB file per sharing role, holding only its granted tables, masked.

The tables are filled from the role's share (already masked), one partition at a time and in
one transaction, so a reader sees an hour whole or not at all. Nothing in the file points at
the warehouse or raw zone, and role connections are opened read-only with DuckDB's external
access disabled: no ``read_parquet``, ``ATTACH`` or extension can reach around the masking.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.dataset as ds
from dagster_duckdb import DuckDBResource

from lakehouse.partitions import HourPartition
from lakehouse.sql_text import quote_identifier

ROLE_CONNECTION_CONFIG = {"enable_external_access": False, "autoload_known_extensions": False}


def refresh_partition(path: Path, table: str, partition: HourPartition, masked: ds.Dataset) -> int:
    """Replace the hour of ``table`` in the role catalog at ``path`` with ``masked`` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = quote_identifier(table)
    with DuckDBResource(database=str(path)).get_connection() as con:
        con.register("masked_hour", masked)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {name} AS "
            "SELECT *, ''::VARCHAR AS dt, ''::VARCHAR AS hh FROM masked_hour LIMIT 0"
        )
        con.execute("BEGIN TRANSACTION")
        con.execute(f"DELETE FROM {name} WHERE dt = ? AND hh = ?", [partition.dt, partition.hh])
        con.execute(
            f"INSERT INTO {name} SELECT *, ?, ? FROM masked_hour", [partition.dt, partition.hh]
        )
        con.execute("COMMIT")
        (rows,) = con.sql(
            f"SELECT count(*) FROM {name} WHERE dt = ? AND hh = ?",
            params=[partition.dt, partition.hh],
        ).fetchall()[0]
    return int(rows)


def connect_as_role(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a role catalog that cannot read files or attach databases."""
    if not path.exists():
        raise FileNotFoundError(f"no role catalog at {path}; materialize the role's share first")
    return duckdb.connect(str(path), read_only=True, config=ROLE_CONNECTION_CONFIG)
