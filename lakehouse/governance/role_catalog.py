"""Role catalogs: one DuckDB file per sharing role, views over the role's own (masked) share.

A role catalog holds no data: each granted table is a view over the role's share folder, which
holds masked rows only, so new share hours show up without touching the file and nothing in it
points at the warehouse or the raw zone. Every other known table is a view that fails with the
access error ("role 'x' has no grant on table 'y'"), so SQL users and BI tools get the reason, not
"does not exist". The file changes only when the role's grants change (``ensure_role_catalog``,
called by the policy reconciliation and by share runs; rebuilt aside and renamed over, so its
readers never block it), and it is opened for the role confined to its share folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from lakehouse.governance.confinement import CONNECT_CONFIG, confine
from lakehouse.governance.policy import AccessPolicy, no_grant_message, sql_type
from lakehouse.resources.storage import Zone
from lakehouse.sql_text import quote_identifier, quote_literal
from lakehouse.tables import TABLE_SCHEMAS
from lakehouse.warehouse.catalog import HIVE_TYPES, table_glob
from lakehouse.warehouse.catalog_file import CatalogUpdate, write_catalog

PARTITION_COLUMNS = ("dt", "hh")


def _columns(table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the table's columns and its hive partition columns."""
    own = [(f.name, sql_type(f.type)) for f in TABLE_SCHEMAS[table]]
    return own + [(c, "VARCHAR") for c in PARTITION_COLUMNS]


def scan_sql(glob: str, table: str) -> str:
    """The table's columns (and ``dt``, ``hh``) from the Parquet files at ``glob``, typed.

    No files yet means no rows, not an error (an empty typed row set is unioned by name with
    ``read_parquet(..., allow_empty)``), so a view can exist before its first partition.
    """
    columns = _columns(table)
    empty = ", ".join(f"NULL::{t} AS {quote_identifier(c)}" for c, t in columns)
    typed = ", ".join(
        f"CAST({quote_identifier(c)} AS {t}) AS {quote_identifier(c)}" for c, t in columns
    )
    return (
        f"SELECT {typed} FROM (SELECT {empty} WHERE false UNION ALL BY NAME "
        f"SELECT * FROM read_parquet({quote_literal(glob)}, allow_empty = true, "
        f"hive_partitioning = true, hive_types = {HIVE_TYPES}))"
    )


def denied_view_sql(role: str, table: str) -> str:
    """A view with the table's columns whose every use raises the access error."""
    error = f"error({quote_literal(no_grant_message(role, table))})"
    columns = ", ".join(
        f"CAST({error} AS {t}) AS {quote_identifier(c)}" for c, t in _columns(table)
    )
    return (
        f"CREATE OR REPLACE VIEW {quote_identifier(table)} AS "
        f"SELECT {columns} FROM range(1) WHERE {error} IS NULL"
    )


def share_folder(share: Zone, role: str) -> str:
    """The role's share folder as DuckDB addresses it (a local path or an ``s3://`` URL)."""
    path = share.path(role)
    return path if share.is_local else share.display(path)


def role_catalog_views(policy: AccessPolicy, role: str, share: Zone) -> dict[str, str]:
    """View name -> statement: the granted tables over the share, the others refused."""
    granted = set(policy.role(role).tables)
    views = {}
    for table in TABLE_SCHEMAS:
        if table in granted:
            glob = table_glob(share, f"{role}/{table}")
            views[table] = (
                f"CREATE OR REPLACE VIEW {quote_identifier(table)} AS {scan_sql(glob, table)}"
            )
        else:
            views[table] = denied_view_sql(role, table)
    return views


def ensure_role_catalog(
    path: Path,
    policy: AccessPolicy,
    role: str,
    share: Zone,
    only_if: Callable[[], bool] | None = None,
) -> CatalogUpdate:
    """Write the role's catalog if its definition changed; readers keep their snapshot.

    ``only_if`` is asked under the catalog's writer lock (a share run checks there that its
    policy is still the applied one, so it cannot overwrite a newer reconciliation's catalog).
    """
    return write_catalog(path, role_catalog_views(policy, role, share), only_if=only_if)


def connect_as_role(path: Path, share: Zone, role: str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a role catalog that can read the role's share folder only."""
    if not path.exists():
        raise FileNotFoundError(
            f"no role catalog at {path}: run `lakehouse policy apply` or materialize the "
            "role's share"
        )
    con = duckdb.connect(str(path), read_only=True, config=CONNECT_CONFIG)
    confine(con, [share_folder(share, role)])
    return con
