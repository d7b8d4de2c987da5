"""An hour of a fleet through the project and its floors and peers, each as its own process.

    python -m benchmarks.hour_benchmark                         # 3.7M, 11M, 33M rows; Parquet
    python -m benchmarks.hour_benchmark --formats parquet orc --runs 5
    python -m benchmarks.hour_benchmark --vehicles 10000 --peers pandas polars --consumers

For each size it generates the hour with the project's seeded generator (4 files, dirty; one
report every 10 s, so 10,000 vehicles are about 3.7M rows), then times, after one warm-up, each
method as a whole process (wall seconds, peak RSS from the kernel):

- **engine floor**: one bare DuckDB process reading the raw files and writing DWD and ADS with
  the project's SQL (``benchmarks/engine_floor.py``);
- **Dagster floor**: ``dagster asset materialize`` of two hourly assets that do nothing
  (``benchmarks/dagster_floor.py``), on the project's instance configuration;
- **project**: ``dagster asset materialize -m lakehouse.definitions --select
  '*ads_vehicle_hourly_stat' --partition <hour>``: ODS -> DWD -> ADS with the real resources,
  checks, atomic publishes and metadata;
- **peers** (optional): the same DWD and ADS in pandas and in polars.

The project and both floors run on the project as a user installs it (``pip install -e .``, no
test or dev extras), in a virtualenv the benchmark makes in its work folder on first use; a
development install runs them slower, since pandera imports whichever of pyspark, polars and
hypothesis it finds installed (``--python .venv/bin/python`` measures that install). Peers run
on the interpreter that runs the benchmark.

It prints medians, rows/s, peak RSS, the project's ratio to (engine floor + Dagster floor), its
microseconds per row, where its seconds go (each step, from the run's event log), and the
largest ADS difference between the methods; with ``--consumers``, what the masked share, the
fleet KPIs, DWS, the dashboard and the ML training set cost for the hour. It writes the figures
to ``--json`` and a plot of seconds and peak RSS against rows to ``--plot``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

from lakehouse.engines.local_connect import local_connect_server
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath

REPO = Path(__file__).resolve().parents[1]
HOUR = HourPartition.from_key("2025-09-17-23:00")
DEFAULT_FLEETS = (10_000, 30_000, 90_000)  # about 3.7M, 11M and 33M rows
ADS_NUMBERS = ("total_distance", "total_distance_haversine", "avg_speed")
# The project under each layer engine: DuckDB in process, Spark in local mode (a JVM per run),
# Spark through a Spark Connect server on this host (its JVM started once, before the runs).
PROJECTS = {"duckdb": "project", "spark": "project (spark)", "spark-connect": "project (connect)"}
# What each consumer is, as a CLI selection and its partition (the hour, or its day).
CONSUMERS = {
    "share (thirdparty, DWD+ADS)": ("group:share", HOUR.key),
    "fleet KPIs": ("ads_fleet_hourly_kpi", HOUR.key),
    "DWS (the day, 1 hour)": ("dws_vehicle_daily_stat", HOUR.dt),
    "dashboard": ("fleet_dashboard", None),
    "ML training set (the day)": ("ml_gps_training_set", HOUR.dt),
}


@dataclass
class Method:
    """Repeated whole-process runs of one method on one hour."""

    name: str
    rows: int
    fmt: str
    walls: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def rss(self) -> float:
        return max(self.rss_mib)


# Started from a small, fresh interpreter: a child forked from this (large) process would count
# this process's pages in its own peak RSS. Prints "<wall seconds> <peak KiB>" of the command.
LAUNCHER = """
import os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process, as the kernel accounts them."""
    with log.open("a") as out:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *cmd], env=env, cwd=REPO, stdout=out,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        out.write(done.stderr)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])} failed; see {log}")
    wall, kib = done.stderr.strip().splitlines()[-1].split()
    return float(wall), int(kib) / 1024


def step_seconds(home: Path) -> dict[str, float]:
    """Seconds per step of the newest run in ``home``, from its event log."""
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        starts: dict[str, float] = {}
        seconds: dict[str, float] = {}
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts[event.step_key] = record.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                seconds[event.step_key] = record.timestamp - starts[event.step_key]
    return seconds


def instance_home(folder: Path) -> Path:
    """A DAGSTER_HOME with the project's instance configuration, its storage inside."""
    home = folder / "dagster_home"
    if not home.exists():
        home.mkdir(parents=True)
        config = (REPO / "dagster.yaml").read_text().replace("data/dagster", f"{home}/data")
        (home / "dagster.yaml").write_text(config)
    return home


