"""A confined DuckDB connection that shows a table set as one role may see it (``--role``).

- A sharing role with a local share and a role catalog: that catalog, confined to its share.
- Any other role (or a share on an object store): an in-memory database whose granted tables
  are views over Arrow datasets of the role's share (already masked) or, for a role without a
  share, of the warehouse masked inline by the policy's SQL. DuckDB itself is allowed no folder
  at all: pyarrow reads the datasets, and the views are built from relations, so the unmasked
  source is not reachable by a name.

Every other known table is a view raising the access error. This is a preview on the lakehouse
host: whoever can run it can also run it without ``--role``; the boundaries are the share's own
storage credentials and the API keys.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from lakehouse.governance.confinement import CONNECT_CONFIG, confine
from lakehouse.governance.masking import bind_salt
from lakehouse.governance.policy import AccessPolicy
from lakehouse.governance.role_catalog import (
    PARTITION_COLUMNS,
    connect_as_role,
    denied_view_sql,
)
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage, Zone
from lakehouse.tables import TABLE_SCHEMAS

_HIVE = ds.partitioning(pa.schema([(c, pa.string()) for c in PARTITION_COLUMNS]), flavor="hive")


def connect_for_role(
    policy: AccessPolicy, role: str, storage: LakehouseStorage, catalog: CatalogResource
) -> duckdb.DuckDBPyConnection:
    """A connection that can read what ``role`` may read, as it may see it, and nothing else."""
    spec = policy.role(role)  # an unknown role is refused by name
    share = storage.share() if spec.share else None
    if share is not None and share.is_local and catalog.role_path(role).exists():
        return connect_as_role(catalog.role_path(role), share, role)
    con = duckdb.connect(":memory:", config=CONNECT_CONFIG)
    for table in TABLE_SCHEMAS:
        if table not in spec.tables:
            con.execute(denied_view_sql(role, table))
            continue
        if share is not None:  # the share is masked already
            source = _dataset(share, f"{role}/{table}", table)
            query = f"SELECT * FROM src{' ORDER BY ALL' if policy.masks_for(role, table) else ''}"
        else:
            source = _dataset(storage.warehouse(), table, table)
            query = policy.select_sql(role, table, "src", PARTITION_COLUMNS)
            if policy.needs_salt(role, table):
                bind_salt(con)
        con.from_arrow(source).query("src", query).create_view(table)
    confine(con)
    return con


def _dataset(zone: Zone, relative: str, table: str) -> ds.Dataset:
    """The table's hive-partitioned files under ``relative`` (none yet: an empty dataset)."""
    schema = TABLE_SCHEMAS[table]
    for column in PARTITION_COLUMNS:
        schema = schema.append(pa.field(column, pa.string()))
    if not zone.list_files(relative, recursive=True):
        return ds.dataset(schema.empty_table())
    return ds.dataset(
        zone.path(relative),
        schema=schema,
        format="parquet",
        filesystem=zone.filesystem,
        partitioning=_HIVE,
        exclude_invalid_files=False,
    )
