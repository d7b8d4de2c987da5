"""The layer SQL on Spark: local mode in the step's process, or a cluster via Spark Connect.

Spark reads the partitions the step has fetched (local files) and writes each result as
Parquet parts into the step's private work folder; DuckDB then stages those parts into the one
published file (same writer, options and order as a DuckDB-computed hour). The session's SQL
semantics are pinned to DuckDB's: UTC, timestamps without time zone, the strict (non-legacy)
datetime parser, and non-ANSI arithmetic (a division by zero is NULL in both engines).

A Spark Connect server must see the step's files: run it on the same host or give both the
same mount. ``pyspark`` is imported here only, so the DuckDB default never needs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot

from lakehouse.engines.spark_sql import to_spark
from lakehouse.sql_text import quote_literal

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Pinned on every session (also one made elsewhere in the process): the results depend on them.
SEMANTICS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
# Defaults for a local-mode JVM started by the step (a cluster brings its own).
LOCAL_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.driver.memory": "4g",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


class SparkUnavailable(RuntimeError):
    """The Spark engine was chosen but pyspark (the ``spark`` extra) is not installed."""


def spark_session(
    master: str, remote: str | None, conf: Mapping[str, str], local_dir: Path
) -> SparkSession:
    """The process's Spark session: local mode on ``master``, or Spark Connect at ``remote``."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as missing:
        raise SparkUnavailable(
            "LAKEHOUSE_ENGINE=spark needs pyspark: pip install -e '.[spark]'"
        ) from missing
    builder = SparkSession.builder.appName("lakehouse-hourly-layers")
    if remote:
        builder = builder.remote(remote)
        settings = {**SEMANTICS, **conf}
    else:
        builder = builder.master(master)
        settings = {**LOCAL_DEFAULTS, "spark.local.dir": str(local_dir), **SEMANTICS, **conf}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    for key, value in SEMANTICS.items():  # a session that already existed keeps its own
        session.conf.set(key, value)
    return session


class SparkLayers:
    """The layer SQL compiled to Spark SQL; results land in a private work folder."""

    name = "spark"

    def __init__(self, spark: SparkSession, workdir: Path):
        self.spark, self.workdir = spark, workdir
        self._kept: dict[str, DataFrame] = {}

    def register(self, view: str, parquet_path: str) -> None:
        self.spark.read.parquet(parquet_path).createOrReplaceTempView(view)

    def define(self, view: str, sql: str) -> None:
        # Kept: recomputing the rows for each reader costs Spark a whole job each time.
        frame = self.spark.sql(to_spark(sql)).persist()
        frame.count()  # computed now, once, for every reader of the view
        frame.createOrReplaceTempView(view)
        self._kept[view] = frame

    def drop(self, view: str) -> None:
        self.spark.catalog.dropTempView(view)
        frame = self._kept.pop(view, None)
        if frame is not None:
            frame.unpersist()

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(row) for row in self.spark.sql(to_spark(sql)).collect()]

    def result(self, sql: str) -> str:
        folder = self.workdir / uuid.uuid4().hex
        self.spark.sql(to_spark(sql)).write.parquet(str(folder))
        # Part files carry no order between them: the query's own ORDER BY is applied again.
        order = sqlglot.parse_one(sql, read="duckdb").args.get("order")
        order_by = f" {order.sql(dialect='duckdb')}" if order is not None else ""
        parts = quote_literal(str(folder / "*.parquet"))
        return f"SELECT * FROM read_parquet({parts}){order_by}"

    def close(self) -> None:
        for view in list(self._kept):
            self.drop(view)


@contextlib.contextmanager
def spark_layers(
    master: str, remote: str | None, conf: Mapping[str, str], parent: Path
) -> Iterator[SparkLayers]:
    """A Spark layer session whose results (and local-mode spill) live under ``parent``.

    The results' folder is the step's; the spill folder is the local JVM's, which outlives the
    step (one session per process), so it is not removed with the results.
    """
    local_dir = parent / "spark-local"
    os.makedirs(local_dir, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="spark-", dir=parent))
    layers = SparkLayers(spark_session(master, remote, conf, local_dir), workdir)
    try:
        yield layers
    finally:
        with contextlib.suppress(Exception):  # a dead session must not hide the step's error
            layers.close()
        shutil.rmtree(workdir, ignore_errors=True)