def generate(folder: Path, vehicles: int, fmt: str) -> tuple[int, Path]:
    raw = folder / "raw"
    report = write_sample_data(
        LakehouseStorage(raw_url=str(raw)).raw(create=True),
        start=datetime(2025, 9, 17, 23),
        vehicles=vehicles,
        interval_s=10,
        files_per_hour=4,
        file_format=fmt,
        dirty=True,
        seed=7,
    )
    return report.total_rows, raw


def product_python(work: Path, engines: list[str]) -> str:
    """The interpreter of a virtualenv holding the project as a user installs it.

    Editable (``pip install -e``): it always runs this checkout's code, with only the project's
    own dependencies beside it, and the ``spark`` extra when a Spark engine is measured.
    """
    spark = any(engine != "duckdb" for engine in engines)
    venv = work / ("product-venv-spark" if spark else "product-venv")
    python, installed = venv / "bin" / "python", venv / "installed"
    if not installed.exists():  # absent too when an earlier install was interrupted
        print(f"installing the project into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        target = f"{REPO}[spark]" if spark else str(REPO)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", target], check=True)
        installed.write_text(target + "\n")
    return str(python)


def bench(
    vehicles: int,
    fmt: str,
    runs: int,
    peers: list[str],
    consumers: bool,
    work: Path,
    engines: list[str],
    python: str,
) -> tuple[list[Method], dict[str, float]]:
    folder = work / f"{fmt}-{vehicles}"
    shutil.rmtree(folder, ignore_errors=True)
    rows, raw = generate(folder, vehicles, fmt)
    home = instance_home(folder)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LAKEHOUSE_RAW_URL": str(raw),
        "LAKEHOUSE_WAREHOUSE_URL": str(folder / "warehouse"),
        "LAKEHOUSE_CATALOG_PATH": str(folder / "catalog.duckdb"),
        "LAKEHOUSE_MASKING_SALT": os.environ.get("LAKEHOUSE_MASKING_SALT", "benchmark-salt"),
    }
    dagster = str(Path(python).with_name("dagster"))  # the venv's, whatever PATH says
    peer_args = ["--raw-hour-dir", str(raw / ODS_TABLE / HOUR.hive_path),
                 "--stat-hour", HOUR.stat_hour, "--out-dir"]  # fmt: skip
    materialize = [dagster, "asset", "materialize", "--partition", HOUR.key, "-m"]
    engine = [python, "-m", "benchmarks.engine_floor", *peer_args, str(folder / "engine")]
    project = [*materialize, "lakehouse.definitions", "--select", f"*{ADS_TABLE}"]
    commands = {
        "engine floor": (engine, env),
        "dagster floor": ([*materialize, "benchmarks.dagster_floor", "--select", "*"], env),
    }
    with contextlib.ExitStack() as servers:
        for name in engines:
            commands[PROJECTS[name]] = (project, engine_env(env, name, folder, servers))
        for peer in peers:
            commands[peer] = ([sys.executable, "-m", f"benchmarks.baseline_{peer}", *peer_args,
                               str(folder / peer)], env)  # fmt: skip
        # Interleaved (A B C A B C ...) so drift in the machine's speed hits every method alike.
        measured = {name: Method(name, rows, fmt) for name in commands}
        for attempt in range(runs + 1):
            for name, (cmd, cmd_env) in commands.items():
                wall, rss = timed(cmd, cmd_env, folder / f"{name.replace(' ', '_')}.log")
                if attempt == 0:
                    continue  # warm-up: file cache, imports, instance storage
                measured[name].walls.append(wall)
                measured[name].rss_mib.append(rss)
                if name in PROJECTS.values():
                    for step, seconds in step_seconds(home).items():
                        measured[name].steps.setdefault(step, []).append(seconds)
    methods = list(measured.values())
    for method in methods:
        print(f"  {fmt:<8} {method.name:<14} {rows:>12,} rows  median {method.wall:6.2f} s  "
              f"peak {method.rss:7.0f} MiB", flush=True)  # fmt: skip
    costs = measure_consumers(dagster, env, home, folder) if consumers else {}
    check_parity(folder, peers, engines)
    return methods, costs


