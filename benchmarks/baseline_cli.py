"""The command line both baselines share: where the hour's raw files are and where ADS goes."""

from __future__ import annotations

import argparse
import glob


def parse_baseline_args(description: str) -> tuple[list[str], str, str]:
    """(the hour's raw Parquet files, the stat_hour label, the ADS output path)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--raw-hour-dir", required=True)
    parser.add_argument("--stat-hour", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    return sorted(glob.glob(f"{args.raw_hour_dir}/part-*.parquet")), args.stat_hour, args.out
