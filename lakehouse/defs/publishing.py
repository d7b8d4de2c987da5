"""Publish a layer's hour: validate while writing, swap in atomically, expose in the catalog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.partitions import HourPartition
from lakehouse.quality.enforcement import ChunkedSchemaValidator, SchemaViolation
from lakehouse.quality.schemas import LAYER_SCHEMAS
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import Zone
from lakehouse.tables import TABLE_SCHEMAS
from lakehouse.warehouse.catalog import ensure_view
from lakehouse.warehouse.partition_store import WrittenPartition, read_partition, write_partition

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class PublishedHour:
    """A published partition with the metadata and check results every layer reports."""

    written: WrittenPartition
    metadata: dict[str, object]
    schema_check: dg.AssetCheckResult


def publish_hour(
    warehouse: Zone,
    catalog: CatalogResource,
    table: str,
    partition: HourPartition,
    batches: Iterable[pa.RecordBatch],
) -> PublishedHour:
    """Write the hour through the table's pandera schema and publish it.

    A schema violation fails the step with the failing cases shown, and nothing is published.
    """
    validator = ChunkedSchemaValidator(table, LAYER_SCHEMAS[table])
    try:
        written = write_partition(
            warehouse, table, partition, TABLE_SCHEMAS[table], batches, validate=validator
        )
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
    catalog_view = ensure_view(catalog, warehouse, table)
    metadata: dict[str, object] = {
        "dagster/row_count": written.rows,
        "rows_out": written.rows,
        "path": dg.MetadataValue.path(written.url),
        "bytes": written.bytes,
        "row_groups": written.row_groups,
        "catalog_view": catalog_view,
        "preview": preview(warehouse, table, partition),
    }
    check = dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=True,
        metadata={
            "schema": LAYER_SCHEMAS[table].__name__,
            "rows_validated": validator.rows_validated,
            "chunks_validated": validator.chunks_validated,
        },
    )
    return PublishedHour(written, metadata, check)


def preview(warehouse: Zone, table: str, partition: HourPartition) -> dg.TableMetadataValue:
    """The first rows of the published partition, as a table in the Dagster UI."""
    head = read_partition(warehouse, table, partition).head(PREVIEW_ROWS)
    columns = [dg.TableColumn(f.name, str(f.type)) for f in head.schema]
    records = [dg.TableRecord({k: _plain(v) for k, v in row.items()}) for row in head.to_pylist()]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


def _plain(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
