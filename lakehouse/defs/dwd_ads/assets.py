"""DWD and ADS of an hour in one step: one engine, one scan of ODS, no round trip between them.

Both tables stay separate assets (each with its own partition, schema check and metadata); they
share a step because ADS is a pure function of the DWD rows just computed, and a second step
would pay process and scan overhead for nothing. Either can still be materialised alone.
"""

from collections.abc import Iterator

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from lakehouse.defs.ads.transform import ads_sql
from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.defs.dwd.transform import count_drops, dwd_sql
from lakehouse.defs.publishing import publish_query
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage, Zone
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.sources import table_source

DWD_KEY, ADS_KEY = dg.AssetKey(DWD_TABLE), dg.AssetKey(ADS_TABLE)


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
    check_specs=[
        dg.AssetCheckSpec(SCHEMA_CHECK, asset=DWD_KEY, blocking=True),
        dg.AssetCheckSpec(SCHEMA_CHECK, asset=ADS_KEY, blocking=True),
    ],
    partitions_def=hourly_partitions,
    can_subset=True,
)
def dwd_and_ads_hour(
    context: dg.AssetExecutionContext,
    storage: LakehouseStorage,
    engine: DuckDBResource,
    catalog: CatalogResource,
) -> Iterator[dg.MaterializeResult]:
    """Clean the hour's ODS rows into DWD, then aggregate them into ADS."""
    partition = HourPartition.from_key(context.partition_key)
    warehouse = storage.warehouse()
    selected = context.selected_asset_keys
    with engine.get_connection() as con:
        if DWD_KEY in selected:
            yield _materialize_dwd(context, con, warehouse, catalog, partition)
        if ADS_KEY in selected:
            yield _materialize_ads(con, warehouse, catalog, partition)


def _materialize_dwd(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    warehouse: Zone,
    catalog: CatalogResource,
    partition: HourPartition,
) -> dg.MaterializeResult:
    ods = table_source(con, warehouse, ODS_TABLE, partition)
    drops = count_drops(con, ods)
    published = publish_query(warehouse, catalog, con, DWD_TABLE, partition, dwd_sql(ods))
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


def _materialize_ads(
    con: duckdb.DuckDBPyConnection,
    warehouse: Zone,
    catalog: CatalogResource,
    partition: HourPartition,
) -> dg.MaterializeResult:
    dwd = table_source(con, warehouse, DWD_TABLE, partition)
    (rows_in,) = con.sql(f"SELECT count(*) FROM {dwd} WHERE loc_valid").fetchall()[0]
    query = ads_sql(dwd, partition.stat_hour)
    published = publish_query(warehouse, catalog, con, ADS_TABLE, partition, query)
    return dg.MaterializeResult(
        asset_key=ADS_KEY,
        metadata={
            **published.metadata,
            "rows_in": dg.IntMetadataValue(int(rows_in)),
            "vehicles": published.written.rows,
            "stat_hour": partition.stat_hour,
        },
        check_results=[published.schema_check],
    )
