"""ODS: the raw files of one arrival hour, registered as one typed, hive-partitioned table."""

import json
import posixpath

import dagster as dg

from lakehouse.defs.checks import NO_QUARANTINED_FILES_CHECK, SCHEMA_CHECK
from lakehouse.defs.ods.intake import (
    HourIntake,
    RawFileReadError,
    RejectedFile,
    hour_dir,
    inspect_hour,
    scan_files,
)
from lakehouse.defs.publishing import publish_batches
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage, Zone
from lakehouse.tables import ODS_TABLE

INTAKE_DIR = "_intake"
# ODS is written once and read once per hour (by DWD): favour write speed (snappy encodes an
# hour of a 30k fleet ~0.6 s faster than zstd, for ~25% more bytes).
ODS_COMPRESSION = "snappy"


@dg.asset(
    name=ODS_TABLE,
    group_name="ods",
    partitions_def=hourly_partitions,
    kinds={"parquet", "orc", "pyarrow"},
    check_specs=[
        dg.AssetCheckSpec(SCHEMA_CHECK, asset=ODS_TABLE, blocking=True),
        dg.AssetCheckSpec(
            NO_QUARANTINED_FILES_CHECK,
            asset=ODS_TABLE,
            description="Every data-looking raw file of the hour could be read in the ODS schema.",
        ),
    ],
)
def ods_vehicle_gps_raw(
    context: dg.AssetExecutionContext, storage: LakehouseStorage, catalog: CatalogResource
) -> dg.MaterializeResult:
    """Raw GPS reports of one arrival hour; junk skipped, unreadable files quarantined."""
    partition = HourPartition.from_key(context.partition_key)
    raw, warehouse = storage.raw(), storage.warehouse()
    intake = inspect_hour(raw, partition)
    accepted = list(intake.accepted)
    quarantined = list(intake.quarantined)
    while True:
        try:
            published = publish_batches(
                warehouse,
                catalog,
                ODS_TABLE,
                partition,
                scan_files(raw, accepted),
                compression=ODS_COMPRESSION,
            )
            break
        except RawFileReadError as unreadable:
            # A file whose data breaks mid-read: quarantine it and redo the hour without it.
            context.log.warning(f"quarantined {unreadable.raw_file.name}: {unreadable.reason}")
            accepted.remove(unreadable.raw_file)
            quarantined.append(RejectedFile(unreadable.raw_file.path, unreadable.reason))
    final = HourIntake(tuple(accepted), intake.skipped, tuple(quarantined), intake.rows_in_footers)
    intake_url = _keep_intake_record(warehouse, partition, raw, final)
    for rejected in final.quarantined:
        context.log.warning(f"quarantined {raw.display(rejected.path)}: {rejected.reason}")
    if not final.accepted:
        context.log.warning(f"no readable raw files for {partition.key}; ODS hour is empty")
    return dg.MaterializeResult(
        metadata={
            **published.metadata,
            "rows_in": published.written.rows,
            "files_read": len(final.accepted),
            "files_skipped": len(final.skipped),
            "files_quarantined": len(final.quarantined),
            "raw_dir": dg.MetadataValue.path(raw.display(raw.path(hour_dir(partition)))),
            "intake_record": dg.MetadataValue.path(intake_url),
            "quarantined": dg.MetadataValue.json(_rejections(raw, final.quarantined)),
            "skipped": dg.MetadataValue.json(_rejections(raw, final.skipped)),
        },
        check_results=[
            published.schema_check,
            dg.AssetCheckResult(
                check_name=NO_QUARANTINED_FILES_CHECK,
                passed=not final.quarantined,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"files_quarantined": len(final.quarantined)},
            ),
        ],
    )


def _rejections(raw: Zone, rejected: tuple[RejectedFile, ...]) -> list[dict[str, str]]:
    return [{"file": raw.display(r.path), "reason": r.reason} for r in rejected]


def _keep_intake_record(
    warehouse: Zone, partition: HourPartition, raw: Zone, intake: HourIntake
) -> str:
    """Keep the hour's file verdicts beside the warehouse, replacing the previous record."""
    record = {
        "table": ODS_TABLE,
        "partition": partition.key,
        "accepted": [raw.display(f.path) for f in intake.accepted],
        "skipped": _rejections(raw, intake.skipped),
        "quarantined": _rejections(raw, intake.quarantined),
    }
    relative = posixpath.join(INTAKE_DIR, ODS_TABLE, partition.hive_path, "intake.json")
    warehouse.write_bytes(relative, json.dumps(record, indent=2).encode())
    return warehouse.display(warehouse.path(relative))
