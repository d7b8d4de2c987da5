"""The engine floor: one bare DuckDB process that reads the raw hour and writes DWD and ADS.

The same filters, duplicate removal and window as the project (its own SQL), DWD unordered; no
orchestration, no ODS copy, no validation, no atomic publish. ORC files, which DuckDB cannot
read, are scanned through pyarrow as any engine would have to.
"""

from __future__ import annotations

import duckdb
import pyarrow.dataset as ds

from benchmarks.baseline_cli import parse_peer_args
from lakehouse.defs.ads.transform import ads_sql
from lakehouse.defs.dwd.transform import classified_sql, dwd_sql
from lakehouse.sql_text import quote_literal
from lakehouse.tables import ODS_SCHEMA

COLUMNS = ", ".join(f"{f.name}::{'VARCHAR' if str(f.type) == 'string' else 'DOUBLE'} AS {f.name}"
                    for f in ODS_SCHEMA)  # fmt: skip


def main() -> None:
    parquet, orc, stat_hour, out = parse_peer_args(__doc__)
    with duckdb.connect() as con:
        parts = []
        if parquet:
            files = ", ".join(quote_literal(f) for f in parquet)
            parts.append(f"SELECT {COLUMNS} FROM read_parquet([{files}], union_by_name = true)")
        if orc:
            con.register("orc_files", ds.dataset(orc, format="orc"))
            parts.append(f"SELECT {COLUMNS} FROM orc_files")
        source = "(" + " UNION ALL ".join(parts) + ")"
        dwd, ads = out / "dwd.parquet", out / "ads.parquet"
        con.execute(
            f"COPY ({dwd_sql(f'({classified_sql(source)})')}) TO {quote_literal(str(dwd))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        query = ads_sql(f"read_parquet({quote_literal(str(dwd))})", stat_hour)
        con.execute(f"COPY ({query}) TO {quote_literal(str(ads))} (FORMAT parquet)")


if __name__ == "__main__":
    main()
