"""The in-process DuckDB compute engine for the layer transforms."""

from __future__ import annotations

import os
import tempfile

from dagster_duckdb import DuckDBResource

ENGINE_MEMORY_LIMIT = "1GB"


def compute_engine(memory_limit: str = ENGINE_MEMORY_LIMIT) -> DuckDBResource:
    """In-memory DuckDB for the layer transforms; a fresh database per step.

    The memory limit keeps an hour of a large fleet inside the process budget (the DWD sort
    spills to a temporary folder past it, costing about 10% of the step); outputs are
    explicitly ordered, so insertion order need not be kept.
    """
    return DuckDBResource(
        database=":memory:",
        connection_config={
            "preserve_insertion_order": False,
            "memory_limit": memory_limit,
            "temp_directory": os.path.join(tempfile.gettempdir(), "lakehouse-duckdb-spill"),
        },
    )
