"""``lakehouse generate``: fill the raw zone with sample GPS files from the command line."""

from __future__ import annotations

import time
from datetime import datetime

import click

from lakehouse.resources.storage import LakehouseStorage, StorageConfigError
from lakehouse.sample_data.generator import (
    FILE_FORMATS,
    RAW_DATASET,
    GenerationReport,
    WouldOverwrite,
    validate_start,
    write_sample_data,
)

DEFAULT_START = "2025-09-17T23:00"


class HourParam(click.ParamType):
    """A naive UTC ISO datetime on the hour, e.g. ``2025-09-17T23:00``."""

    name = "YYYY-MM-DDTHH:00"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, datetime):
            return value
        try:
            start = datetime.fromisoformat(str(value))
            validate_start(start)
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)
        return start


def summarize(report: GenerationReport, url: str, seconds: float) -> str:
    """One paragraph a human can check at a glance."""
    n_parquet = sum(f.endswith(".parquet") for f in report.files)
    n_orc = sum(f.endswith(".orc") for f in report.files)
    text = (
        f"Wrote {len(report.files)} data files ({n_parquet} parquet, {n_orc} orc) with "
        f"{report.total_rows:,} rows over {len(report.rows_per_hour)} hour(s) to "
        f"{url.rstrip('/')}/{RAW_DATASET} in {seconds:.1f} s."
    )
    if report.dirt:
        dirt = ", ".join(f"{kind} {count:,}" for kind, count in report.dirt.items())
        text += f" Dirt: {dirt}; {len(report.junk_files)} junk files."
    else:
        text += " Clean data (no dirt)."
    return text


@click.command(name="generate")
@click.option(
    "--start",
    type=HourParam(),
    default=DEFAULT_START,
    show_default=True,
    help="First arrival hour, naive UTC, on the hour.",
)
@click.option("--hours", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--vehicles", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--interval", type=click.IntRange(1, 3600), default=10, show_default=True,
    help="Seconds between a vehicle's reports.",
)  # fmt: skip
@click.option("--files-per-hour", type=click.IntRange(min=1), default=4, show_default=True)
@click.option(
    "--format", "file_format", type=click.Choice(FILE_FORMATS), default="mixed",
    show_default=True, help="mixed alternates parquet/orc per file.",
)  # fmt: skip
@click.option("--dirty", is_flag=True, help="Inject bad rows and junk files.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing raw files with other data.")
@click.option(
    "--raw-url", default=None,
    help="Raw zone: local path or s3://bucket/prefix (default $LAKEHOUSE_RAW_URL or data/raw).",
)  # fmt: skip
def command(
    start: datetime,
    hours: int,
    vehicles: int,
    interval: int,
    files_per_hour: int,
    file_format: str,
    dirty: bool,
    seed: int,
    overwrite: bool,
    raw_url: str | None,
) -> None:
    """Write deterministic raw vehicle GPS files into the raw zone
    (ods_vehicle_gps_raw/dt=YYYY-MM-DD/hh=HH/)."""
    try:
        storage = LakehouseStorage(raw_url=raw_url) if raw_url else LakehouseStorage()
        zone = storage.raw(create=True)
        began = time.perf_counter()
        report = write_sample_data(
            zone,
            start=start,
            hours=hours,
            vehicles=vehicles,
            interval_s=interval,
            files_per_hour=files_per_hour,
            file_format=file_format,
            dirty=dirty,
            seed=seed,
            overwrite=overwrite,
        )
    except (ValueError, StorageConfigError, WouldOverwrite) as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(summarize(report, zone.url, time.perf_counter() - began))
