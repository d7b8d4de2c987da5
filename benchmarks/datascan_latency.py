"""From a raw hour landing to its ADS partition being readable, through the daemon.

    python -m benchmarks.datascan_latency                    # 3 hours, 1,000 vehicles, 5 s ticks
    python -m benchmarks.datascan_latency --vehicles 10000 --hours 3 --interval 10

What a user of the embedded default gets: ``dagster-daemon run`` on the project's instance
configuration (queued runs, each launched in a process of its own) with the DataScan sensor
ticking every ``--interval`` seconds. One recent arrival hour at a time, the generator's files
are written aside and moved into the raw zone (the moment the last one lands is the start); the
clock stops when the hour's ADS partition file appears. Each hour's latency is split into the
wait for the sensor (landing -> run created), the launch (created -> the run's process started)
and the run (started -> success), from the instance's run records; the target is latency <=
one interval + the run, the run being its process's start (launch) and its work. Dagster's
sensor daemon looks at its sensors every 5 s at most, so a tick can come up to 5 s past its
interval.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.hour_benchmark import instance_home
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath

REPO = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.1


@dataclass
class Landing:
    hour: str
    rows: int
    latency: float
    to_run: float  # landing -> run created by the sensor
    launch: float  # run created -> its process started
    run: float  # run started -> run succeeded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--interval", type=int, default=5, help="DataScan tick, seconds")
    parser.add_argument("--timeout", type=float, default=300.0, help="per hour, seconds")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lakehouse-latency-"))
    home = instance_home(work)
    raw, warehouse = work / "raw", work / "warehouse"
    (raw / ODS_TABLE).mkdir(parents=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LAKEHOUSE_RAW_URL": str(raw),
        "LAKEHOUSE_WAREHOUSE_URL": str(warehouse),
        "LAKEHOUSE_CATALOG_PATH": str(work / "catalog.duckdb"),
        "LAKEHOUSE_MASKING_SALT": "benchmark-salt",
        "LAKEHOUSE_DATASCAN_INTERVAL_SECONDS": str(args.interval),
    }
    daemon_bin = str(Path(sys.executable).with_name("dagster-daemon"))
    log = (work / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [daemon_bin, "run", "-m", "lakehouse.definitions"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    landings = []
    try:
        time.sleep(args.interval + 5)  # the daemon and its code server are up, a tick has run
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
        for back in range(args.hours, 0, -1):
            hour = HourPartition.from_key((now - timedelta(hours=back)).strftime("%Y-%m-%d-%H:00"))
            landings.append(_land(hour, args, raw, warehouse, work, home))
            print(_row(landings[-1], args.interval), flush=True)
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
    _summary(landings, args.interval)
    shutil.rmtree(work, ignore_errors=True)


def _land(
    hour: HourPartition,
    args: argparse.Namespace,
    raw: Path,
    warehouse: Path,
    work: Path,
    home: Path,
) -> Landing:
    """Write the hour aside, move it in, wait for its ADS file; the run's phases from records."""
    aside = work / "aside"
    shutil.rmtree(aside, ignore_errors=True)
    report = write_sample_data(
        LakehouseStorage(raw_url=str(aside)).raw(create=True), start=hour.start,
        vehicles=args.vehicles, interval_s=10, files_per_hour=4, dirty=False, seed=7,
    )  # fmt: skip
    target = raw / ODS_TABLE / hour.hive_path
    target.mkdir(parents=True)
    for source in sorted((aside / ODS_TABLE / hour.hive_path).iterdir()):
        os.replace(source, target / source.name)
    landed = time.time()
    ads = warehouse / partition_relpath(ADS_TABLE, hour)
    deadline = time.monotonic() + args.timeout
    while not ads.exists():
        if time.monotonic() > deadline:
            sys.exit(f"{hour.key}: no ADS after {args.timeout:.0f} s; see {work}/daemon.log")
        time.sleep(POLL_SECONDS)
    visible = time.time()
    created, started, ended = _run_times(home, hour.key)
    return Landing(
        hour.key, report.total_rows, visible - landed, created - landed, started - created,
        ended - started,
    )  # fmt: skip


def _run_times(home: Path, partition: str) -> tuple[float, float, float]:
    """Creation, start and end time of the hour's successful hourly run."""
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        for _ in range(100):  # the end is recorded just after the files appear
            records = instance.get_run_records(
                dg.RunsFilter(
                    tags={"dagster/partition": partition}, statuses=[dg.DagsterRunStatus.SUCCESS]
                )
            )
            if records:
                record = records[-1]  # the first run of the hour
                return record.create_timestamp.timestamp(), record.start_time, record.end_time
            time.sleep(0.2)
    raise RuntimeError(f"no successful run recorded for {partition}")


def _row(landing: Landing, interval: int) -> str:
    beyond = landing.latency - interval - landing.launch - landing.run
    return (
        f"{landing.hour}  {landing.rows:>10,} rows  landed -> ADS {landing.latency:6.1f} s  "
        f"(sensor {landing.to_run:4.1f} + launch {landing.launch:4.1f} + run {landing.run:5.1f}; "
        f"beyond interval + launch + run: {beyond:+.1f} s)"
    )


def _summary(landings: list[Landing], interval: int) -> None:
    if not landings:
        return
    latency = statistics.median(landing.latency for landing in landings)
    run = statistics.median(landing.launch + landing.run for landing in landings)
    within = sum(x.latency <= interval + x.launch + x.run for x in landings)
    print(
        f"median landed -> ADS {latency:.1f} s; interval {interval} s + median run (launch and "
        f"work) {run:.1f} s = {interval + run:.1f} s; {within} of {len(landings)} hours within "
        f"one interval + their run"
    )


if __name__ == "__main__":
    main()
