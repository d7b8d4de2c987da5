"""Shares: masked, hive-partitioned copies of a role's granted tables, refreshed with them.

Each role marked ``share: true`` in the policy gets one asset per granted table,
``share/<role>/<table>``, partitioned like its source and written to
``<share>/<role>/<table>/dt=YYYY-MM-DD/hh=HH/part-0.parquet`` (the share location can be a
bucket of its own, which is how a deployment isolates it with storage credentials). The masked
rows are produced by DuckDB from the policy's SQL, published atomically, then loaded into the
role's catalog. A third-party Spark job reads the share folder directly.
"""

import posixpath
from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from lakehouse.defs.publishing import PARQUET_OPTIONS
from lakehouse.governance import role_catalog
from lakehouse.governance.masking import bind_salt
from lakehouse.governance.policy import AccessPolicy
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sql_text import quote_literal
from lakehouse.warehouse.partition_store import StagedFile, read_partition
from lakehouse.warehouse.sources import table_source


def share_key(role: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["share", role, table])


def build_share_assets(policy: AccessPolicy) -> list[dg.AssetsDefinition]:
    """One multi-asset per sharing role, with an asset per granted table."""
    return [_share_for(policy, role.name) for role in policy.roles.values() if role.share]


def _share_for(policy: AccessPolicy, role: str) -> dg.AssetsDefinition:
    tables = policy.role(role).tables
    specs = [
        dg.AssetSpec(
            share_key(role, table),
            deps=[table],
            group_name="share",
            kinds={"parquet", "duckdb"},
            automation_condition=dg.AutomationCondition.eager(),
            description=f"{table} as role {role!r} may see it (masked), for its own readers.",
            metadata={"role": role, "source_table": table},
        )
        for table in tables
    ]

    @dg.multi_asset(
        name=f"{role}_share",
        specs=specs,
        partitions_def=hourly_partitions,
        can_subset=True,
    )
    def share_assets(
        context: dg.AssetExecutionContext,
        storage: LakehouseStorage,
        engine: DuckDBResource,
        catalog: CatalogResource,
    ) -> Iterator[dg.MaterializeResult]:
        partition = HourPartition.from_key(context.partition_key)
        warehouse, share = storage.warehouse(), storage.share()
        with engine.get_connection() as con:
            for table in tables:
                if share_key(role, table) not in context.selected_asset_keys:
                    continue
                if policy.needs_salt(role, table):
                    bind_salt(con)
                query = policy.select_sql(
                    role, table, table_source(con, warehouse, table, partition)
                )
                shared_table = posixpath.join(role, table)
                with StagedFile(share, shared_table, partition) as staged:
                    con.execute(
                        f"COPY ({query}) TO {quote_literal(staged.local_path)} ({PARQUET_OPTIONS})"
                    )
                    written = staged.publish()
                rows = role_catalog.refresh_partition(
                    catalog.role_path(role),
                    table,
                    partition,
                    read_partition(share, shared_table, partition),
                )
                masks = policy.masks_for(role, table)
                yield dg.MaterializeResult(
                    asset_key=share_key(role, table),
                    metadata={
                        "dagster/row_count": written.rows,
                        "path": dg.MetadataValue.path(written.url),
                        "bytes": written.bytes,
                        "masked_columns": {c: m.describe() for c, m in masks.items()},
                        "role_catalog": dg.MetadataValue.path(str(catalog.role_path(role))),
                        "role_catalog_rows": rows,
                    },
                )

    return share_assets
