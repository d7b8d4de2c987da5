"""``lakehouse demo``: a day of a small fleet through every layer, then where to look at it.

This is the README's first command. It generates a full day (24 arrival hours) of sample data,
runs the hourly job for each hour and the nightly job for the day (DWS, the fleet dashboard and,
when the ``ml`` extra and a masking salt are there, the training set and model), prints one
vehicle's daily and hourly figures, and says where to look. Runs are recorded in the Dagster
instance of ``$DAGSTER_HOME``, so they show in the UI afterwards. It never replaces raw files
that hold other data: it says which hours it wrote and which it found already there.
"""

from __future__ import annotations

import importlib.util
import os
import time
from datetime import datetime

import click
import dagster as dg

from lakehouse.governance.masking import SALT_ENV
from lakehouse.partitions import BadPartitionKey, DayPartition, HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data.generator import WouldOverwrite, write_sample_data
from lakehouse.tables import ADS_TABLE, DWS_TABLE

DEFAULT_DAY = "2025-09-17"
DASHBOARD_PNG = "_dashboards/fleet_dashboard.png"
# The runs' events all go to the instance (and the UI); the terminal gets a line per run.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@click.command(name="demo")
@click.option("--day", default=DEFAULT_DAY, show_default=True, help="UTC day YYYY-MM-DD.")
@click.option("--vehicles", type=click.IntRange(min=4), default=50, show_default=True)
@click.option("--interval", type=click.IntRange(1, 3600), default=30, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--clean", is_flag=True, help="No dirt or junk files.")
@click.option("--vin", default=None, help="Vehicle to show (default: the first).")
def command(
    day: str, vehicles: int, interval: int, seed: int, clean: bool, vin: str | None
) -> None:
    """Generate a day of sample data, run every layer on it, print one vehicle's figures."""
    from lakehouse.definitions import defs  # Dagster's import is paid only by this command
    from lakehouse.deployment.initialize import InitError, initialize_home

    try:
        the_day = DayPartition.from_key(day)
    except BadPartitionKey as exc:
        raise click.BadParameter(str(exc), param_hint="--day") from None
    if "DAGSTER_HOME" in os.environ:
        try:
            initialize_home(say=click.echo)  # what `lakehouse init` does; a no-op the 2nd time
        except InitError as exc:
            raise click.ClickException(str(exc)) from None
    began = time.perf_counter()
    storage = LakehouseStorage()
    raw = storage.raw(create=True)
    try:
        report = write_sample_data(
            raw,
            start=the_day.start,
            hours=24,
            vehicles=vehicles,
            interval_s=interval,
            dirty=not clean,
            seed=seed,
        )
    except WouldOverwrite as exc:
        raise click.ClickException(f"{exc} (the demo never replaces other data)") from None
    click.echo(
        f"raw data: {report.total_rows:,} rows in {len(report.files)} files for the 24 hours of "
        f"{the_day.key} under {raw.url}/ods_vehicle_gps_raw/dt={the_day.key}/ (files already "
        "there with the same bytes are left as they were)"
    )
    if "DAGSTER_HOME" in os.environ:
        instance = dg.DagsterInstance.get()
    else:
        click.echo("DAGSTER_HOME is not set: these runs will not be kept for the UI (see README)")
        instance = dg.DagsterInstance.ephemeral()
    with instance:
        _run_hours(defs, instance, sorted(report.rows_per_hour))
        _run_day(defs, instance, the_day)
    click.echo(f"done in {time.perf_counter() - began:.0f} s\n")
    _show_vehicle(the_day, vin)
    _where_to_look(storage, the_day)


def _run_hours(defs: dg.Definitions, instance: dg.DagsterInstance, hours: list[datetime]) -> None:
    job = defs.resolve_job_def("hourly_lakehouse_job")
    for start in hours:
        hour = HourPartition(start)
        result = job.execute_in_process(
            partition_key=hour.key, instance=instance, raise_on_error=False, run_config=QUIET
        )
        if not result.success:
            raise click.ClickException(f"run {result.run_id} for {hour.key} failed; see the log")
        quarantined = [
            e
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity.value == "WARN"
        ]
        note = " (a junk file quarantined, see the UI)" if quarantined else ""
        click.echo(f"  hour {hour.key}: ODS, DWD, ADS, fleet KPIs and shares published{note}")


def _run_day(defs: dg.Definitions, instance: dg.DagsterInstance, day: DayPartition) -> None:
    """The nightly job for the day, without the ML assets when they cannot run here."""
    job = defs.resolve_job_def("nightly_lakehouse_job")
    graph = defs.resolve_asset_graph()
    selection = [key for key in graph.get_all_asset_keys() if _nightly_member(graph, key)]
    skipped = [k for k in selection if graph.get(k).group_name == "ml" and not _ml_ready()]
    if skipped:
        click.echo(
            "  (skipping the ML training set and model: they need the `ml` extra and "
            f"${SALT_ENV}; see README)"
        )
    selection = [k for k in selection if k not in skipped]
    result = job.execute_in_process(
        partition_key=day.key,
        instance=instance,
        asset_selection=selection,
        raise_on_error=False,
        run_config=QUIET,
    )
    if not result.success:
        raise click.ClickException(f"nightly run {result.run_id} failed; see the log above")
    built = ", ".join(sorted(k.to_user_string() for k in selection))
    click.echo(f"  day {day.key}: {built}")


def _nightly_member(graph, key: dg.AssetKey) -> bool:
    from lakehouse.defs.dws.schedules import NIGHTLY_GROUPS

    return graph.get(key).group_name in NIGHTLY_GROUPS


def _ml_ready() -> bool:
    return bool(os.environ.get(SALT_ENV)) and importlib.util.find_spec("torch") is not None


def _show_vehicle(day: DayPartition, vin: str | None) -> None:
    with CatalogResource().connect_read_only() as conn:
        vin = (
            vin
            or conn.sql(
                f"SELECT min(vin) FROM {DWS_TABLE} WHERE stat_date = ?", params=[day.key]
            ).fetchall()[0][0]
        )
        click.echo(f"{vin} on {day.key} (dws_vehicle_daily_stat):")
        conn.sql(
            "SELECT stat_date, round(total_distance, 2) AS km, round(total_distance_haversine, 2)"
            " AS haversine_km, round(avg_speed, 1) AS avg_kmh, round(max_speed, 1) AS max_kmh,"
            f" active_hours, valid_points, invalid_points FROM {DWS_TABLE}"
            " WHERE vin = ? AND stat_date = ?",
            params=[vin, day.key],
        ).show()
        click.echo(f"{vin} hour by hour (ads_vehicle_hourly_stat):")
        conn.sql(
            "SELECT stat_hour, round(total_distance, 2) AS km, round(total_distance_haversine, 2)"
            f" AS haversine_km, round(avg_speed, 1) AS avg_kmh FROM {ADS_TABLE}"
            " WHERE vin = ? AND dt = ? ORDER BY stat_hour",
            params=[vin, day.key],
        ).show(max_rows=30)


def _where_to_look(storage: LakehouseStorage, day: DayPartition) -> None:
    warehouse = storage.warehouse()
    click.echo("Where to look:")
    click.echo(
        "  UI:   dagster dev  ->  http://127.0.0.1:3000  (Assets: fleet_dashboard shows the "
        "picture; every layer shows its checks, metadata and runs)"
    )
    if warehouse.exists(DASHBOARD_PNG):
        click.echo(f"  PNG:  {warehouse.display(warehouse.path(DASHBOARD_PNG))}")
    click.echo(
        f"  SQL:  lakehouse sql \"SELECT * FROM {DWS_TABLE} WHERE stat_date = '{day.key}' "
        'ORDER BY total_distance DESC LIMIT 5"'
    )
