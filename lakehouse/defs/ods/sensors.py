"""The DataScan sensor: discover new raw files and request the hour's ODS -> DWD -> ADS run."""

import os
from collections import Counter

import dagster as dg

from lakehouse.defs.jobs import hourly_lakehouse_job
from lakehouse.defs.ods.discovery import (
    DEFAULT_LATENESS_HOURS,
    RAW_PREFIX,
    HourFiles,
    ScanCursor,
    scan,
    start_after,
)
from lakehouse.defs.ods.intake import (
    DATA_FORMATS,
    FileFault,
    RawFile,
    check_footer,
    footer_bytes,
    hour_dir,
)
from lakehouse.partitions import hourly_partitions
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.resources.zones import ObjectInfo, Zone
from lakehouse.tables import ODS_TABLE

DEFAULT_INTERVAL_SECONDS = 30
MAX_LOGGED_SKIPS = 20


def _interval_seconds() -> int:
    """How often the daemon ticks; a deployment setting, so it is read when the code loads."""
    return int(os.environ.get("LAKEHOUSE_DATASCAN_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS))


@dg.sensor(
    name="ods_datascan",
    job=hourly_lakehouse_job,
    minimum_interval_seconds=_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Find new raw files (Parquet/ORC) per arrival hour and run that hour's layers; "
    "late files re-run their hour; junk is skipped and counted.",
)
def ods_datascan(context: dg.SensorEvaluationContext, storage: LakehouseStorage) -> dg.SensorResult:
    """One DataScan tick: list from the lateness window onwards, request runs for changed hours."""
    lateness = int(os.environ.get("LAKEHOUSE_DATASCAN_LATENESS_HOURS", DEFAULT_LATENESS_HOURS))
    cursor = ScanCursor.parse(context.cursor)
    listing = storage.list_raw(RAW_PREFIX, start_after(cursor.window_start(lateness)))
    result = scan(listing.objects, cursor, lateness, hourly_partitions.has_partition_key)

    raw = storage.raw()
    skipped_by_dir: dict[str, list[dict[str, str]]] = {}
    for key, reason in result.skipped:
        skipped_by_dir.setdefault(key.rsplit("/", 1)[0], []).append({"key": key, "reason": reason})
    run_requests, observations = [], []
    for hour in result.changed:
        rows, flagged = _read_footers(raw, hour)
        junk = skipped_by_dir.get(hour_dir(hour.partition), [])
        key = hour.partition.key
        run_requests.append(
            dg.RunRequest(
                run_key=f"{key}@{hour.digest}",
                partition_key=key,
                tags={"lakehouse/trigger": "datascan", "lakehouse/files": str(len(hour.files))},
            )
        )
        observations.append(_observation(raw, hour, rows, flagged, junk))

    skipped_by_reason = Counter(reason for _, reason in result.skipped)
    context.log.info(
        f"listed {result.files_seen} objects in {listing.list_calls} listing call(s); "
        f"{len(result.changed)} hour(s) changed; skipped {dict(skipped_by_reason)}"
    )
    for key, reason in result.skipped[:MAX_LOGGED_SKIPS]:
        context.log.debug(f"skipped {key}: {reason}")
    return dg.SensorResult(
        run_requests=run_requests, cursor=result.cursor.serialize(), asset_events=observations
    )


def _read_footers(raw: Zone, hour: HourFiles) -> tuple[int, dict[str, str]]:
    """Rows in the hour's readable files, and the files the ODS run will quarantine, and why.

    Only footers are read (a few KB per file), never the data.
    """
    rows, flags = 0, {}
    for listed in hour.files:
        extension = listed.key[listed.key.rfind(".") :].lower()
        info = ObjectInfo(listed.key, listed.size, listed.version, raw.path(listed.key))
        raw_file = RawFile(info, DATA_FORMATS[extension])
        try:
            rows += check_footer(footer_bytes(raw, raw_file), raw_file.format).rows
        except FileFault as fault:  # the file's own problem; storage faults fail the tick
            flags[raw_file.name] = fault.reason
    return rows, flags


def _observation(
    raw: Zone, hour: HourFiles, rows: int, flagged: dict[str, str], junk: list[dict[str, str]]
) -> dg.AssetObservation:
    """What discovery registered for the hour, visible on the ODS asset in the UI."""
    return dg.AssetObservation(
        asset_key=ODS_TABLE,
        partition=hour.partition.key,
        metadata={
            "files": len(hour.files),
            "bytes": hour.bytes,
            "rows_in_footers": rows,
            "file_set": hour.digest,
            "file_list": dg.MetadataValue.json(
                [{"file": raw.display(raw.path(f.key)), "bytes": f.size} for f in hour.files]
            ),
            "flagged_schema": dg.MetadataValue.json(flagged),
            "skipped": dg.MetadataValue.json(junk),
        },
    )
