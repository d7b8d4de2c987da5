"""How far one machine goes: rows/s per core, memory per hour, parallel hourly runs.

    python -m benchmarks.scaling_benchmark                       # ~3.7M and ~11M-row hours
    python -m benchmarks.scaling_benchmark --vehicles 10300 --runs 3 --parallel 1 2 4

For each fleet size it generates one arrival hour with the project's generator (as
``hour_benchmark.py`` does: Parquet, 4 files, dirty, seed 7, a report every 10 s) and runs,
each as its own process after one warm-up: the bare DuckDB query (DWD + ADS) and the Dagster
materialisation of ODS -> DWD -> ADS (``dagster asset materialize``), once pinned to one core
(``taskset -c 0``) and once on every core. Then, for the smallest size, it starts 1, 2, 4, ...
materialisations of distinct copies of that hour at the same time (separate instances, as
separate run workers would be) and reports the makespan and the total rows/s, which shows how
many hourly runs at once the machine can take before they only queue for CPU. It also reports
the bytes per row of each published layer, for sizing storage. Medians of ``--runs``.
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
from pathlib import Path

from benchmarks.hour_benchmark import HOUR, REPO, generate, instance_home, timed
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath

TASKSET = shutil.which("taskset")
LAYERS = (ODS_TABLE, DWD_TABLE, ADS_TABLE)


@dataclass
class Hour:
    """One generated arrival hour and a Dagster home of its own."""

    rows: int
    raw: Path
    warehouse: Path
    home: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "LAKEHOUSE_RAW_URL": str(self.raw),
            "LAKEHOUSE_WAREHOUSE_URL": str(self.warehouse),
            "LAKEHOUSE_CATALOG_PATH": str(self.home / "catalog.duckdb"),
        }


def make_hour(vehicles: int, folder: Path, copy_of: Hour | None = None) -> Hour:
    """Generate the hour (or copy another's raw files) into ``folder``, with its own instance."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if copy_of is not None:
        raw = folder / "raw"
        shutil.copytree(copy_of.raw, raw)
        rows = copy_of.rows
    else:
        rows, raw = generate(folder, vehicles, "parquet")
    home = instance_home(folder)
    return Hour(rows, raw, folder / "warehouse", home)


def bare_command(hour: Hour, out: Path) -> list[str]:
    """The engine floor of ``hour_benchmark``: raw files to DWD and ADS, bare DuckDB."""
    hour_dir = hour.raw / ODS_TABLE / HOUR.hive_path
    return [sys.executable, "-m", "benchmarks.engine_floor", "--raw-hour-dir", str(hour_dir),
            "--stat-hour", HOUR.stat_hour, "--out-dir", str(out)]  # fmt: skip


def dagster_command() -> list[str]:
    dagster = str(Path(sys.executable).with_name("dagster"))  # the venv's, whatever PATH says
    return [dagster, "asset", "materialize", "-m", "lakehouse.definitions",
            "--select", ",".join(LAYERS), "--partition", HOUR.key]  # fmt: skip


def pinned(cmd: list[str], cores: str | None) -> list[str]:
    return [TASKSET, "-c", cores, *cmd] if cores and TASKSET else cmd


def measure(cmd: list[str], env: dict[str, str], log: Path, runs: int) -> tuple[float, float]:
    """Median wall seconds and largest peak RSS (GiB) of ``runs`` runs after a warm-up."""
    walls, rss = [], []
    for attempt in range(runs + 1):
        wall, mib = timed(cmd, env, log)
        if attempt:
            walls.append(wall)
            rss.append(mib / 1024)
    return statistics.median(walls), max(rss)


def parallel(hours: list[Hour], runs: int, log_dir: Path) -> float:
    """Median makespan of materialising all ``hours`` at once, one process each."""
    makespans = []
    for attempt in range(runs + 1):
        started = time.perf_counter()
        procs, logs = [], []
        for i, hour in enumerate(hours):
            logs.append((log_dir / f"parallel-{i}.log").open("w"))
            procs.append(
                subprocess.Popen(
                    dagster_command(),
                    env=hour.env(),
                    cwd=REPO,
                    stdout=logs[-1],
                    stderr=subprocess.STDOUT,
                )
            )
        codes = [p.wait() for p in procs]
        for log in logs:
            log.close()
        if any(codes):
            sys.exit(f"a parallel materialisation failed; see {log_dir}")
        if attempt:
            makespans.append(time.perf_counter() - started)
    return statistics.median(makespans)


def layer_bytes_per_row(hour: Hour) -> dict[str, float]:
    return {
        table: (hour.warehouse / partition_relpath(table, HOUR)).stat().st_size / hour.rows
        for table in LAYERS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vehicles", type=int, nargs="+", default=[10300, 30000])
    parser.add_argument("--runs", type=int, default=3, help="measured runs after one warm-up")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "lakehouse-scale"))
    args = parser.parse_args()
    work = Path(args.workdir)
    cores = os.cpu_count() or 1
    print(f"{cores} cores; {'taskset' if TASKSET else 'no taskset: 1-core rows skipped'}")
    rows_out = []
    hours = {}
    for vehicles in args.vehicles:
        hour = hours[vehicles] = make_hour(vehicles, work / f"fleet-{vehicles}")
        print(f"fleet of {vehicles:,}: {hour.rows:,} rows", flush=True)
        for label, pin in (("1 core", "0"), (f"{cores} cores", None)):
            if pin and not TASKSET:
                continue
            bare = measure(pinned(bare_command(hour, work / "engine-floor"), pin), hour.env(),
                           work / "bare.log", args.runs)  # fmt: skip
            full = measure(pinned(dagster_command(), pin), hour.env(), work / "dagster.log",
                           args.runs)  # fmt: skip
            rows_out.append((hour.rows, label, bare, full))
            print(f"  {label}: bare {bare[0]:.2f} s, dagster {full[0]:.2f} s", flush=True)
        sizes = ", ".join(f"{t} {b:.1f}" for t, b in layer_bytes_per_row(hour).items())
        print(f"  bytes per row: {sizes}")

    print(f"\n{'rows':>11} {'cores':<8} {'bare s':>7} {'bare rows/s':>12} {'RSS GiB':>7} "
          f"{'dagster s':>9} {'dagster rows/s':>14} {'RSS GiB':>7}")  # fmt: skip
    for rows, label, (bare_s, bare_rss), (full_s, full_rss) in rows_out:
        print(f"{rows:>11,} {label:<8} {bare_s:>7.2f} {rows / bare_s:>12,.0f} {bare_rss:>7.2f} "
              f"{full_s:>9.2f} {rows / full_s:>14,.0f} {full_rss:>7.2f}")  # fmt: skip

    smallest = hours[min(args.vehicles)]
    copies = [smallest] + [
        make_hour(0, work / f"copy-{i}", copy_of=smallest) for i in range(1, max(args.parallel))
    ]
    print(f"\nparallel materialisations of {smallest.rows:,}-row hours (all cores):")
    print(f"{'at once':>7} {'makespan s':>10} {'s per hour':>10} {'total rows/s':>12}")
    for count in args.parallel:
        makespan = parallel(copies[:count], args.runs, work)
        print(f"{count:>7} {makespan:>10.2f} {makespan / count:>10.2f} "
              f"{count * smallest.rows / makespan:>12,.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
