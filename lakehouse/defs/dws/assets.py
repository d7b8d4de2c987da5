"""DWS: one row per vehicle per day, rolled up from the day's 24 hourly ADS and DWD partitions."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lakehouse.defs.checks import DAY_COMPLETE_CHECK, SCHEMA_CHECK
from lakehouse.defs.dws.automation import daily_rollup_condition
from lakehouse.defs.dws.settings import grace_hours
from lakehouse.defs.dws.transform import CREATE_PARTIALS, dws_sql, hour_partials_sql
from lakehouse.defs.publishing import publish, stage_query
from lakehouse.defs.retries import storage_faults_handled
from lakehouse.partitions import DayPartition, HourPartition, daily_partitions, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.resources.zones import Zone
from lakehouse.tables import ADS_TABLE, DWD_TABLE, DWS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath, sweep_staging
from lakehouse.warehouse.sources import scanned_partition

# Each day partition depends on the 24 hourly partitions in its time window.
HOURS_OF_THE_DAY = dg.TimeWindowPartitionMapping()


@dg.asset(
    name=DWS_TABLE,
    group_name="dws",
    partitions_def=daily_partitions,
    deps=[
        dg.AssetDep(ADS_TABLE, partition_mapping=HOURS_OF_THE_DAY),
        dg.AssetDep(DWD_TABLE, partition_mapping=HOURS_OF_THE_DAY),
    ],
    kinds={"duckdb", "parquet"},
    automation_condition=daily_rollup_condition(grace_hours()),
    check_specs=[
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=DWS_TABLE,
            blocking=True,
            description="Every row of the day fits the DWS pandera schema; checked before the "
            "partition becomes visible.",
        ),
        dg.AssetCheckSpec(
            DAY_COMPLETE_CHECK,
            asset=DWS_TABLE,
            description="All 24 hours of the day had landed (ADS and DWD) when it was built; "
            "warns, with the missing hours, when the day was built without some.",
        ),
    ],
)
def dws_vehicle_daily_stat(
    context: dg.AssetExecutionContext,
    storage: LakehouseStorage,
    engine: DuckDBResource,
    catalog: CatalogResource,
) -> dg.MaterializeResult:
    """Per-vehicle daily mileage, speed, active hours and point counts."""
    day = DayPartition.from_key(context.partition_key)
    hours = [
        HourPartition.from_key(key)
        for key in hourly_partitions.get_partition_keys_in_time_window(
            context.partition_time_window
        )
    ]
    with storage_faults_handled(context), engine.get_connection() as con:
        warehouse = storage.warehouse()
        con.execute(CREATE_PARTIALS)
        present, missing = [], []
        for hour in hours:
            if _landed(warehouse, hour):
                with (
                    scanned_partition(warehouse, ADS_TABLE, hour) as ads,
                    scanned_partition(warehouse, DWD_TABLE, hour) as dwd,
                ):
                    con.execute(hour_partials_sql(ads, dwd))
                present.append(hour.key)
            else:
                missing.append(hour.key)
        sweep_staging(warehouse, DWS_TABLE)
        staged = stage_query(warehouse, con, DWS_TABLE, day.hive_path, dws_sql(day.key))
        try:
            published = publish(staged, catalog, hourly=False)
        finally:
            staged.discard()
    if missing:
        context.log.warning(f"{DWS_TABLE} {day.key} built without {len(missing)} hour(s)")
    return dg.MaterializeResult(
        metadata={
            **published.metadata,
            "vehicles": published.written.rows,
            "stat_date": day.key,
            "hours_present": len(present),
            "hours_missing": dg.MetadataValue.json(missing),
        },
        check_results=[
            published.schema_check,
            dg.AssetCheckResult(
                check_name=DAY_COMPLETE_CHECK,
                passed=not missing,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"hours_present": len(present), "hours_missing": len(missing)},
            ),
        ],
    )


def _landed(warehouse: Zone, hour: HourPartition) -> bool:
    """Whether the hour's ADS and DWD are both published (they are published together)."""
    return all(warehouse.exists(partition_relpath(t, hour)) for t in (ADS_TABLE, DWD_TABLE))
