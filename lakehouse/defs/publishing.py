"""Publish a layer's hour: validate before it is visible, swap in atomically, expose in SQL.

Two writers feed the same publication: a stream of Arrow batches (ODS, read from raw files by
pyarrow) and a DuckDB query written by DuckDB's parallel ``COPY`` (DWD, ADS). Either way the
pandera schema sees every row before the partition is replaced, a violation fails the step with
the failing cases shown, and nothing is published.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import duckdb
import pyarrow as pa

from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.partitions import HourPartition
from lakehouse.quality.enforcement import ChunkedSchemaValidator, SchemaViolation
from lakehouse.quality.schemas import LAYER_SCHEMAS
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import Zone
from lakehouse.sql_text import quote_literal
from lakehouse.tables import TABLE_SCHEMAS
from lakehouse.warehouse.catalog import ensure_view
from lakehouse.warehouse.catalog_file import first_line
from lakehouse.warehouse.partition_store import (
    ROWS_PER_ROW_GROUP,
    StagedFile,
    WrittenPartition,
    write_partition,
)

PARQUET_OPTIONS = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROWS_PER_ROW_GROUP}"


@dataclass(frozen=True)
class PublishedHour:
    """A published partition with the metadata and check results every layer reports."""

    written: WrittenPartition
    metadata: dict[str, object]
    schema_check: dg.AssetCheckResult


def publish_batches(
    warehouse: Zone,
    catalog: CatalogResource,
    table: str,
    partition: HourPartition,
    batches: Iterable[pa.RecordBatch],
    compression: str = "zstd",
) -> PublishedHour:
    """Stream Arrow batches into the hour, validating each row group before it is written."""
    validator = ChunkedSchemaValidator(table, LAYER_SCHEMAS[table])
    with _failing_on_violation(table, partition):
        written = write_partition(
            warehouse,
            table,
            partition,
            TABLE_SCHEMAS[table],
            batches,
            validate=validator,
            compression=compression,
        )
    return _published(warehouse, catalog, table, written, validator)


def publish_query(
    warehouse: Zone,
    catalog: CatalogResource,
    con: duckdb.DuckDBPyConnection,
    table: str,
    partition: HourPartition,
    query: str,
) -> PublishedHour:
    """Let DuckDB write the query's result, validate the file, then publish it."""
    validator = ChunkedSchemaValidator(table, LAYER_SCHEMAS[table])
    with StagedFile(warehouse, table, partition) as staged:
        con.execute(f"COPY ({query}) TO {quote_literal(staged.local_path)} ({PARQUET_OPTIONS})")
        started = time.perf_counter()
        with _failing_on_violation(table, partition):
            staged.validate(validator)
        # Reading the written file back is part of what validation costs here.
        validator.seconds = time.perf_counter() - started
        written = staged.publish()
    return _published(warehouse, catalog, table, written, validator)


@contextmanager
def _failing_on_violation(table: str, partition: HourPartition) -> Iterator[None]:
    """Turn a schema violation into a step failure that shows the failing cases."""
    try:
        yield
    except SchemaViolation as violation:
        raise dg.Failure(
            description=f"{table} {partition.key} not published: it breaks the layer schema",
            metadata={
                "failures": violation.total_failures,
                "failure_cases": dg.MetadataValue.md(
                    "```\n" + violation.failure_cases.to_string(index=False) + "\n```"
                ),
            },
        ) from None


def _published(
    warehouse: Zone,
    catalog: CatalogResource,
    table: str,
    written: WrittenPartition,
    validator: ChunkedSchemaValidator,
) -> PublishedHour:
    metadata: dict[str, object] = {
        "dagster/row_count": written.rows,
        "rows_out": written.rows,
        "path": dg.MetadataValue.path(written.url),
        "bytes": written.bytes,
        "row_groups": written.row_groups,
        "catalog_view": refresh_catalog_view(catalog, warehouse, table),
        "preview": preview(
            validator.head if validator.head is not None else TABLE_SCHEMAS[table].empty_table()
        ),
    }
    check = dg.AssetCheckResult(
        asset_key=table,
        check_name=SCHEMA_CHECK,
        passed=True,
        metadata={
            "schema": LAYER_SCHEMAS[table].__name__,
            "rows_validated": validator.rows_validated,
            "chunks_validated": validator.chunks_validated,
            "validation_seconds": round(validator.seconds, 3),
        },
    )
    return PublishedHour(written, metadata, check)


def refresh_catalog_view(catalog: CatalogResource, warehouse: Zone, table: str) -> str:
    """Expose the table in the analysts' catalog; a failure is reported, never fatal.

    The partition is already published, so failing the run would only hide it from Dagster; the
    view is tried again by the table's next run.
    """
    try:
        return ensure_view(catalog, warehouse, table)
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
