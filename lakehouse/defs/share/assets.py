"""Shares: masked, hive-partitioned copies of a role's granted tables, refreshed with them.

Each role marked ``share: true`` in the policy gets one asset per granted table,
``share/<role>/<table>``, partitioned like its source and written to
``<share>/<role>/<table>/dt=YYYY-MM-DD/hh=HH/part-0.parquet`` (the share location can be a
bucket of its own, which is how a deployment isolates it with storage credentials). DuckDB masks
the rows with the policy's SQL and writes them ordered by the masked values, so neither row
order, row groups nor statistics say anything about the raw ones. Each file records the policy
it was masked under. A third-party Spark job reads the share folder directly; the role's catalog
(views over the share) is rewritten only when the role's grants change.

A run publishes only under the applied policy (``lakehouse.governance.state``): it checks before
and after publishing, and if the policy moved it withdraws what it wrote, asks for the hour to be
re-masked, and fails.
"""

from collections.abc import Iterator

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from lakehouse.defs.publishing import PARQUET_OPTIONS
from lakehouse.governance.masking import bind_salt
from lakehouse.governance.policy import AccessPolicy
from lakehouse.governance.role_catalog import ensure_role_catalog
from lakehouse.governance.share_layout import (
    MASKING_VERSION_KEY,
    kv_metadata_option,
    partition_labels,
    recorded_labels,
    shared_relpath,
    shared_table,
)
from lakehouse.governance.state import clear_remask, read_applied, request_remask
from lakehouse.governance.versions import RoleState, policy_snapshot
from lakehouse.partitions import HourPartition, hourly_partitions
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage, Zone
from lakehouse.sql_text import quote_literal
from lakehouse.warehouse.catalog_file import first_line
from lakehouse.warehouse.partition_store import StagedFile, WrittenPartition
from lakehouse.warehouse.sources import scanned_partition


def share_key(role: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["share", role, table])


def build_share_assets(policy: AccessPolicy) -> list[dg.AssetsDefinition]:
    """One multi-asset per sharing role, with an asset per granted table."""
    return [_share_for(policy, role.name) for role in policy.roles.values() if role.share]


def _share_for(policy: AccessPolicy, role: str) -> dg.AssetsDefinition:
    tables = policy.role(role).tables
    state = policy_snapshot(policy)[role]
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
        selected = [t for t in tables if share_key(role, t) in context.selected_asset_keys]
        guard = PolicyGuard(state, role, warehouse, share, partition)
        for table in selected:
            guard.before_publishing(table)
        role_catalog = _refresh_role_catalog(context, catalog, policy, role, share, guard)
        with engine.get_connection() as con:
            for table in selected:
                written = _write(con, policy, role, table, warehouse, share, partition, state)
                guard.after_publishing(table)
                clear_remask(warehouse, role, table, partition)
                masks = policy.masks_for(role, table)
                yield dg.MaterializeResult(
                    asset_key=share_key(role, table),
                    metadata={
                        "dagster/row_count": written.rows,
                        "path": dg.MetadataValue.path(written.url),
                        "bytes": written.bytes,
                        "masked_columns": {c: m.describe() for c, m in masks.items()},
                        "policy_version": state.version,
                        "masking_version": state.tables[table],
                        "role_catalog": dg.MetadataValue.path(str(catalog.role_path(role))),
                        "role_catalog_refresh": role_catalog,
                    },
                )

    return share_assets


def _write(
    con: duckdb.DuckDBPyConnection,
    policy: AccessPolicy,
    role: str,
    table: str,
    warehouse: Zone,
    share: Zone,
    partition: HourPartition,
    state: RoleState,
) -> WrittenPartition:
    """Mask the warehouse hour into the share (ordered by masked values), labelled, atomically."""
    if policy.needs_salt(role, table):
        bind_salt(con)
    labels = partition_labels(role, table, partition, state.version, state.tables[table])
    with (
        scanned_partition(warehouse, table, partition) as source,
        StagedFile(share, shared_table(role, table), partition) as staged,
    ):
        query = policy.select_sql(role, table, source)
        con.execute(
            f"COPY ({query}) TO {quote_literal(staged.local_path)} "
            f"({PARQUET_OPTIONS}, {kv_metadata_option(labels)})"
        )
        return staged.publish()


class PolicyGuard:
    """Publish only under the applied policy; otherwise withdraw, ask for a re-mask, and fail."""

    def __init__(
        self, state: RoleState, role: str, warehouse: Zone, share: Zone, partition: HourPartition
    ):
        self.state, self.role = state, role
        self.warehouse, self.share, self.partition = warehouse, share, partition

    def role_is_applied(self) -> bool:
        """Nothing applied yet (a new deployment), or this run's policy for the role is."""
        applied = read_applied(self.warehouse)
        return applied is None or applied.roles.get(self.role) == self.state

    def before_publishing(self, table: str) -> None:
        self._check(table, published=False)

    def after_publishing(self, table: str) -> None:
        """Closes the race with a reconciliation that listed the share before this publish."""
        self._check(table, published=True)

    def _check(self, table: str, published: bool) -> None:
        applied = read_applied(self.warehouse)
        masking = self.state.tables[table]
        if applied is None or applied.allows(self.role, table, masking):
            return
        if published:
            self._withdraw_own(table, masking)
        # The policy sensor drops the request if the applied policy no longer shares the table.
        request_remask(self.warehouse, self.role, table, self.partition)
        now = applied.roles.get(self.role)
        raise dg.Failure(
            description=(
                f"the access policy for role {self.role!r} changed while this run was masking "
                f"{table} {self.partition.key} (this run: {self.state.version}, applied: "
                f"{now.version if now else 'role no longer shares'}); "
                "nothing was left shared, and the hour is re-masked under the applied policy "
                "if the role may still read it"
            ),
            metadata={"role": self.role, "table": table, "partition": self.partition.key},
        )

    def _withdraw_own(self, table: str, masking: str) -> None:
        relative = shared_relpath(self.role, table, self.partition)
        try:
            if recorded_labels(self.share, relative).get(MASKING_VERSION_KEY) != masking:
                return  # already replaced by a run under the applied policy
            self.share.delete(relative)
        except FileNotFoundError:
            return


def _refresh_role_catalog(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    policy: AccessPolicy,
    role: str,
    share: Zone,
    guard: PolicyGuard,
) -> str:
    """Make sure the role's catalog exists for its grants; reported, never fatal."""
    try:
        update = ensure_role_catalog(
            catalog.role_path(role), policy, role, share, only_if=guard.role_is_applied
        )
    except Exception as exc:  # the share is what the role reads; the catalog is retried
        message = f"failed: {first_line(exc)}; tried again on the next run"
        context.log.warning(f"role catalog of {role!r} not refreshed: {message}")
        return message
    if update.skipped:
        context.log.warning(f"role catalog of {role!r}: views skipped {update.skipped}")
    return update.status
