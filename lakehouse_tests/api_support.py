"""The data service as users run it: a generated day, real jobs, keys, and `lakehouse serve`.

``build_day`` writes dirty sample hours and runs the real hourly job for some of them and the
DWS asset for the day, on one Dagster instance. ``ApiServer`` starts ``lakehouse serve --port N``
as a subprocess on 127.0.0.1 and waits for ``/healthz``. ``run_load`` drives a server from
concurrent clients (used by the load test and ``benchmarks/api_benchmark.py``).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx

from lakehouse.definitions import defs
from lakehouse.defs.dws.assets import dws_vehicle_daily_stat
from lakehouse.partitions import DayPartition, HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.engine import compute_engine
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.service.keys import KeyStore
from lakehouse_tests.conftest import LAKEHOUSE_CLI, free_port, subprocess_env

DAY = DayPartition.from_key("2025-09-17")
FIRST_HOUR = datetime(2025, 9, 17, 20)


@dataclass
class BuiltDay:
    """A project home with published hours (and the resources that published them)."""

    home: Path
    storage: LakehouseStorage
    catalog: CatalogResource
    instance: dg.DagsterInstance
    hours: list[HourPartition] = field(default_factory=list)

    @property
    def resources(self) -> dict:
        return {"storage": self.storage, "engine": compute_engine(), "catalog": self.catalog}

    def publish_hour(self, hour: HourPartition) -> None:
        """Run the real hourly job for ``hour`` (its raw files are there already)."""
        result = defs.resolve_job_def("hourly_lakehouse_job").execute_in_process(
            partition_key=hour.key, resources=self.resources, instance=self.instance
        )
        assert result.success
        self.hours.append(hour)

    def publish_day(self) -> None:
        """The day's DWS, as the nightly job builds it."""
        result = dg.materialize(
            [dws_vehicle_daily_stat],
            partition_key=DAY.key,
            resources=self.resources,
            instance=self.instance,
        )
        assert result.success


def build_day(
    home: Path,
    storage: LakehouseStorage,
    *,
    raw_hours: int,
    published_hours: int,
    vehicles: int,
    interval_s: int = 300,
) -> BuiltDay:
    """Dirty raw files for ``raw_hours`` hours from 20:00; the first ``published_hours`` of them
    through the hourly job, then DWS for the day."""
    write_sample_data(
        storage.raw(create=True),
        start=FIRST_HOUR,
        hours=raw_hours,
        vehicles=vehicles,
        interval_s=interval_s,
        dirty=True,
    )
    day = BuiltDay(
        home,
        storage,
        CatalogResource(path=str(home / "data" / "catalog.duckdb")),
        dg.DagsterInstance.ephemeral(),
    )
    for i in range(published_hours):
        day.publish_hour(hour_at(i))
    day.publish_day()
    return day


def hour_at(i: int) -> HourPartition:
    return HourPartition(FIRST_HOUR + timedelta(hours=i))


def iso(hour: HourPartition) -> str:
    """The API's hour parameter for a partition: YYYY-MM-DDTHH."""
    return hour.start.strftime("%Y-%m-%dT%H")


def new_key(keys_path: Path, role: str, name: str, **options) -> str:
    """A key made with the same code `lakehouse api-key create` runs (in process: faster)."""
    _, key = KeyStore(keys_path).create(role, name, **options)
    return key


class ApiServer:
    """``lakehouse serve`` on a free loopback port, as a user starts it."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("a")
        self.proc = subprocess.Popen(
            [LAKEHOUSE_CLI, "serve", "--port", str(self.port)],
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = self.log()[-3000:]
                self.stop()
                raise RuntimeError(f"the server did not start:\n{output}")
            time.sleep(0.1)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # as Ctrl-C: uvicorn shuts down cleanly
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
                self.proc.wait(timeout=10)
        self._log.close()


@contextmanager
def api_server(home: Path, log_path: Path, **env: str) -> Iterator[ApiServer]:
    """A server over the project home ``home`` (data/..., its own keys file by default)."""
    environment = subprocess_env(LAKEHOUSE_HOME=str(home), **env)
    server = ApiServer(environment, log_path, cwd=home)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class LoadResult:
    latencies_ms: list[float]
    statuses: dict[int, int]
    seconds: float

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def summary(self) -> str:
        return (
            f"{self.requests} requests in {self.seconds:.2f} s: {self.requests / self.seconds:.0f}"
            f" req/s, p50 {self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms, "
            f"mean {statistics.fmean(self.latencies_ms):.1f} ms, statuses {self.statuses}"
        )


def run_load(
    url: str, key: str, paths: Sequence[str], total: int, clients: int,
    check: Callable[[httpx.Response], None] | None = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:  # fmt: skip
    """``total`` GETs cycling over ``paths`` from ``clients`` threads, one connection each."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(total))
    failures: list[BaseException] = []

    def client() -> None:
        sent = {"Authorization": f"Bearer {key}", **(headers or {})}
        with httpx.Client(base_url=url, headers=sent, timeout=30) as http:
            for i in counter:  # shared: each request number is taken once
                started = time.perf_counter()
                response = http.get(paths[i % len(paths)])
                elapsed = (time.perf_counter() - started) * 1000
                try:
                    if check:
                        check(response)
                except BaseException as exc:
                    failures.append(exc)
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = LoadResult(latencies, statuses, time.perf_counter() - began)
    if failures:
        raise AssertionError(f"{len(failures)} bad responses, first: {failures[0]}")
    return result
