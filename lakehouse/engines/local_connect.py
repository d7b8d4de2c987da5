"""A Spark Connect server on this host, started from pyspark's own distribution.

For trying the Spark engine against a real ``sc://`` endpoint without a cluster (tests, the
benchmark, a laptop): ``spark-submit`` of Spark's ``SparkConnectServer`` in local mode, bound to
127.0.0.1. A production server is started by the cluster's own tooling
(``sbin/start-connect-server.sh``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTED = "Spark Connect server started"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_connect_server(
    log: Path, master: str = "local[2]", timeout: float = 120.0
) -> Iterator[str]:
    """Start a server logging to ``log``; yields its ``sc://127.0.0.1:<port>`` URL."""
    import pyspark  # the spark extra

    home = Path(pyspark.__file__).parent
    port = _free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "PYSPARK_PYTHON": sys.executable}
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                str(home / "bin" / "spark-submit"),
                "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
                "--master", master,
                "--conf", f"spark.connect.grpc.binding.port={port}",
                "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
                "--conf", "spark.ui.enabled=false",
                "spark-internal",
            ],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while STARTED not in log.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Spark Connect server did not start:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # spark-submit and the JVM it started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
