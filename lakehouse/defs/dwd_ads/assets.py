"""DWD and ADS of an hour in one step: one engine, one scan of ODS, published together.

Both tables stay separate assets (each with its own partition, schema check and metadata); they
share a step because ADS is a pure function of the DWD rows just computed. Both are staged and
validated before either becomes visible, so a failure never leaves a new DWD hour beside a stale
ADS hour; and since ADS is computed from exactly the DWD rows published, it can always be
recomputed from them. Either can still be materialised alone.
"""

import contextlib
from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from lakehouse.defs.ads.transform import ads_sql
from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.defs.dwd.transform import DwdDropCounts, count_drops, dwd_sql
from lakehouse.defs.publishing import PublishedPartition, StagedPartition, publish, stage_query
from lakehouse.defs.retries import storage_faults_handled
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sql_text import quote_literal
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import sweep_staging
from lakehouse.warehouse.sources import scanned_partition

DWD_KEY, ADS_KEY = dg.AssetKey(DWD_TABLE), dg.AssetKey(ADS_TABLE)


def _schema_check(key: dg.AssetKey, what: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        SCHEMA_CHECK,
        asset=key,
        blocking=True,
        description=f"Every row of the hour fits the {what} pandera schema; checked before the "
        "partition becomes visible, so a violation publishes nothing.",
    )


@dg.multi_asset(
    name="dwd_and_ads_hour",
    specs=[
        dg.AssetSpec(
            DWD_KEY,
            deps=[ODS_TABLE],
            group_name="dwd",
            kinds={"duckdb", "parquet"},
            automation_condition=dg.AutomationCondition.eager(),
            description="Valid GPS reports of the hour: known vin, real speed, parsed "
            "event_time, loc_valid flag, exact duplicates removed.",
        ),
        dg.AssetSpec(
            ADS_KEY,
            deps=[DWD_KEY],
            group_name="ads",
            kinds={"duckdb", "parquet"},
            automation_condition=dg.AutomationCondition.eager(),
            description="Per-vehicle mileage (seed formula and haversine) and mean speed of "
            "the hour over its valid locations.",
        ),
    ],
    check_specs=[_schema_check(DWD_KEY, "DWD"), _schema_check(ADS_KEY, "ADS")],
    partitions_def=hourly_partitions,
    can_subset=True,
)
def dwd_and_ads_hour(
    context: dg.AssetExecutionContext,
    storage: LakehouseStorage,
    engine: DuckDBResource,
    catalog: CatalogResource,
) -> Iterator[dg.MaterializeResult]:
    """Clean the hour's ODS rows into DWD, then aggregate them into ADS; publish both."""
    partition = HourPartition.from_key(context.partition_key)
    selected = context.selected_asset_keys
    with (
        storage_faults_handled(context),
        engine.get_connection() as con,
        contextlib.ExitStack() as sources,
    ):
        warehouse = storage.warehouse()
        dwd: StagedPartition | None = None
        ads: StagedPartition | None = None
        try:
            if DWD_KEY in selected:
                sweep_staging(warehouse, DWD_TABLE)
                ods = sources.enter_context(scanned_partition(warehouse, ODS_TABLE, partition))
                drops = count_drops(con, ods)
                dwd = stage_query(warehouse, con, DWD_TABLE, partition, dwd_sql(ods))
            if ADS_KEY in selected:
                sweep_staging(warehouse, ADS_TABLE)
                source = (
                    f"read_parquet({quote_literal(dwd.local_path)})"
                    if dwd is not None
                    else sources.enter_context(scanned_partition(warehouse, DWD_TABLE, partition))
                )
                (valid_rows,) = con.sql(
                    f"SELECT count(*) FROM {source} WHERE loc_valid"
                ).fetchall()[0]
                ads = stage_query(
                    warehouse, con, ADS_TABLE, partition, ads_sql(source, partition.stat_hour)
                )
            # Both layers are staged and valid: only now does either become visible.
            if dwd is not None:
                yield _dwd_result(context, partition, publish(dwd, catalog), drops)
            if ads is not None:
                yield _ads_result(partition, publish(ads, catalog), int(valid_rows))
        finally:
            for staged in (dwd, ads):
                if staged is not None:
                    staged.discard()


def _dwd_result(
    context: dg.AssetExecutionContext,
    partition: HourPartition,
    published: PublishedPartition,
    drops: DwdDropCounts,
) -> dg.MaterializeResult:
    dropped = {**drops.dropped, "duplicate_report": drops.rows_kept - published.written.rows}
    context.log.info(f"{DWD_TABLE} {partition.key}: {drops.rows_in} in, dropped {dropped}")
    return dg.MaterializeResult(
        asset_key=DWD_KEY,
        metadata={
            **published.metadata,
            "rows_in": drops.rows_in,
            **{f"dropped_{reason}": count for reason, count in dropped.items()},
            "dropped_total": sum(dropped.values()),
        },
        check_results=[published.schema_check],
    )


def _ads_result(
    partition: HourPartition, published: PublishedPartition, valid_rows: int
) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key=ADS_KEY,
        metadata={
            **published.metadata,
            "rows_in": dg.IntMetadataValue(valid_rows),
            "vehicles": published.written.rows,
            "stat_hour": partition.stat_hour,
        },
        check_results=[published.schema_check],
    )
