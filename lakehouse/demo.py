"""``lakehouse-demo``: generate an hour of sample data, run the hourly job, show one vehicle's ADS.

This is the README's first command: a new user sees real ADS rows from real generated files on
the embedded default, and the run is recorded in the Dagster instance (``$DAGSTER_HOME``) so it
shows up in the UI afterwards.
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime

import dagster as dg

from lakehouse.definitions import defs
from lakehouse.partitions import HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data.generator import write_sample_data
from lakehouse.tables import ADS_TABLE

DEFAULT_HOUR = "2025-09-17-23:00"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse-demo", description=__doc__)
    parser.add_argument("--partition", default=DEFAULT_HOUR, help="hour key YYYY-MM-DD-HH:00")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--interval", type=int, default=10, help="seconds between reports")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clean", action="store_true", help="no dirt or junk files")
    parser.add_argument("--vin", default=None, help="vehicle to show (default: the first)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    partition = HourPartition.from_key(args.partition)
    storage = LakehouseStorage()
    report = write_sample_data(
        storage.raw(),
        start=datetime.strptime(partition.key, "%Y-%m-%d-%H:%M"),
        vehicles=args.vehicles,
        interval_s=args.interval,
        dirty=not args.clean,
        seed=args.seed,
    )
    print(
        f"generated {report.total_rows:,} raw rows in {len(report.files)} files for {partition.key}"
    )
    if "DAGSTER_HOME" in os.environ:
        instance = dg.DagsterInstance.get()
    else:
        print("DAGSTER_HOME is not set: this run will not be kept for the UI (see README)")
        instance = dg.DagsterInstance.ephemeral()
    with instance:
        result = defs.resolve_job_def("hourly_lakehouse_job").execute_in_process(
            partition_key=partition.key, instance=instance, raise_on_error=False
        )
    if not result.success:
        print(f"run {result.run_id} failed; see `dagster dev` or the log above")
        return 1
    print(f"run {result.run_id} materialized ODS, DWD and ADS for {partition.key}")
    with CatalogResource().get_connection() as conn:
        vin = args.vin or conn.sql(f"SELECT min(vin) FROM {ADS_TABLE}").fetchall()[0][0]
        rows = conn.sql(
            f"SELECT vin, stat_hour, round(total_distance, 2) AS total_distance_km, "
            f"round(total_distance_haversine, 2) AS haversine_km, "
            f"round(avg_speed, 2) AS avg_speed_kmh FROM {ADS_TABLE} "
            "WHERE vin = ? ORDER BY stat_hour DESC",
            params=[vin],
        )
        rows.show()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
