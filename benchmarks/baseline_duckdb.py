"""Bare DuckDB baseline: the DWD filter and the ADS window in one query, ADS written to Parquet.

No orchestration, validation, ODS copy or DWD table: the floor the Dagster path is held to. It
reuses the project's own SQL so that both compute exactly the same numbers.
"""

from __future__ import annotations

import duckdb

from benchmarks.baseline_cli import parse_baseline_args
from lakehouse.defs.ads.transform import ads_sql
from lakehouse.defs.dwd.transform import classified_sql, dwd_sql
from lakehouse.sql_text import quote_literal


def main() -> None:
    files, stat_hour, out = parse_baseline_args(__doc__)
    source = "read_parquet([" + ", ".join(quote_literal(f) for f in files) + "])"
    query = ads_sql(f"({dwd_sql(f'({classified_sql(source)})')})", stat_hour)
    with duckdb.connect() as con:
        con.execute(f"COPY ({query}) TO {quote_literal(out)} (FORMAT parquet)")


if __name__ == "__main__":
    main()