def engine_env(
    env: dict[str, str], engine: str, folder: Path, servers: contextlib.ExitStack
) -> dict[str, str]:
    """The project's environment for one layer engine; each engine has its own warehouse."""
    if engine == "duckdb":
        return env
    spark = {
        **env,
        "LAKEHOUSE_ENGINE": "spark",
        "LAKEHOUSE_WAREHOUSE_URL": str(folder / f"warehouse-{engine}"),
        "LAKEHOUSE_CATALOG_PATH": str(folder / f"catalog-{engine}.duckdb"),
    }
    if engine == "spark-connect":  # one server for every run: its JVM starts once
        log = folder / "spark-connect-server.log"
        spark["SPARK_REMOTE"] = servers.enter_context(local_connect_server(log))
    return spark


def measure_consumers(
    dagster: str, env: dict[str, str], home: Path, folder: Path
) -> dict[str, float]:
    """Step seconds of each consumer of the hour, once the layers are published."""
    costs = {}
    for label, (selection, partition) in CONSUMERS.items():
        cmd = [dagster, "asset", "materialize", "-m", "lakehouse.definitions", "--select",
               selection]  # fmt: skip
        if partition:
            cmd += ["--partition", partition]
        timed(cmd, env, folder / "consumers.log")
        costs[label] = sum(step_seconds(home).values())
        print(f"    {label:<28} {costs[label]:6.2f} s of steps", flush=True)
    return costs


def check_parity(folder: Path, peers: list[str], engines: list[str]) -> None:
    """Every method computes the same ADS numbers (up to float summation order)."""
    warehouses = [folder / ("warehouse" if e == "duckdb" else f"warehouse-{e}") for e in engines]
    project, *other_projects = (w / partition_relpath(ADS_TABLE, HOUR) for w in warehouses)
    others = [folder / "engine" / "ads.parquet", *(folder / p / "ads.parquet" for p in peers),
              *other_projects]  # fmt: skip
    reference = {r["vin"]: r for r in pq.read_table(project).to_pylist()}
    worst = 0.0
    for path in others:
        rows = {r["vin"]: r for r in pq.read_table(path).to_pylist()}
        if set(rows) != set(reference):
            sys.exit(f"{path} has other vehicles than the project's ADS")
        for vin, row in rows.items():
            worst = max(worst, *(abs(row[c] - reference[vin][c]) for c in ADS_NUMBERS))
    print(f"    ADS max |difference| between methods: {worst:.2e}", flush=True)


