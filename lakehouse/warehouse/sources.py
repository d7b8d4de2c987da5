"""Table expressions that let DuckDB scan one published partition, local or on an object store.

A local partition is read in place by DuckDB's own parallel Parquet reader. An object-store
partition is first fetched whole (boto3, retried, pinned to the version that was listed) into a
private temporary file and read the same way: one code path for both, and a transient fault of
the store is retried or fails the step, never half-read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lakehouse.partitions import HourPartition
from lakehouse.resources.zones import Zone
from lakehouse.sql_text import quote_literal
from lakehouse.warehouse.partition_store import MissingPartition, partition_relpath


@contextmanager
def scanned_partition(zone: Zone, table: str, partition: HourPartition | str) -> Iterator[str]:
    """``read_parquet(...)`` of the published partition, valid inside the ``with`` block."""
    relative = partition_relpath(table, partition)
    info = zone.stat(relative)
    if info is None:
        label = partition if isinstance(partition, str) else partition.key
        raise MissingPartition(
            f"{table} has no partition {label} at {zone.display(zone.path(relative))}; "
            "materialize the upstream asset first"
        )
    with zone.fetch_local(info) as local:
        yield f"read_parquet({quote_literal(local)})"
