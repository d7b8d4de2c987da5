"""One hour of a fleet through three implementations, each its own process, side by side.

    python benchmarks/hour_benchmark.py                      # 1M, 3M and 11M rows, 3 runs each
    python benchmarks/hour_benchmark.py --vehicles 30000 --runs 5

For every size it generates the hour with the project's own seeded generator (Parquet, 4 files,
dirty), then runs after one warm-up: the bare DuckDB query (``baseline_duckdb.py``), the
hand-written pandas version (``baseline_pandas.py``), and the real Dagster materialisation of
ODS -> DWD -> ADS from the CLI. It prints median wall time, rows/s, peak RSS, the ratio to the
bare query, the materialisation's own time and validation share (from the run's event log), and
the largest difference between the three ADS results.
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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath

REPO = Path(__file__).resolve().parents[1]
HOUR = HourPartition.from_key("2025-09-17-23:00")
DEFAULT_FLEETS = (2750, 8300, 30000)  # about 1M, 3M and 11M rows at one report per 10 s
ADS_COLUMNS = ("total_distance", "total_distance_haversine", "avg_speed")
LAYERS = (ODS_TABLE, DWD_TABLE, ADS_TABLE)  # the layers only: shares are not part of the race


@dataclass
class Measured:
    """Repeated runs of one method on one hour."""

    method: str
    rows: int
    walls: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    materialise: list[float] = field(default_factory=list)
    validation: list[float] = field(default_factory=list)
    ads_path: Path | None = None

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)


def run_process(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one process and the children it waited for."""
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} failed ({proc.returncode}); see {log}")
    return wall, usage.ru_maxrss


def run_events(home: Path) -> tuple[float, float]:
    """(first step start -> run success, validation seconds) of the newest run in ``home``."""
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        starts, success, validation = [], [], 0.0
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts.append(record.timestamp)
            elif event.event_type == dg.DagsterEventType.RUN_SUCCESS:
                success.append(record.timestamp)
            elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                seconds = event.event_specific_data.metadata.get("validation_seconds")
                validation += seconds.value if seconds is not None else 0.0
    return success[-1] - min(starts), validation


def max_ads_difference(results: list[Measured]) -> float:
    """Largest absolute difference of any ADS number between the methods, joined on vin."""
    tables = [pq.read_table(r.ads_path).to_pandas().set_index("vin").sort_index() for r in results]
    first = tables[0]
    worst = 0.0
    for other in tables[1:]:
        if list(other.index) != list(first.index):
            return float("inf")
        for column in ADS_COLUMNS:
            worst = max(worst, float((first[column] - other[column]).abs().max()))
    return worst


def bench_fleet(vehicles: int, runs: int, work: Path) -> list[Measured]:
    size_dir = work / f"fleet-{vehicles}"
    shutil.rmtree(size_dir, ignore_errors=True)
    raw_url, warehouse_url = size_dir / "raw", size_dir / "warehouse"
    report = write_sample_data(
        LakehouseStorage(raw_url=str(raw_url)).raw(create=True),
        start=datetime(2025, 9, 17, 23),
        vehicles=vehicles,
        interval_s=10,
        files_per_hour=4,
        file_format="parquet",
        dirty=True,
        seed=7,
    )
    rows = report.total_rows
    hour_dir = raw_url / ODS_TABLE / HOUR.hive_path
    home = size_dir / "dagster_home"
    home.mkdir()
    config = (REPO / "dagster.yaml").read_text().replace("data/dagster", f"{home}/data")
    (home / "dagster.yaml").write_text(config)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LAKEHOUSE_RAW_URL": str(raw_url),
        "LAKEHOUSE_WAREHOUSE_URL": str(warehouse_url),
        "LAKEHOUSE_CATALOG_PATH": str(size_dir / "catalog.duckdb"),
    }
    baseline_args = ["--raw-hour-dir", str(hour_dir), "--stat-hour", HOUR.stat_hour, "--out"]
    dagster = shutil.which("dagster") or "dagster"
    methods = {
        "bare duckdb": [sys.executable, "-m", "benchmarks.baseline_duckdb", *baseline_args],
        "pandas": [sys.executable, "-m", "benchmarks.baseline_pandas", *baseline_args],
        "dagster": [
            *(dagster, "asset", "materialize", "-m", "lakehouse.definitions"),
            *("--select", ",".join(LAYERS), "--partition", HOUR.key),
        ],
    }
    results = []
    for method, cmd in methods.items():
        measured = Measured(method, rows)
        if method == "dagster":
            measured.ads_path = warehouse_url / partition_relpath(ADS_TABLE, HOUR)
        else:
            measured.ads_path = size_dir / f"ads-{method.replace(' ', '_')}.parquet"
            cmd = [*cmd, str(measured.ads_path)]
        for attempt in range(runs + 1):
            wall, rss = run_process(cmd, env, size_dir / f"{method.replace(' ', '_')}.log")
            if attempt == 0:
                continue  # warm-up: file cache, imports, instance storage
            measured.walls.append(wall)
            measured.rss_kib.append(rss)
            if method == "dagster":
                materialise, validation = run_events(home)
                measured.materialise.append(materialise)
                measured.validation.append(validation)
        results.append(measured)
        print(f"  {method:<12} {rows:>11,} rows  median {measured.wall:6.2f} s", flush=True)
    return results


def print_table(all_results: list[list[Measured]]) -> None:
    header = (
        f"{'method':<12} {'rows':>11} {'wall s':>7} {'rows/s':>11} {'peak RSS':>9} "
        f"{'x bare':>6} {'materialise s':>13} {'x bare':>6} {'validation':>10} "
        f"{'ADS max |diff|':>14}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for results in all_results:
        bare = results[0].wall
        diff = max_ads_difference(results)
        for m in results:
            rss = f"{max(m.rss_kib) / 1024 / 1024:.2f} GiB"
            if m.materialise:
                mat = statistics.median(m.materialise)
                share = statistics.median(
                    v / t for v, t in zip(m.validation, m.materialise, strict=True)
                )
                extra = f"{mat:>13.2f} {mat / bare:>6.2f} {share:>9.1%}"
            else:
                extra = f"{'':>13} {'':>6} {'':>10}"
            print(
                f"{m.method:<12} {m.rows:>11,} {m.wall:>7.2f} {m.rows / m.wall:>11,.0f} "
                f"{rss:>9} {m.wall / bare:>6.2f} {extra} {diff:>14.2e}"
            )
    dagster = [r[-1] for r in all_results]
    per_row = [statistics.median(m.materialise) / m.rows * 1e6 for m in dagster]
    spread = max(per_row) / min(per_row) - 1
    print(
        "\ndagster materialisation, microseconds per row: "
        + ", ".join(f"{m.rows:,} rows {p:.3f}" for m, p in zip(dagster, per_row, strict=True))
        + f" (spread {spread:.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vehicles", type=int, nargs="+", default=list(DEFAULT_FLEETS))
    parser.add_argument("--runs", type=int, default=3, help="measured runs after one warm-up")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "lakehouse-bench"))
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    all_results = []
    for vehicles in args.vehicles:
        print(f"fleet of {vehicles:,} vehicles, one report every 10 s:", flush=True)
        all_results.append(bench_fleet(vehicles, args.runs, work))
    print_table(all_results)


if __name__ == "__main__":
    main()
