"""The in-process DuckDB compute engine for the layer transforms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from lakehouse.resources.spill import connection_spill_dir
from lakehouse.sql_text import quote_literal

ENGINE_MEMORY_LIMIT = "1GB"


class ComputeEngine(DuckDBResource):
    """In-memory DuckDB whose connections spill to a private folder of their own.

    The folder is made when a step connects, not when the code loads, so it lives in the
    process that runs the step (see ``lakehouse.resources.spill``).
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with connection_spill_dir() as spill, super().get_connection() as conn:
            conn.execute(f"SET temp_directory = {quote_literal(str(spill))}")
            dg.get_dagster_logger().debug(f"DuckDB spills to {spill}")
            yield conn


def compute_engine(memory_limit: str = ENGINE_MEMORY_LIMIT) -> ComputeEngine:
    """In-memory DuckDB for the layer transforms; a fresh database per step.

    The memory limit keeps an hour of a large fleet inside the process budget (the DWD sort
    spills to a private temporary folder past it, costing about 10% of the step); outputs are
    explicitly ordered, so insertion order need not be kept.
    """
    return ComputeEngine(
        database=":memory:",
        connection_config={"preserve_insertion_order": False, "memory_limit": memory_limit},
    )
