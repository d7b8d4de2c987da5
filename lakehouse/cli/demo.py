"""``lakehouse demo``: generate an hour of sample data, run the hourly job, show one vehicle's ADS.

This is the README's first command: a new user sees real ADS rows from real generated files on
the embedded default, and the run is recorded in the Dagster instance (``$DAGSTER_HOME``) so it
shows up in the UI afterwards.
"""

from __future__ import annotations

import os

import click
import dagster as dg

from lakehouse.partitions import BadPartitionKey, HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data.generator import write_sample_data
from lakehouse.tables import ADS_TABLE

DEFAULT_HOUR = "2025-09-17-23:00"


@click.command(name="demo")
@click.option("--partition", default=DEFAULT_HOUR, show_default=True, help="Hour YYYY-MM-DD-HH:00.")
@click.option("--vehicles", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--interval", type=click.IntRange(1, 3600), default=10, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--clean", is_flag=True, help="No dirt or junk files.")
@click.option("--vin", default=None, help="Vehicle to show (default: the first).")
def command(
    partition: str, vehicles: int, interval: int, seed: int, clean: bool, vin: str | None
) -> None:
    """Generate sample data, run the hourly layers, print one vehicle's figures."""
    from lakehouse.definitions import defs  # Dagster's import is paid only by this command
    from lakehouse.deployment.initialize import InitError, initialize_home

    try:
        hour = HourPartition.from_key(partition)
    except BadPartitionKey as exc:
        raise click.BadParameter(str(exc), param_hint="--partition") from None
    if "DAGSTER_HOME" in os.environ:
        try:
            initialize_home(say=click.echo)  # what `lakehouse init` does; a no-op the 2nd time
        except InitError as exc:
            raise click.ClickException(str(exc)) from None
    storage = LakehouseStorage()
    report = write_sample_data(
        storage.raw(create=True),
        start=hour.start,
        vehicles=vehicles,
        interval_s=interval,
        dirty=not clean,
        seed=seed,
    )
    click.echo(
        f"generated {report.total_rows:,} raw rows in {len(report.files)} files for {hour.key}"
    )
    if "DAGSTER_HOME" in os.environ:
        instance = dg.DagsterInstance.get()
    else:
        click.echo("DAGSTER_HOME is not set: this run will not be kept for the UI (see README)")
        instance = dg.DagsterInstance.ephemeral()
    with instance:
        result = defs.resolve_job_def("hourly_lakehouse_job").execute_in_process(
            partition_key=hour.key, instance=instance, raise_on_error=False
        )
    if not result.success:
        raise click.ClickException(
            f"run {result.run_id} failed; see `dagster dev` or the log above"
        )
    click.echo(f"run {result.run_id} materialized ODS, DWD and ADS for {hour.key}")
    with CatalogResource().connect_read_only() as conn:
        vin = vin or conn.sql(f"SELECT min(vin) FROM {ADS_TABLE}").fetchall()[0][0]
        conn.sql(
            f"SELECT vin, stat_hour, round(total_distance, 2) AS total_distance_km, "
            f"round(total_distance_haversine, 2) AS haversine_km, "
            f"round(avg_speed, 2) AS avg_speed_kmh FROM {ADS_TABLE} "
            "WHERE vin = ? ORDER BY stat_hour DESC",
            params=[vin],
        ).show()
