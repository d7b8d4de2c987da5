"""DWD, ADS and the fleet KPIs of an hour in one step: one engine, one scan of ODS, one publish.

The tables stay separate assets (each with its own partition, schema check and metadata); they
share a step because ADS is a pure function of the DWD rows just computed, and the KPIs of both.
All selected tables are staged and validated before any becomes visible, so a failure never
leaves a new DWD hour beside a stale ADS hour; and since each is computed from exactly the rows
published below it, it can always be recomputed from them. Each can still be materialised alone,
reading the published hour of the layers below.
"""

import contextlib
from collections.abc import Iterator

import dagster as dg

from lakehouse.defs.ads.fleet_kpi import fleet_kpi_sql
from lakehouse.defs.ads.transform import ads_sql
from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.defs.dwd.transform import DwdDropCounts, classified_sql, count_drops, dwd_sql
from lakehouse.defs.publishing import PublishedPartition, StagedPartition, publish, stage_query
from lakehouse.defs.retries import storage_faults_handled
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.engine import ComputeEngine
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ADS_TABLE, DWD_TABLE, KPI_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import sweep_staging
from lakehouse.warehouse.sources import fetched_partition

DWD_KEY, ADS_KEY, KPI_KEY = (dg.AssetKey(t) for t in (DWD_TABLE, ADS_TABLE, KPI_TABLE))


def _schema_check(key: dg.AssetKey, what: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        SCHEMA_CHECK,
        asset=key,
        blocking=True,
        description=f"Every row of the hour fits the {what} pandera schema; checked before the "
        "partition becomes visible, so a violation publishes nothing.",
    )


@dg.multi_asset(
    name="hourly_layers",
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
        dg.AssetSpec(
            KPI_KEY,
            deps=[ADS_KEY, DWD_KEY],
            group_name="ads",
            kinds={"duckdb", "parquet"},
            automation_condition=dg.AutomationCondition.eager(),
            description="The fleet's hour: vehicles, total mileage, mean speed and the share "
            "of invalid locations.",
        ),
    ],
    check_specs=[
        _schema_check(DWD_KEY, "DWD"),
        _schema_check(ADS_KEY, "ADS"),
        _schema_check(KPI_KEY, "fleet KPI"),
    ],
    partitions_def=hourly_partitions,
    can_subset=True,
)
def hourly_layers(
    context: dg.AssetExecutionContext,
    storage: LakehouseStorage,
    engine: ComputeEngine,
    catalog: CatalogResource,
) -> Iterator[dg.MaterializeResult]:
    """Clean the hour's ODS rows into DWD, aggregate them into ADS and the fleet's KPIs."""
    partition = HourPartition.from_key(context.partition_key)
    selected = context.selected_asset_keys
    with (
        storage_faults_handled(context),
        engine.get_connection() as con,
        engine.layer_session(con) as layers,
        contextlib.ExitStack() as scans,
    ):
        warehouse = storage.warehouse()
        staged: dict[dg.AssetKey, StagedPartition] = {}

        def source(table: str, key: dg.AssetKey, view: str) -> str:
            """``view``: this step's staged rows of ``table``, else its published hour."""
            if key in staged:
                layers.register(view, staged[key].local_path)
            else:
                path = scans.enter_context(fetched_partition(warehouse, table, partition))
                layers.register(view, path)
            return view

        def stage(table: str, query: str) -> StagedPartition:
            sweep_staging(warehouse, table)
            return stage_query(warehouse, con, table, partition, layers.result(query))

        try:
            if DWD_KEY in selected:
                ods = source(ODS_TABLE, dg.AssetKey(ODS_TABLE), "ods")
                # Rows parsed and classified by one definition that the counts and DWD read.
                layers.define("classified", classified_sql(ods))
                drops = count_drops(layers, "classified")
                staged[DWD_KEY] = stage(DWD_TABLE, dwd_sql("classified"))
                layers.drop("classified")
            if ADS_KEY in selected:
                dwd = source(DWD_TABLE, DWD_KEY, "dwd")
                valid = layers.rows(f"SELECT count(*) FROM {dwd} WHERE loc_valid")[0][0]
                staged[ADS_KEY] = stage(ADS_TABLE, ads_sql(dwd, partition.stat_hour))
            if KPI_KEY in selected:
                ads, dwd = source(ADS_TABLE, ADS_KEY, "ads"), source(DWD_TABLE, DWD_KEY, "dwd")
                staged[KPI_KEY] = stage(KPI_TABLE, fleet_kpi_sql(ads, dwd, partition.stat_hour))
            # Every selected layer is staged and valid: only now does any become visible.
            computed_by = {"engine": layers.name}
            if DWD_KEY in staged:
                published = publish(staged[DWD_KEY], catalog)
                yield _dwd_result(context, partition, published, drops, computed_by)
            if ADS_KEY in staged:
                published = publish(staged[ADS_KEY], catalog)
                yield _ads_result(partition, published, valid, computed_by)
            if KPI_KEY in staged:
                yield _kpi_result(publish(staged[KPI_KEY], catalog), computed_by)
        finally:
            for partial in staged.values():
                partial.discard()


def _dwd_result(
    context: dg.AssetExecutionContext,
    partition: HourPartition,
    published: PublishedPartition,
    drops: DwdDropCounts,
    computed_by: dict[str, str],
) -> dg.MaterializeResult:
    dropped = {**drops.dropped, "duplicate_report": drops.rows_kept - published.written.rows}
    context.log.info(f"{DWD_TABLE} {partition.key}: {drops.rows_in} in, dropped {dropped}")
    return dg.MaterializeResult(
        asset_key=DWD_KEY,
        metadata={
            **published.metadata,
            **computed_by,
            "rows_in": drops.rows_in,
            **{f"dropped_{reason}": count for reason, count in dropped.items()},
            "dropped_total": sum(dropped.values()),
        },
        check_results=[published.schema_check],
    )


def _ads_result(
    partition: HourPartition,
    published: PublishedPartition,
    valid_rows: int,
    computed_by: dict[str, str],
) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key=ADS_KEY,
        metadata={
            **published.metadata,
            **computed_by,
            "rows_in": dg.IntMetadataValue(int(valid_rows)),
            "vehicles": published.written.rows,
            "stat_hour": partition.stat_hour,
        },
        check_results=[published.schema_check],
    )


def _kpi_result(published: PublishedPartition, computed_by: dict[str, str]) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key=KPI_KEY,
        metadata={**published.metadata, **computed_by},
        check_results=[published.schema_check],
    )
