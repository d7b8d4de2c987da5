"""``lakehouse-generate``: fill the raw zone with sample GPS files from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from lakehouse.resources.storage import LakehouseStorage, StorageConfigError
from lakehouse.sample_data.generator import (
    FILE_FORMATS,
    RAW_DATASET,
    GenerationReport,
    write_sample_data,
)

DEFAULT_START = "2025-09-17T23:00"


def _parse_start(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO datetime: {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakehouse-generate",
        description="Write deterministic raw vehicle GPS files into the raw zone "
        f"({RAW_DATASET}/dt=YYYY-MM-DD/hh=HH/).",
    )
    parser.add_argument(
        "--start",
        type=_parse_start,
        default=_parse_start(DEFAULT_START),
        help=f"first arrival hour, naive UTC truncated to the hour (default {DEFAULT_START})",
    )
    parser.add_argument("--hours", type=int, default=1, help="arrival hours (default 1)")
    parser.add_argument("--vehicles", type=int, default=50, help="fleet size (default 50)")
    parser.add_argument(
        "--interval", type=int, default=10, help="seconds between reports (default 10)"
    )
    parser.add_argument(
        "--files-per-hour", type=int, default=4, help="uploader files per hour (default 4)"
    )
    parser.add_argument(
        "--format",
        choices=FILE_FORMATS,
        default="mixed",
        dest="file_format",
        help="file format; mixed alternates parquet/orc per file (default mixed)",
    )
    parser.add_argument("--dirty", action="store_true", help="inject bad rows and junk files")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--raw-url",
        default=None,
        help="raw zone: local path or s3://bucket/prefix (default $LAKEHOUSE_RAW_URL or data/raw)",
    )
    return parser


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        storage = LakehouseStorage(raw_url=args.raw_url) if args.raw_url else LakehouseStorage()
        zone = storage.raw()
        began = time.perf_counter()
        report = write_sample_data(
            zone,
            start=args.start,
            hours=args.hours,
            vehicles=args.vehicles,
            interval_s=args.interval,
            files_per_hour=args.files_per_hour,
            file_format=args.file_format,
            dirty=args.dirty,
            seed=args.seed,
        )
    except (ValueError, StorageConfigError) as exc:
        print(f"lakehouse-generate: error: {exc}", file=sys.stderr)
        return 2
    print(summarize(report, zone.url, time.perf_counter() - began))
    return 0
