"""Bare DuckDB baseline: the DWD filter and the ADS window in one query, ADS written to Parquet.

No orchestration, validation, ODS copy or DWD table: the floor the Dagster path is held to. It
reuses the project's own SQL so that both compute exactly the same numbers.
"""

from __future__ import annotations

import argparse
import glob

import duckdb

from lakehouse.defs.ads.transform import ads_sql
from lakehouse.defs.dwd.transform import dwd_sql
from lakehouse.sql_text import quote_literal


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw-hour-dir", required=True)
    parser.add_argument("--stat-hour", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    files = sorted(glob.glob(f"{args.raw_hour_dir}/part-*.parquet"))
    source = "read_parquet([" + ", ".join(quote_literal(f) for f in files) + "])"
    query = ads_sql(f"({dwd_sql(source, ordered=False)})", args.stat_hour)
    with duckdb.connect() as con:
        con.execute(f"COPY ({query}) TO {quote_literal(args.out)} (FORMAT parquet)")


if __name__ == "__main__":
    main()
