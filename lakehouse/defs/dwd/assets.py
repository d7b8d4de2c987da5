"""DWD: the hour's reports cleaned, parsed, flagged and deduplicated."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.defs.dwd.transform import count_drops, dwd_relation
from lakehouse.defs.publishing import publish_hour
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import read_partition

BATCH_ROWS = 1 << 20


@dg.asset(
    name=DWD_TABLE,
    group_name="dwd",
    deps=[ODS_TABLE],
    partitions_def=hourly_partitions,
    kinds={"duckdb", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[dg.AssetCheckSpec(SCHEMA_CHECK, asset=DWD_TABLE, blocking=True)],
)
def dwd_vehicle_gps(
    context: dg.AssetExecutionContext,
    storage: LakehouseStorage,
    engine: DuckDBResource,
    catalog: CatalogResource,
) -> dg.MaterializeResult:
    """Valid GPS reports of the hour: known vin, real speed, parsed event_time, loc_valid flag."""
    partition = HourPartition.from_key(context.partition_key)
    warehouse = storage.warehouse()
    ods = read_partition(warehouse, ODS_TABLE, partition)
    with engine.get_connection() as con:
        con.register("ods", ods)
        drops = count_drops(con, "ods")
        reader = dwd_relation(con, "ods").to_arrow_reader(BATCH_ROWS)
        published = publish_hour(warehouse, catalog, DWD_TABLE, partition, reader)
    duplicates = drops.rows_kept - published.written.rows
    dropped = {**drops.dropped, "duplicate_report": duplicates}
    context.log.info(f"{DWD_TABLE} {partition.key}: {drops.rows_in} in, dropped {dropped}")
    return dg.MaterializeResult(
        metadata={
            **published.metadata,
            "rows_in": drops.rows_in,
            **{f"dropped_{reason}": count for reason, count in dropped.items()},
            "dropped_total": sum(dropped.values()),
        },
        check_results=[published.schema_check],
    )
