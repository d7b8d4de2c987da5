"""Table expressions that let DuckDB scan published partitions, local or on an object store.

A local partition is read in place by DuckDB's own parallel Parquet reader. An object-store
partition is first fetched whole (boto3, retried, pinned to the version that was listed) into a
private temporary file and read the same way: one code path for both, and a transient fault of
the store is retried or fails the step, never half-read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from lakehouse.partitions import HourPartition
from lakehouse.resources.zones import ObjectInfo, Zone
from lakehouse.sql_text import quote_literal
from lakehouse.warehouse.partition_store import MissingPartition, partition_relpath


@contextmanager
def fetched_partition(zone: Zone, table: str, partition: HourPartition | str) -> Iterator[str]:
    """A local file holding the published partition, valid inside the ``with`` block."""
    relative = partition_relpath(table, partition)
    info = zone.stat(relative)
    if info is None:
        label = partition if isinstance(partition, str) else partition.key
        raise MissingPartition(
            f"{table} has no partition {label} at {zone.display(zone.path(relative))}; "
            "materialize the upstream asset first"
        )
    with zone.fetch_local(info) as local:
        yield local


@contextmanager
def scanned_partition(zone: Zone, table: str, partition: HourPartition | str) -> Iterator[str]:
    """``read_parquet(...)`` of the published partition, valid inside the ``with`` block."""
    with fetched_partition(zone, table, partition) as local:
        yield f"read_parquet({quote_literal(local)})"


@dataclass(frozen=True)
class ScannedPartitions:
    """The published ones among several partitions, as one DuckDB table expression."""

    source: str | None  # read_parquet([...]) of the present partitions; None if none is
    present: tuple[HourPartition, ...]
    missing: tuple[HourPartition, ...]
    versions: tuple[ObjectInfo, ...]  # what was read: key, size and version of each file


@contextmanager
def scanned_partitions(
    zone: Zone, table: str, partitions: Sequence[HourPartition]
) -> Iterator[ScannedPartitions]:
    """Scan the hours of ``partitions`` that are published; the others are listed as missing.

    For a daily table over its hours: a day with missing hours is built from those that exist.
    Each present partition is pinned to the version listed here (see ``Zone.fetch_local``).
    """
    present, missing, versions, locals_ = [], [], [], []
    with contextlib.ExitStack() as stack:
        for partition in partitions:
            info = zone.stat(partition_relpath(table, partition))
            if info is None:
                missing.append(partition)
                continue
            present.append(partition)
            versions.append(info)
            locals_.append(stack.enter_context(zone.fetch_local(info)))
        source = (
            "read_parquet([" + ", ".join(quote_literal(p) for p in locals_) + "])"
            if locals_
            else None
        )
        yield ScannedPartitions(source, tuple(present), tuple(missing), tuple(versions))