def report(results: list[Method]) -> dict:
    """The summary table, printed, and as data."""
    by_key: dict[tuple[str, int], dict[str, Method]] = {}
    for m in results:
        by_key.setdefault((m.fmt, m.rows), {})[m.name] = m
    lines = []
    header = (f"{'format':<8} {'rows':>12} {'method':<14} {'wall s':>7} {'rows/s':>12} "
              f"{'peak MiB':>9} {'x floors':>8}")  # fmt: skip
    print("\n" + header + "\n" + "-" * len(header))
    for (fmt, rows), methods in sorted(by_key.items()):
        floors = methods["engine floor"].wall + methods["dagster floor"].wall
        for m in methods.values():
            ratio = m.wall / floors if m.name == "project" else float("nan")
            print(f"{fmt:<8} {rows:>12,} {m.name:<14} {m.wall:>7.2f} {rows / m.wall:>12,.0f} "
                  f"{m.rss:>9.0f} {ratio:>8.2f}")  # fmt: skip
        project = methods["project"]
        steps = ", ".join(f"{s} {statistics.median(v):.2f} s" for s, v in project.steps.items())
        print(f"{'':<8} {'':>12} project steps: {steps}")
        lines.append({
            "format": fmt, "rows": rows, "floors_s": floors,
            "project_s": project.wall, "ratio": project.wall / floors,
            "us_per_row": 1e6 * project.wall / rows,
            "us_per_row_of_work": 1e6 * (project.wall - methods["dagster floor"].wall) / rows,
            "methods": {n: {"wall_s": m.wall, "peak_mib": m.rss} for n, m in methods.items()},
            "steps": {s: statistics.median(v) for s, v in project.steps.items()},
        })  # fmt: skip
    return {"results": lines}


def plot(summary: dict, path: Path) -> None:
    """Seconds and peak RSS against rows, one line per method and format."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (time_ax, rss_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    series: dict[str, list[tuple[int, float, float]]] = {}
    for line in summary["results"]:
        for name, m in line["methods"].items():
            series.setdefault(f"{name} ({line['format']})", []).append(
                (line["rows"], m["wall_s"], m["peak_mib"])
            )
    for label, points in sorted(series.items()):
        points.sort()
        xs = [p[0] / 1e6 for p in points]
        time_ax.plot(xs, [p[1] for p in points], marker="o", label=label)
        rss_ax.plot(xs, [p[2] / 1024 for p in points], marker="o", label=label)
    time_ax.set(title="Wall time of one hour (whole process)", xlabel="rows in the hour (millions)",
                ylabel="seconds")  # fmt: skip
    rss_ax.set(title="Peak memory of the process", xlabel="rows in the hour (millions)",
               ylabel="GiB")  # fmt: skip
    for ax in (time_ax, rss_ax):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    time_ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vehicles", type=int, nargs="+", default=list(DEFAULT_FLEETS))
    parser.add_argument("--formats", nargs="+", default=["parquet"], choices=["parquet", "orc"])
    parser.add_argument("--runs", type=int, default=3, help="measured runs after one warm-up")
    parser.add_argument("--peers", nargs="*", default=[], choices=["pandas", "polars"])
    parser.add_argument("--consumers", action="store_true", help="also time the consumers")
    parser.add_argument("--engines", nargs="+", default=["duckdb"], choices=list(PROJECTS),
                        help="layer engines to run the project on")  # fmt: skip
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "lakehouse-bench"))
    parser.add_argument("--python", default=None, help="interpreter for the project and the "
                        "floors (default: a product install made in the work folder)")  # fmt: skip
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--plot", default=None, help="write the plot to this PNG file")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    python = args.python or product_python(work, args.engines)
    results, consumer_costs = [], {}
    for fmt in args.formats:
        for vehicles in args.vehicles:
            print(f"{vehicles:,} vehicles, one report every 10 s, {fmt}:", flush=True)
            methods, costs = bench(
                vehicles, fmt, args.runs, args.peers, args.consumers, work, args.engines, python
            )
            results += methods
            consumer_costs.update({f"{k} @ {methods[0].rows:,} rows": v for k, v in costs.items()})
    summary = report(results)
    summary["consumers_step_seconds"] = consumer_costs
    summary["raw"] = [asdict(m) for m in results]
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    if args.plot:
        plot(summary, Path(args.plot))


if __name__ == "__main__":
    main()
