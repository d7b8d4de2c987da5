"""Publish a layer's partition: validate before it is visible, swap in atomically, expose in SQL.

Publishing is two steps so that callers can decide between them: :func:`stage_batches`,
:func:`stage_query` and :func:`stage_copy` write the partition (an hour, or a day given as its
``dt=...`` path) to a local staged file and run the pandera schema over every row of it (a
violation fails the step with the failing cases shown); :func:`publish` then makes it visible in
one step. In between, a caller can stage several layers and publish them together (DWD and
ADS), or refuse to replace a partition with less data than it holds (ODS).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.partitions import HourPartition
from lakehouse.quality.enforcement import ChunkedSchemaValidator, SchemaViolation, rules_values
from lakehouse.quality.schemas import LAYER_SCHEMAS
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.zones import Zone
from lakehouse.sql_text import quote_literal
from lakehouse.tables import DICTIONARY_COLUMNS, TABLE_SCHEMAS
from lakehouse.warehouse.catalog import ensure_view
from lakehouse.warehouse.catalog_file import first_line
from lakehouse.warehouse.partition_store import (
    ROWS_PER_ROW_GROUP,
    StagedFile,
    WrittenPartition,
    write_local,
)

PARQUET_OPTIONS = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROWS_PER_ROW_GROUP}"


@dataclass
class StagedPartition:
    """A validated partition in a local file, not yet visible to readers."""

    zone: Zone
    table: str
    label: str
    file: StagedFile
    validator: ChunkedSchemaValidator
    rows: int = 0

    def __post_init__(self) -> None:
        self.rows = pq.read_metadata(self.file.local_path).num_rows

    @property
    def local_path(self) -> str:
        return self.file.local_path

    def discard(self) -> None:
        self.file.discard()


@dataclass(frozen=True)
class PublishedPartition:
    """A published partition with the metadata and check results every layer reports."""

    written: WrittenPartition
    metadata: dict[str, object]
    schema_check: dg.AssetCheckResult


def stage_batches(
    zone: Zone,
    table: str,
    partition: HourPartition | str,
    batches: Iterable[pa.RecordBatch],
    compression: str = "zstd",
) -> StagedPartition:
    """Stream Arrow batches into a staged file, validating each row group before writing it."""
    validator = ChunkedSchemaValidator(table, LAYER_SCHEMAS[table])
    staged = StagedFile(zone, table, partition)
    try:
        with failing_on_violation(table, _label(partition)):
            write_local(
                staged.local_path,
                TABLE_SCHEMAS[table],
                batches,
                validator,
                compression=compression,
                dictionary=DICTIONARY_COLUMNS.get(table, True),
            )
    except BaseException:
        staged.discard()
        raise
    finally:
        pa.default_memory_pool().release_unused()
    return StagedPartition(zone, table, _label(partition), staged, validator)


def stage_query(
    zone: Zone,
    con: duckdb.DuckDBPyConnection,
    table: str,
    partition: HourPartition | str,
    query: str,
) -> StagedPartition:
    """Stream the query's result from DuckDB into a staged file, validating each row group.

    The file is written to the table's declared Arrow schema (types and nullability), so its
    Parquet schema never depends on what the engine could prove about an hour's data (DuckDB's
    own writer marks a column required when its statistics show no NULL); and each row group is
    validated on its way to the file, never read back.
    """
    reader = con.sql(query).to_arrow_reader(ROWS_PER_ROW_GROUP)
    return stage_batches(zone, table, partition, reader)


def stage_copy(
    zone: Zone,
    con: duckdb.DuckDBPyConnection,
    table: str,
    partition: HourPartition | str,
    query: str,
    options: str = PARQUET_OPTIONS,
) -> StagedPartition:
    """Let DuckDB's ``COPY`` write the query's result with ``options``, then validate it all.

    For files that need DuckDB's writer options (footer labels, small row groups).
    """
    validator = ChunkedSchemaValidator(table, LAYER_SCHEMAS[table])
    staged = StagedFile(zone, table, partition)
    try:
        con.execute(f"COPY ({query}) TO {quote_literal(staged.local_path)} ({options})")
        started = time.perf_counter()
        with failing_on_violation(table, _label(partition)):
            staged.validate(validator)
        # Reading the written file back is part of what validation costs here.
        validator.seconds = time.perf_counter() - started
    except BaseException:
        staged.discard()
        raise
    return StagedPartition(zone, table, _label(partition), staged, validator)


def publish(
    staged: StagedPartition,
    catalog: CatalogResource,
    hourly: bool = True,
    layout: Sequence[str] | None = None,
) -> PublishedPartition:
    """Make a staged partition visible (one atomic step) and describe it for the run.

    ``layout`` names the table's hive folders when they are neither ``dt/hh`` nor ``dt``.
    """
    try:
        written = staged.file.publish()
    finally:
        staged.discard()
    validator = staged.validator
    head = (
        validator.head if validator.head is not None else TABLE_SCHEMAS[staged.table].empty_table()
    )
    metadata: dict[str, object] = {
        "dagster/row_count": written.rows,
        "rows_out": written.rows,
        "path": dg.MetadataValue.path(written.url),
        "bytes": written.bytes,
        "row_groups": written.row_groups,
        "catalog_view": refresh_catalog_view(catalog, staged.zone, staged.table, hourly, layout),
        "preview": preview(head),
    }
    return PublishedPartition(written, metadata, schema_check_result(staged.table, validator))


def schema_check_result(
    asset: str | dg.AssetKey, validator: ChunkedSchemaValidator
) -> dg.AssetCheckResult:
    """The passed blocking schema check of what ``validator`` checked, with how much it did."""
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=SCHEMA_CHECK,
        passed=True,
        metadata={
            "schema": validator.schema.__name__,
            "rows_validated": validator.rows_validated,
            # False for ODS: every column typed and nullable, so its rows are checked for their
            # columns and types, and rows read but not rewritten need no decoding for that
            "schema_rules_values": rules_values(validator.schema),
            "chunks_validated": validator.chunks_validated,
            "validation_seconds": round(validator.seconds, 3),
        },
    )


@contextmanager
def failing_on_violation(table: str, label: str) -> Iterator[None]:
    """Turn a schema violation into a step failure that shows the failing cases."""
    try:
        yield
    except SchemaViolation as violation:
        raise dg.Failure(
            description=f"{table} {label} not published: it breaks the layer schema",
            metadata={
                "failures": violation.total_failures,
                "failure_cases": dg.MetadataValue.md(
                    "```\n" + violation.failure_cases.to_string(index=False) + "\n```"
                ),
            },
        ) from None


def refresh_catalog_view(
    catalog: CatalogResource,
    warehouse: Zone,
    table: str,
    hourly: bool = True,
    layout: Sequence[str] | None = None,
) -> str:
    """Expose the table in the analysts' catalog; a failure is reported, never fatal.

    The partition is already published, so failing the run would only hide it from Dagster; the
    view is tried again by the table's next run.
    """
    try:
        return ensure_view(catalog, warehouse, table, hourly=hourly, layout=layout)
    except Exception as exc:  # the catalog is a convenience on top of the published data
        message = f"failed: {first_line(exc)}; tried again on the next run"
        dg.get_dagster_logger().warning(f"catalog view of {table} not refreshed: {message}")
        return message


def preview(head: pa.Table) -> dg.TableMetadataValue:
    """The partition's first rows (kept by the validator as it went), as a table in the UI."""
    columns = [dg.TableColumn(f.name, str(f.type)) for f in head.schema]
    records = [dg.TableRecord({k: _plain(v) for k, v in row.items()}) for row in head.to_pylist()]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


def _plain(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _label(partition: HourPartition | str) -> str:
    return partition if isinstance(partition, str) else partition.key
