"""The compute engine of the layer transforms: in-process DuckDB, and Spark for the hourly layers.

DuckDB always stages, validates and reads; the hourly layers' SQL runs on the engine chosen by
``layers`` (run config) or ``LAKEHOUSE_ENGINE`` (the run worker's environment), ``duckdb`` by
default. Spark runs in local mode in the step's process unless ``spark_remote``
(``SPARK_REMOTE``) names a Spark Connect server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from lakehouse.engines.session import ENGINES, DuckDBLayers, LayerSession
from lakehouse.resources.spill import connection_spill_dir, process_spill_dir
from lakehouse.sql_text import quote_literal

ENGINE_MEMORY_LIMIT = "1GB"


class ComputeEngine(DuckDBResource):
    """In-memory DuckDB whose connections spill to a private folder of their own.

    The folder is made when a step connects, not when the code loads, so it lives in the
    process that runs the step (see ``lakehouse.resources.spill``).
    """

    layers: str | None = Field(
        default=None,
        description="Engine of the hourly layers' SQL: duckdb or spark (unset: "
        "$LAKEHOUSE_ENGINE, else duckdb).",
    )
    spark_master: str = Field(
        default="local[2]", description="Spark master for local mode (no spark_remote)."
    )
    spark_remote: str | None = Field(
        default=None,
        description="Spark Connect URL, sc://host:port (unset: $SPARK_REMOTE, else local mode).",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark settings, e.g. spark.driver.memory."
    )

    def layer_engine(self) -> str:
        """``duckdb`` or ``spark``, as configured; anything else is refused by name."""
        name = (self.layers or os.environ.get("LAKEHOUSE_ENGINE") or "duckdb").strip().lower()
        if name not in ENGINES:
            raise ValueError(
                f"unknown layer engine {name!r} (LAKEHOUSE_ENGINE or the engine resource's "
                f"'layers'); choose one of {', '.join(ENGINES)}"
            )
        return name

    @contextmanager
    def layer_session(self, con: duckdb.DuckDBPyConnection) -> Iterator[LayerSession]:
        """The chosen engine for one step; ``con`` stages what it computes."""
        if self.layer_engine() == "duckdb":
            yield DuckDBLayers(con)
            return
        from lakehouse.engines.spark import spark_layers  # pyspark only when chosen

        remote = self.spark_remote or os.environ.get("SPARK_REMOTE") or None
        with spark_layers(
            self.spark_master, remote, self.spark_conf, process_spill_dir()
        ) as session:
            yield session

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with connection_spill_dir() as spill, super().get_connection() as conn:
            conn.execute(f"SET temp_directory = {quote_literal(str(spill))}")
            dg.get_dagster_logger().debug(f"DuckDB spills to {spill}")
            yield conn


def compute_engine(memory_limit: str = ENGINE_MEMORY_LIMIT, **settings: object) -> ComputeEngine:
    """In-memory DuckDB for the layer transforms; a fresh database per step.

    The memory limit keeps an hour of a large fleet inside the process budget (the DWD sort
    spills to a private temporary folder past it, costing about 10% of the step); outputs are
    explicitly ordered, so insertion order need not be kept. ``settings`` are the other fields
    (``layers="spark"``, ``spark_conf``...).
    """
    return ComputeEngine(
        database=":memory:",
        connection_config={"preserve_insertion_order": False, "memory_limit": memory_limit},
        **settings,
    )
