"""Load a layer table's partition into another asset, masked for the role it is loaded for.

The role comes from this IO manager's ``role`` setting (for a deployment that serves one
audience) or the run tag ``lakehouse/role`` (per run); if both are set they must agree. Without
either, the caller is trusted and sees the table as stored. Masking uses the policy's own SQL,
so the values, and their order (by masked value, never the warehouse's raw-vin order), are
exactly those of the share and the role catalog.
"""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from lakehouse.governance.masking import bind_salt
from lakehouse.governance.policy import AccessDenied, load_policy
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sql_text import quote_identifier
from lakehouse.tables import TABLE_SCHEMAS
from lakehouse.warehouse.sources import scanned_partition

ROLE_TAG = "lakehouse/role"


class MaskedTableLoader(dg.IOManager):
    """Input manager for the layer tables: a partition as an Arrow table, masked per role."""

    def __init__(self, storage: LakehouseStorage, engine: DuckDBResource, role: str | None = None):
        self.storage, self.engine, self.role = storage, engine, role

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is not None:
            raise TypeError("layer tables are written by their own assets, not by this manager")

    def load_input(self, context: dg.InputContext) -> pa.Table:
        table = context.asset_key.path[-1]
        if table not in TABLE_SCHEMAS:
            raise ValueError(f"{context.asset_key.to_user_string()} is not a layer table")
        role = self._role(context)
        partition = HourPartition.from_key(context.asset_partition_key)
        warehouse = self.storage.warehouse()
        with (
            self.engine.get_connection() as con,
            scanned_partition(warehouse, table, partition) as source,
        ):
            if role is None:
                columns = ", ".join(quote_identifier(c) for c in TABLE_SCHEMAS[table].names)
                query = f"SELECT {columns} FROM {source}"
            else:
                policy = load_policy()
                query = policy.select_sql(role, table, source)
                if policy.needs_salt(role, table):
                    bind_salt(con)
            return con.sql(query).to_arrow_table()

    def _role(self, context: dg.InputContext) -> str | None:
        tagged = context.step_context.run_tags.get(ROLE_TAG) if context.step_context else None
        if self.role and tagged and tagged != self.role:
            raise AccessDenied(
                f"run tag {ROLE_TAG}={tagged!r} contradicts this loader's role {self.role!r}"
            )
        return self.role or tagged


@dg.io_manager(
    required_resource_keys={"storage", "engine"},
    config_schema={
        "role": dg.Field(
            dg.Noneable(str), default_value=None, description="Load every table as this role."
        )
    },
    description="Loads a layer table's partition as Arrow, masked for the run's role.",
)
def masked_table_loader(init_context: dg.InitResourceContext) -> MaskedTableLoader:
    """The loader over the code location's own ``storage`` and ``engine`` resources.

    Bound by resource key (not a nested copy), so run config given to ``storage`` is the
    storage the loader reads.
    """
    return MaskedTableLoader(
        init_context.resources.storage,
        init_context.resources.engine,
        init_context.resource_config["role"],
    )
