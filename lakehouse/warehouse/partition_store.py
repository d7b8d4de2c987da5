"""Atomic, idempotent Parquet partitions under ``<zone>/<table>/dt=YYYY-MM-DD/hh=HH/``.

A partition is a single Parquet object, ``part-0.parquet``. It is always written to a local
file first (validated there) and then published in one visible step: on a local zone the file
sits in the zone's ``_staging/`` folder and is renamed over the partition; on an object store
it is uploaded straight to the partition's key, which S3 makes visible only once the upload (or
multipart upload) completes. Readers therefore see the old partition or the new one, never a
half-written one; a failed write leaves the previous partition as it was; no staging objects or
folder markers are ever left in a bucket.

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
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lakehouse.partitions import HourPartition
from lakehouse.resources.zones import S3Zone, Zone
from lakehouse.warehouse.prefetch import prefetched

PARTITION_FILE = "part-0.parquet"
STAGING_DIR = "_staging"
ROWS_PER_ROW_GROUP = 1 << 20
# Staging left by a writer that was killed is swept once it is older than any run could be.
STALE_STAGING_SECONDS = 6 * 3600

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


def partition_relpath(
    table: str, partition: HourPartition | str, name: str = PARTITION_FILE
) -> str:
    """``<table>/dt=.../hh=.../part-0.parquet``; a daily partition passes its ``dt=...`` path."""
    hive = partition if isinstance(partition, str) else partition.hive_path
    return posixpath.join(table, hive, name)


class StagedFile:
    """A local file for one partition: written, then validated, then published atomically.

    Use as a context manager; whatever happens, the local file is gone afterwards. ``name`` is
    the published file's name: ``part-0.parquet``, or another file kept with a partition (a
    model), published with :meth:`put`.
    """

    def __init__(
        self, zone: Zone, table: str, partition: HourPartition | str, name: str = PARTITION_FILE
    ):
        self.zone, self.table = zone, table
        self.final_key = partition_relpath(table, partition, name)
        name = f"{uuid.uuid4().hex}{posixpath.splitext(name)[1]}"
        if zone.is_local:
            folder = zone.path(STAGING_DIR, table)
            os.makedirs(folder, exist_ok=True)
            self._tmpdir = None
        else:
            folder = self._tmpdir = tempfile.mkdtemp(prefix="lakehouse-stage-")
        self.local_path = os.path.join(folder, name)

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()

    def discard(self) -> None:
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
        """Make the written file the partition, in one visible step."""
        metadata = pq.read_metadata(self.local_path)
        size = os.path.getsize(self.local_path)
        url = self.put()
        return WrittenPartition(url, metadata.num_rows, size, metadata.num_row_groups)

    def put(self) -> str:
        """Make the written file (of any format) the published one, in one visible step."""
        self.zone.put_file(self.local_path, self.final_key)
        return self.zone.display(self.zone.path(self.final_key))


def write_partition(
    zone: Zone,
    table: str,
    partition: HourPartition | str,
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
    with StagedFile(zone, table, partition) as staged:
        try:
            write_local(
                staged.local_path, schema, batches, validate, rows_per_row_group, compression
            )
            return staged.publish()
        finally:
            # Hand the hour's buffers back to the OS before the next step's engine needs memory.
            pa.default_memory_pool().release_unused()


def write_local(
    path: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    validate: ChunkValidator | None = None,
    rows_per_row_group: int = ROWS_PER_ROW_GROUP,
    compression: str = "zstd",
    dictionary: bool | Sequence[str] = True,
) -> int:
    """Write ``batches`` to a local Parquet file, validating each row group; returns rows.

    The next row group is read and validated in a background thread while this one is encoded
    (see ``prefetch``); a group is written only once it passed ``validate``. ``dictionary``:
    the columns to dictionary-encode (all by default).
    """
    rows = 0
    groups = validated_row_groups(batches, schema, validate, rows_per_row_group)
    options = {"compression": compression, "use_dictionary": _listed(dictionary)}
    with pq.ParquetWriter(path, schema, **options) as writer:
        for chunk in prefetched(groups):
            writer.write_table(chunk, row_group_size=rows_per_row_group)
            rows += chunk.num_rows
    return rows


def _listed(columns: bool | Sequence[str]) -> bool | list[str]:
    return columns if isinstance(columns, bool) else list(columns)


def validated_row_groups(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    validate: ChunkValidator | None,
    rows_per_row_group: int = ROWS_PER_ROW_GROUP,
) -> Iterator[pa.Table]:
    """``batches`` regrouped into row groups in ``schema``, each passed to ``validate`` first."""
    for chunk in _row_groups(batches, schema, rows_per_row_group):
        if validate is not None:
            validate(chunk)
        yield chunk


def sweep_staging(zone: Zone, table: str, older_than: float = STALE_STAGING_SECONDS) -> int:
    """Remove what killed writers of ``table`` left behind; returns how many were removed.

    Locally that is staging files; on S3, incomplete multipart uploads (invisible, but billed).
    Only leftovers older than any live run are touched, so concurrent writers are safe.
    """
    if isinstance(zone, S3Zone):
        return zone.abort_stale_uploads(table + "/", older_than)
    cutoff = time.time() - older_than
    removed = 0
    folder = zone.path(STAGING_DIR, table)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)
                    removed += 1
    return removed


def read_partition(zone: Zone, table: str, partition: HourPartition | str) -> ds.Dataset:
    """The published partition as an Arrow dataset (lazy: nothing is read yet)."""
    relative = partition_relpath(table, partition)
    if not zone.exists(relative):
        raise MissingPartition(
            f"{table} has no partition {_label(partition)} at "
            f"{zone.display(zone.path(relative))}; materialize the upstream asset first"
        )
    return ds.dataset(zone.path(relative), format="parquet", filesystem=zone.filesystem)


def _label(partition: HourPartition | str) -> str:
    return partition if isinstance(partition, str) else partition.key


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
            yield conformed(pending, schema)
            pending, pending_rows = [], 0
    if pending:
        yield conformed(pending, schema)


def conformed(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """Cast engine output (nullable, maybe string views) to the table's declared schema."""
    return pa.Table.from_batches(batches).select(schema.names).cast(schema)
