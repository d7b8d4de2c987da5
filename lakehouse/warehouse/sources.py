"""Table expressions that let DuckDB scan one published partition, local or on an object store."""

from __future__ import annotations

import re

import duckdb

from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import Zone
from lakehouse.sql_text import quote_identifier, quote_literal
from lakehouse.warehouse.partition_store import partition_relpath, read_partition


def table_source(
    con: duckdb.DuckDBPyConnection, zone: Zone, table: str, partition: HourPartition
) -> str:
    """A table expression DuckDB can scan for the published partition.

    A local file is read by DuckDB's own parallel Parquet reader; an object-store partition is
    scanned through pyarrow's S3 filesystem (registered as a view), with projections and
    filters pushed into the Arrow scan either way.
    """
    dataset = read_partition(zone, table, partition)  # raises MissingPartition, helpfully
    if zone.is_local:
        return f"read_parquet({quote_literal(zone.path(partition_relpath(table, partition)))})"
    view = re.sub(r"\W", "_", f"{table}_{partition.dt}_{partition.hh}")
    con.register(view, dataset)
    return quote_identifier(view)
