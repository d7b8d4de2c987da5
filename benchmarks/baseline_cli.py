"""The command line every peer of the hour benchmark shares: the hour's raw files and outputs."""

from __future__ import annotations

import argparse
import glob
from pathlib import Path


def parse_peer_args(description: str) -> tuple[list[str], list[str], str, Path]:
    """(the hour's raw Parquet files, its ORC files, the stat_hour label, the output folder).

    Each peer writes ``dwd.parquet`` and ``ads.parquet`` into the output folder.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--raw-hour-dir", required=True)
    parser.add_argument("--stat-hour", required=True)
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args()
    parquet = sorted(glob.glob(f"{args.raw_hour_dir}/part-*.parquet"))
    orc = sorted(glob.glob(f"{args.raw_hour_dir}/part-*.orc"))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return parquet, orc, args.stat_hour, out
