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
import duckdb
from dagster_duckdb import DuckDBResource

from lakehouse.defs.ads.fleet_kpi import fleet_kpi_sql
from lakehouse.defs.ads.transform import ads_sql
from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.defs.dwd.transform import DwdDropCounts, classified_sql, count_drops, dwd_sql
from lakehouse.defs.publishing import PublishedPartition, StagedPartition, publish, stage_query
from lakehouse.defs.retries import storage_faults_handled
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.resources.zones import Zone
from lakehouse.sql_text import quote_literal
from lakehouse.tables import ADS_TABLE, DWD_TABLE, KPI_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import sweep_staging
from lakehouse.warehouse.sources import scanned_partition

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
    engine: DuckDBResource,
    catalog: CatalogResource,
) -> Iterator[dg.MaterializeResult]:
    """Clean the hour's ODS rows into DWD, aggregate them into ADS and the fleet's KPIs."""
    partition = HourPartition.from_key(context.partition_key)
    selected = context.selected_asset_keys
    with (
        storage_faults_handled(context),
        engine.get_connection() as con,
        contextlib.ExitStack() as scans,
    ):
        warehouse = storage.warehouse()
        staged: dict[dg.AssetKey, StagedPartition] = {}

        def source(table: str, key: dg.AssetKey) -> str:
            """This step's staged rows of ``table``, else its published hour."""
            if key in staged:
                return f"read_parquet({quote_literal(staged[key].local_path)})"
            return scans.enter_context(scanned_partition(warehouse, table, partition))

        try:
            if DWD_KEY in selected:
                ods = source(ODS_TABLE, dg.AssetKey(ODS_TABLE))
                # Parse and classify every row once; both the counts and DWD read the result.
                con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {classified_sql(ods)}")
                drops = count_drops(con, "classified")
                query = dwd_sql("classified")
                staged[DWD_KEY] = _stage(warehouse, con, DWD_TABLE, partition, query)
                con.execute("DROP TABLE classified")
            if ADS_KEY in selected:
                dwd = source(DWD_TABLE, DWD_KEY)
                valid = con.sql(f"SELECT count(*) FROM {dwd} WHERE loc_valid").fetchall()
                query = ads_sql(dwd, partition.stat_hour)
                staged[ADS_KEY] = _stage(warehouse, con, ADS_TABLE, partition, query)
            if KPI_KEY in selected:
                query = fleet_kpi_sql(
                    source(ADS_TABLE, ADS_KEY), source(DWD_TABLE, DWD_KEY), partition.stat_hour
                )
                staged[KPI_KEY] = _stage(warehouse, con, KPI_TABLE, partition, query)
            # Every selected layer is staged and valid: only now does any become visible.
            if DWD_KEY in staged:
                yield _dwd_result(context, partition, publish(staged[DWD_KEY], catalog), drops)
            if ADS_KEY in staged:
                yield _ads_result(partition, publish(staged[ADS_KEY], catalog), valid[0][0])
            if KPI_KEY in staged:
                yield _kpi_result(publish(staged[KPI_KEY], catalog))
        finally:
            for partial in staged.values():
                partial.discard()


def _stage(
    warehouse: Zone,
    con: duckdb.DuckDBPyConnection,
    table: str,
    partition: HourPartition,
    query: str,
) -> StagedPartition:
    sweep_staging(warehouse, table)
    return stage_query(warehouse, con, table, partition, query)


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
            "rows_in": dg.IntMetadataValue(int(valid_rows)),
            "vehicles": published.written.rows,
            "stat_hour": partition.stat_hour,
        },
        check_results=[published.schema_check],
    )


def _kpi_result(published: PublishedPartition) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key=KPI_KEY, metadata=published.metadata, check_results=[published.schema_check]
    )
