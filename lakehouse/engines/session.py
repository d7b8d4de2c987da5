"""The few operations a layer step needs from an engine, and the in-process DuckDB one."""

from __future__ import annotations

from typing import Protocol

import duckdb

from lakehouse.sql_text import quote_literal

ENGINES = ("duckdb", "spark")


class LayerSession(Protocol):
    """One step's engine: named sources in, query results out as DuckDB table expressions."""

    name: str  # "duckdb" or "spark", reported on every materialisation it computed

    def register(self, view: str, parquet_path: str) -> None:
        """Make a local Parquet file readable as ``view``."""

    def define(self, view: str, sql: str) -> None:
        """Make ``sql``'s rows readable as ``view`` by the queries that follow.

        Whether the rows are computed once and kept, or as each query scans, is the engine's
        choice: whichever costs it less.
        """

    def drop(self, view: str) -> None:
        """Forget ``view`` and free what it held."""

    def rows(self, sql: str) -> list[tuple]:
        """The (small) result of ``sql``."""

    def result(self, sql: str) -> str:
        """A DuckDB query over ``sql``'s rows, in its order, for DuckDB to stage."""


class DuckDBLayers:
    """The layer SQL run as written, on the step's DuckDB connection."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def register(self, view: str, parquet_path: str) -> None:
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS "
            f"SELECT * FROM read_parquet({quote_literal(parquet_path)})"
        )

    def define(self, view: str, sql: str) -> None:
        # A view: each reader computes the rows as it scans. Keeping the hour's classified rows
        # in a table both readers share cost the 10.9M-row hour 0.4 s more (and spilled).
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {sql}")

    def drop(self, view: str) -> None:
        self.con.execute(f"DROP VIEW IF EXISTS {view}")

    def rows(self, sql: str) -> list[tuple]:
        return self.con.sql(sql).fetchall()

    def result(self, sql: str) -> str:
        return sql
