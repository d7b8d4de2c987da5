"""ADS: per-vehicle hourly mileage and average speed, the numbers dashboards and APIs serve."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lakehouse.defs.ads.transform import ads_relation
from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.defs.publishing import publish_hour
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ADS_TABLE, DWD_TABLE
from lakehouse.warehouse.partition_store import read_partition

BATCH_ROWS = 1 << 20


@dg.asset(
    name=ADS_TABLE,
    group_name="ads",
    deps=[DWD_TABLE],
    partitions_def=hourly_partitions,
    kinds={"duckdb", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[dg.AssetCheckSpec(SCHEMA_CHECK, asset=ADS_TABLE, blocking=True)],
)
def ads_vehicle_hourly_stat(
    context: dg.AssetExecutionContext,
    storage: LakehouseStorage,
    engine: DuckDBResource,
    catalog: CatalogResource,
) -> dg.MaterializeResult:
    """Per-vehicle mileage (seed formula and haversine) and mean speed of the hour."""
    partition = HourPartition.from_key(context.partition_key)
    warehouse = storage.warehouse()
    dwd = read_partition(warehouse, DWD_TABLE, partition)
    with engine.get_connection() as con:
        con.register("dwd", dwd)
        (rows_in,) = con.sql("SELECT count(*) FROM dwd WHERE loc_valid").fetchall()[0]
        reader = ads_relation(con, "dwd", partition.stat_hour).to_arrow_reader(BATCH_ROWS)
        published = publish_hour(warehouse, catalog, ADS_TABLE, partition, reader)
    return dg.MaterializeResult(
        metadata={
            **published.metadata,
            "rows_in": dg.IntMetadataValue(int(rows_in)),
            "vehicles": published.written.rows,
            "stat_hour": partition.stat_hour,
        },
        check_results=[published.schema_check],
    )
