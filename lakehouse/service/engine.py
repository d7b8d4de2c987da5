"""One confined in-memory DuckDB database per role: it reads that role's folders, nothing else.

Each database is locked down once, when it is created, with the lakehouse's confinement
(``lakehouse.governance.confinement``: ``allowed_directories`` = the role's table folders,
``enable_external_access = false``, ``lock_configuration = true``). A masked role's folders are
its share folders, so whatever SQL runs in its database can only ever see masked rows. Requests
use a cursor each (DuckDB's way to share a database between threads).

The relation a query reads is built per request from the partition files listed for it:

- local zones: DuckDB's own Parquet reader over exactly those files (a bound list parameter);
- object stores: a pyarrow dataset over those objects, read through the zone's filesystem and
  registered on the request's cursor (DuckDB's httpfs is not needed). The database still may
  open no file at all: only the registered dataset is reachable.

The server never opens the catalog file (a reader's lock on it would block the runs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from lakehouse.governance.confinement import CONNECT_CONFIG, confine
from lakehouse.service.access import RoleAccess, TableSource
from lakehouse.service.listing import PartitionFile
from lakehouse.tables import TABLE_SCHEMAS

LOCAL_SCAN = {
    True: "read_parquet($files, hive_partitioning = true, "
    "hive_types = {'dt': 'VARCHAR', 'hh': 'VARCHAR'})",
    False: "read_parquet($files, hive_partitioning = true, hive_types = {'dt': 'VARCHAR'})",
}
REGISTERED = "partition_rows"
# Parquet files written by pyarrow (ODS) leave NaN out of a column's min/max, and DuckDB, trusting
# them, folds `x > v`, `x = NaN` or even `isnan(x)` to false for row groups that do hold NaN:
# keyset pages would silently skip rows. Without these two optimizers every predicate is
# evaluated on the rows themselves; the page queries lose nothing measurable (no query here
# prunes by statistics: partitions are chosen by listing, ADS files are one row group).
TRUST_NO_STATISTICS = "statistics_propagation,filter_pushdown"

# Builds (SQL, parameters) for a page, given the relation to read.
SqlBuilder = Callable[[str], tuple[str, dict[str, Any]]]


def open_confined(
    allowed_directories: Sequence[str], memory_limit: str = "1GB", threads: int = 2
) -> duckdb.DuckDBPyConnection:
    """An in-memory database that may read ``allowed_directories`` only, locked that way."""
    config = {
        **CONNECT_CONFIG,
        "memory_limit": memory_limit,
        "threads": threads,
        "disabled_optimizers": TRUST_NO_STATISTICS,
    }
    con = duckdb.connect(":memory:", config=config)
    confine(con, allowed_directories)
    return con


class RoleDatabase:
    """The confined database of one role under one policy generation."""

    def __init__(self, access: RoleAccess, memory_limit: str, threads: int):
        self.access = access
        self._con = open_confined(access.allowed_directories(), memory_limit, threads)
        self._lock = threading.Lock()

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            cursor = self._con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def rows(
        self, source: TableSource, files: Sequence[PartitionFile], build: SqlBuilder
    ) -> list[tuple[Any, ...]]:
        """Run the page query over ``files`` (none: no rows, no query)."""
        if not files:
            return []
        if source not in self.access.sources.values():
            raise PermissionError(f"{source.folder} is not a folder of role {self.access.role!r}")
        with self._cursor() as cursor:
            if source.zone.is_local:
                relation = LOCAL_SCAN[source.hourly]
                params: dict[str, Any] = {"files": [f.info.path for f in files]}
            else:
                cursor.register(REGISTERED, _dataset(source, files))
                relation, params = REGISTERED, {}
            sql, own = build(relation)
            return cursor.execute(sql, {**params, **own}).fetchall()

    def check(self) -> None:
        """A trivial query: the database answers."""
        with self._cursor() as cursor:
            cursor.execute("SELECT 1").fetchall()

    def close(self) -> None:
        self._con.close()


def _dataset(source: TableSource, files: Sequence[PartitionFile]) -> ds.Dataset:
    """The listed objects as one hive-partitioned pyarrow dataset (read lazily, pushed down)."""
    partitions = pa.schema([(c, pa.string()) for c in source.partition_columns])
    schema = TABLE_SCHEMAS[source.table]
    for column in partitions:
        schema = schema.append(column)
    return ds.dataset(
        [f.info.path for f in files],
        schema=schema,
        format="parquet",
        filesystem=source.zone.filesystem,
        partitioning=ds.partitioning(partitions, flavor="hive"),
        partition_base_dir=source.zone.path(source.folder),
    )


class Engines:
    """The role databases of the current policy generation, created on first use."""

    def __init__(self, memory_limit: str, threads: int):
        self.memory_limit, self.threads = memory_limit, threads
        self._databases: dict[tuple[int, str], RoleDatabase] = {}
        self._lock = threading.Lock()

    def database(self, generation: int, access: RoleAccess) -> RoleDatabase:
        key = (generation, access.role)
        with self._lock:
            database = self._databases.get(key)
            if database is None:
                # A new policy generation: the old databases go (open cursors keep theirs).
                for old in [k for k in self._databases if k[0] != generation]:
                    del self._databases[old]
                database = RoleDatabase(access, self.memory_limit, self.threads)
                self._databases[key] = database
            return database

    def close(self) -> None:
        with self._lock:
            for database in self._databases.values():
                database.close()
            self._databases.clear()
