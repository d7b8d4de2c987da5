"""ODS: the raw files of one arrival hour, registered as one typed, hive-partitioned table."""

import json

import dagster as dg
from pydantic import Field

from lakehouse.defs.checks import NO_QUARANTINED_FILES_CHECK, SCHEMA_CHECK
from lakehouse.defs.ods.ingest import (
    CONVERTED,
    VERBATIM,
    ReplacementRefused,
    StagedHour,
    check_replacement,
    intake_record,
    intake_record_key,
    previous_record,
    require_raw_dataset,
    staged_hour,
)
from lakehouse.defs.ods.intake import RejectedFile, hour_dir
from lakehouse.defs.publishing import publish
from lakehouse.defs.retries import storage_faults_handled
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.resources.zones import Zone
from lakehouse.tables import ODS_TABLE
from lakehouse.warehouse.partition_store import sweep_staging

# Run tag that lets a re-run publish fewer raw files (or no rows) than the published hour has.
ALLOW_SHRINK_TAG = "lakehouse/allow_shrink"


class OdsRunConfig(dg.Config):
    """What a run of the ODS hour may do beyond the defaults."""

    allow_shrink: bool = Field(
        default=False,
        description="Publish even if raw files the published hour was built from are gone, or "
        f"the hour would become empty (same as the run tag {ALLOW_SHRINK_TAG}=true).",
    )


@dg.asset(
    name=ODS_TABLE,
    group_name="ods",
    partitions_def=hourly_partitions,
    kinds={"parquet", "orc", "pyarrow"},
    check_specs=[
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=ODS_TABLE,
            blocking=True,
            description="Every published row fits the ODS pandera schema (types, no extra "
            "columns); checked before the partition becomes visible.",
        ),
        dg.AssetCheckSpec(
            NO_QUARANTINED_FILES_CHECK,
            asset=ODS_TABLE,
            description="Every data-looking raw file of the hour could be read in the ODS "
            "schema and within the intake bounds.",
        ),
    ],
)
def ods_vehicle_gps_raw(
    context: dg.AssetExecutionContext,
    config: OdsRunConfig,
    storage: LakehouseStorage,
    catalog: CatalogResource,
) -> dg.MaterializeResult:
    """Raw GPS reports of one arrival hour; junk skipped, unreadable files quarantined."""
    partition = HourPartition.from_key(context.partition_key)
    tagged = context.run.tags.get(ALLOW_SHRINK_TAG, "").lower() == "true"
    allow_shrink = config.allow_shrink or tagged
    with storage_faults_handled(context):
        raw, warehouse = storage.raw(), storage.warehouse()
        require_raw_dataset(raw)
        sweep_staging(warehouse, ODS_TABLE)
        previous = previous_record(warehouse, partition)
        with staged_hour(raw, warehouse, partition) as hour:
            try:
                check_replacement(previous, hour, allow_shrink)
            except ReplacementRefused as refused:
                raise dg.Failure(description=str(refused)) from None
            published = publish(hour.staged, catalog)
            record = intake_record(raw, partition, hour)
            warehouse.write_bytes(
                intake_record_key(partition), json.dumps(record, indent=2).encode()
            )
    _log_verdicts(context, raw, partition, hour)
    return dg.MaterializeResult(
        metadata={
            **published.metadata,
            "rows_in": sum(item.counts.read for item in hour.accepted),
            **{f"dropped_{r}": n for r, n in sorted(hour.rows_dropped.items())},
            "files_read": len(hour.accepted),
            "files_skipped": len(hour.skipped),
            "files_quarantined": len(hour.quarantined),
            "files_verbatim": sum(item.stored == VERBATIM for item in hour.accepted),
            "files_converted": sum(item.stored == CONVERTED for item in hour.accepted),
            "raw_dir": dg.MetadataValue.path(raw.display(raw.path(hour_dir(partition)))),
            "intake_record": dg.MetadataValue.path(
                warehouse.display(warehouse.path(intake_record_key(partition)))
            ),
            "quarantined": dg.MetadataValue.json(_rejections(raw, hour.quarantined)),
            "skipped": dg.MetadataValue.json(_rejections(raw, hour.skipped)),
        },
        check_results=[
            published.schema_check,
            dg.AssetCheckResult(
                check_name=NO_QUARANTINED_FILES_CHECK,
                passed=not hour.quarantined,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"files_quarantined": len(hour.quarantined)},
            ),
        ],
    )


def _log_verdicts(
    context: dg.AssetExecutionContext, raw: Zone, partition: HourPartition, hour: StagedHour
) -> None:
    for rejected in hour.quarantined:
        context.log.warning(f"quarantined {raw.display(raw.path(rejected.key))}: {rejected.reason}")
    if hour.rows_dropped:
        context.log.warning(f"rows dropped at intake for {partition.key}: {hour.rows_dropped}")
    if not hour.accepted:
        context.log.warning(f"no readable raw files for {partition.key}; ODS hour is empty")


def _rejections(raw: Zone, rejected: list[RejectedFile]) -> list[dict[str, str]]:
    return [{"file": raw.display(raw.path(r.key)), "reason": r.reason} for r in rejected]
