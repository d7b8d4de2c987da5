"""Running the layers on both engines and comparing what they published."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq

from lakehouse_tests.conftest import free_port, wait_until
from lakehouse_tests.reference import _canon

SPARK_HOME = Path(__import__("pyspark").__file__).parent
TOLERANCE = 1e-9


def canonical_rows(rows: list[dict]) -> list[tuple]:
    """Rows as sortable tuples: NaN equal to NaN, -0.0 to 0.0 (as SQL's DISTINCT has them)."""
    return sorted(
        (tuple(repr(_canon(v)) if isinstance(v, float) else repr(v) for v in row.values()))
        for row in rows
    )


def assert_rows_close(left: list[dict], right: list[dict], what: str) -> None:
    """Same rows in the same order; floats within ``TOLERANCE`` (relative or absolute)."""
    assert len(left) == len(right), f"{what}: {len(left)} rows vs {len(right)}"
    for index, (a, b) in enumerate(zip(left, right, strict=True)):
        assert a.keys() == b.keys(), what
        for column, x in a.items():
            y = b[column]
            if isinstance(x, float) and isinstance(y, float):
                same = (math.isnan(x) and math.isnan(y)) or math.isclose(
                    x, y, rel_tol=TOLERANCE, abs_tol=TOLERANCE
                )
                assert same, f"{what} row {index} {column}: {x!r} vs {y!r}"
            else:
                assert x == y, f"{what} row {index} {column}: {x!r} vs {y!r}"


def published_files(warehouse: Path) -> dict[str, Path]:
    """Every published file under the warehouse, by its path relative to it."""
    return {
        str(p.relative_to(warehouse)): p
        for p in sorted(warehouse.rglob("*"))
        if p.is_file() and "_staging" not in p.parts
    }


def parquet_shape(path: Path) -> tuple:
    """What a reader sees of a file besides its values: schema, row groups, writer."""
    meta = pq.read_metadata(path)
    return (pq.read_schema(path), meta.num_rows, meta.num_row_groups, meta.created_by)


@contextmanager
def spark_connect_server(log: Path) -> Iterator[str]:
    """A real Spark Connect server (pyspark's own ``spark-submit``) on 127.0.0.1; its URL."""
    port = free_port()
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "PYSPARK_PYTHON": sys.executable}
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                str(SPARK_HOME / "bin" / "spark-submit"),
                "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
                "--master", "local[2]",
                "--conf", f"spark.connect.grpc.binding.port={port}",
                "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
                "--conf", "spark.ui.enabled=false",
                "spark-internal",
            ],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: "Spark Connect server started" in log.read_text() or server.poll() is not None,
            timeout=120,
            what="the Spark Connect server to start",
            interval=0.5,
        )
        assert server.poll() is None, log.read_text()[-3000:]
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # spark-submit and the JVM it started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
