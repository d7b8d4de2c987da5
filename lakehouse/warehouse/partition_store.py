"""Atomic, idempotent Parquet partitions under ``<warehouse>/<table>/dt=YYYY-MM-DD/hh=HH/``.

A partition is a single Parquet object, ``part-0.parquet``. It is first written to a staging
object outside every table folder and then moved over the final name: a local rename, or an S3
server-side copy, both of which make the new object visible at once and whole. Readers therefore
see the old partition or the new one, never a half-written or mixed one; a failed write leaves
the previous partition as it was; and two partitions never share a staging name.

Two ways in: :func:`write_partition` streams Arrow batches through pyarrow's writer, and
:class:`StagedFile` hands out a local path for an engine (DuckDB's parallel ``COPY``) to write,
then validates and publishes what was written.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import Zone

PARTITION_FILE = "part-0.parquet"
STAGING_DIR = "_staging"
ROWS_PER_ROW_GROUP = 1 << 20

ChunkValidator = Callable[[pa.Table], None]


class MissingPartition(LookupError):
    """An upstream partition that has not been materialized yet."""


@dataclass(frozen=True)
class WrittenPartition:
    """What a partition write published."""

    url: str
    rows: int
    bytes: int
    row_groups: int


def partition_relpath(table: str, partition: HourPartition) -> str:
    return posixpath.join(table, partition.hive_path, PARTITION_FILE)


def _staging_relpath(table: str, partition: HourPartition) -> str:
    return posixpath.join(
        STAGING_DIR, table, f"{partition.dt}T{partition.hh}-{uuid.uuid4().hex}.parquet"
    )


def write_partition(
    zone: Zone,
    table: str,
    partition: HourPartition,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    validate: ChunkValidator | None = None,
    rows_per_row_group: int = ROWS_PER_ROW_GROUP,
    compression: str = "zstd",
) -> WrittenPartition:
    """Stream ``batches`` into the partition and publish it atomically.

    Batches are grouped into row groups of about ``rows_per_row_group`` rows; each group is
    passed to ``validate`` before it is written, so a violation aborts the write and the
    previous partition stays published.
    """
    final = zone.path(partition_relpath(table, partition))
    staging_rel = _staging_relpath(table, partition)
    staging = zone.path(staging_rel)
    if zone.is_local:
        zone.ensure_dir(posixpath.dirname(staging_rel))
        zone.ensure_dir(posixpath.dirname(partition_relpath(table, partition)))
    rows = row_groups = 0
    try:
        with (
            zone.filesystem.open_output_stream(staging) as sink,
            pq.ParquetWriter(sink, schema, compression=compression) as writer,
        ):
            for chunk in _row_groups(batches, schema, rows_per_row_group):
                if validate is not None:
                    validate(chunk)
                writer.write_table(chunk, row_group_size=rows_per_row_group)
                rows += chunk.num_rows
                row_groups += 1
        size = zone.filesystem.get_file_info(staging).size or 0
        zone.filesystem.move(staging, final)
    except BaseException:
        _remove_quietly(zone, staging)
        raise
    finally:
        # Hand the hour's buffers back to the OS before the next step's engine needs memory.
        pa.default_memory_pool().release_unused()
    return WrittenPartition(zone.display(final), rows, size, row_groups)


class StagedFile:
    """A local file for an engine to write one partition into, then validate and publish.

    On a local warehouse the file sits in the warehouse's staging folder, so publishing is a
    rename; for an object store it is a local temporary file that is uploaded to a staging key
    and then moved (server-side) over the partition. Whatever happens, nothing is left behind.
    """

    def __init__(self, zone: Zone, table: str, partition: HourPartition):
        self.zone, self.table, self.partition = zone, table, partition
        relative = _staging_relpath(table, partition)
        if zone.is_local:
            zone.ensure_dir(posixpath.dirname(relative))
            self._tmpdir = None
            self.local_path = zone.path(relative)
        else:
            self._tmpdir = tempfile.mkdtemp(prefix="lakehouse-")
            self.local_path = os.path.join(self._tmpdir, posixpath.basename(relative))
        self._staging_rel = relative

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.local_path)
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def validate(self, validate: ChunkValidator, rows_per_chunk: int = ROWS_PER_ROW_GROUP) -> None:
        """Run the validator over the written file in bounded chunks."""
        parquet = pq.ParquetFile(self.local_path)
        for batch in parquet.iter_batches(batch_size=rows_per_chunk):
            validate(pa.Table.from_batches([batch]))

    def publish(self) -> WrittenPartition:
        """Move the written file over the partition, atomically."""
        zone, final_rel = self.zone, partition_relpath(self.table, self.partition)
        metadata = pq.read_metadata(self.local_path)
        size = os.path.getsize(self.local_path)
        final = zone.path(final_rel)
        if zone.is_local:
            zone.ensure_dir(posixpath.dirname(final_rel))
            os.replace(self.local_path, final)
        else:
            staging = zone.path(self._staging_rel)
            try:
                pafs.copy_files(
                    self.local_path,
                    staging,
                    source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=zone.filesystem,
                )
                zone.filesystem.move(staging, final)
            except BaseException:
                _remove_quietly(zone, staging)
                raise
        return WrittenPartition(
            zone.display(final), metadata.num_rows, size, metadata.num_row_groups
        )


def local_parquet_source(zone: Zone, table: str, partition: HourPartition) -> str | None:
    """The partition's local file path when the engine can read it natively, else None."""
    if not zone.is_local:
        return None
    read_partition(zone, table, partition)  # raises MissingPartition with a helpful message
    return zone.path(partition_relpath(table, partition))


def read_partition(zone: Zone, table: str, partition: HourPartition) -> ds.Dataset:
    """The published partition as an Arrow dataset (lazy: nothing is read yet)."""
    path = zone.path(partition_relpath(table, partition))
    if not zone.exists(partition_relpath(table, partition)):
        raise MissingPartition(
            f"{table} has no partition {partition.key} at {zone.display(path)}; "
            "materialize the upstream asset for this hour first"
        )
    return ds.dataset(path, format="parquet", filesystem=zone.filesystem)


def _row_groups(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, target_rows: int
) -> Iterable[pa.Table]:
    """Regroup a stream of (possibly tiny) batches into tables of about ``target_rows``."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= target_rows:
            yield _conform(pending, schema)
            pending, pending_rows = [], 0
    if pending:
        yield _conform(pending, schema)


def _conform(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """Cast engine output (nullable, maybe string views) to the table's declared schema."""
    return pa.Table.from_batches(batches).select(schema.names).cast(schema)


def _remove_quietly(zone: Zone, path: str) -> None:
    with contextlib.suppress(OSError, FileNotFoundError):
        zone.filesystem.delete_file(path)
