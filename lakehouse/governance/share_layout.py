"""Where a role's shared partitions are, and the policy versions each one records.

A share partition is ``<share>/<role>/<table>/dt=YYYY-MM-DD/hh=HH/part-0.parquet`` (the
warehouse's own layout, under the role's folder). Its Parquet footer carries, as key-value
metadata, the role, table and hour and the policy it was masked under (``lakehouse.*`` keys),
so the file itself says whether it is still current, wherever it is copied.
"""

from __future__ import annotations

import posixpath

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import Zone
from lakehouse.sql_text import quote_literal
from lakehouse.warehouse.partition_store import PARTITION_FILE, partition_relpath

ROLE_KEY = "lakehouse.role"
TABLE_KEY = "lakehouse.table"
PARTITION_KEY = "lakehouse.partition"
POLICY_VERSION_KEY = "lakehouse.policy_version"
MASKING_VERSION_KEY = "lakehouse.masking_version"


def shared_table(role: str, table: str) -> str:
    """The table's folder inside the share, relative to the share root."""
    return posixpath.join(role, table)


def shared_relpath(role: str, table: str, partition: HourPartition) -> str:
    return partition_relpath(shared_table(role, table), partition)


def partition_labels(
    role: str, table: str, partition: HourPartition, policy_version: str, masking_version: str
) -> dict[str, str]:
    """The key-value metadata a share partition is written with."""
    return {
        ROLE_KEY: role,
        TABLE_KEY: table,
        PARTITION_KEY: partition.key,
        POLICY_VERSION_KEY: policy_version,
        MASKING_VERSION_KEY: masking_version,
    }


def kv_metadata_option(labels: dict[str, str]) -> str:
    """The labels as DuckDB's ``COPY ... (KV_METADATA {...})`` option."""
    pairs = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in sorted(labels.items()))
    return f"KV_METADATA {{{pairs}}}"


def recorded_labels(zone: Zone, relative_path: str) -> dict[str, str]:
    """The ``lakehouse.*`` labels in a shared file's footer (none for files from before them)."""
    info = zone.stat(relative_path)
    if info is None:
        raise FileNotFoundError(zone.display(zone.path(relative_path)))
    tail = zone.read_tail(info, min(info.size, 64 * 1024))
    if len(tail) >= 8 and len(tail) < info.size:
        needed = int.from_bytes(tail[-8:-4], "little") + 8
        if needed > len(tail):
            tail = zone.read_tail(info, min(info.size, needed))
    metadata = pq.read_metadata(pa.BufferReader(tail)).metadata or {}
    return {k.decode(): v.decode() for k, v in metadata.items() if k.startswith(b"lakehouse.")}


def shared_partitions(share: Zone, role: str) -> dict[str, list[HourPartition]]:
    """Table folder -> its shared hours, from one listing of the role's share folder.

    Every folder below the role's appears, even one holding no recognisable partition, so a
    reconciliation can remove whatever a role may no longer read.
    """
    root = share.path(role)
    found: dict[str, list[HourPartition]] = {}
    for info in share.list_files(role, recursive=True):
        parts = posixpath.relpath(info.path, root).split("/")
        if len(parts) < 2:
            continue
        hours = found.setdefault(parts[0], [])
        if len(parts) == 4 and parts[3] == PARTITION_FILE:
            try:
                hours.append(
                    HourPartition.from_hive(
                        parts[1].removeprefix("dt="), parts[2].removeprefix("hh=")
                    )
                )
            except ValueError:
                continue
    return {table: sorted(hours, key=lambda p: p.start) for table, hours in sorted(found.items())}
