"""DWD cleaning as DuckDB SQL over the ODS hour: the seed's filters, made exact and counted.

Kept rows: non-null ``vin``, a finite ``speed >= 0`` (NaN/inf are not speeds) and a
``report_time`` that parses as ``yyyy-MM-dd HH:mm:ss``. Exact duplicate reports (same vin,
event_time, lng, lat, speed) are kept once. ``loc_valid`` follows the seed's CASE WHEN, so a
missing coordinate makes it FALSE, not NULL.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

DROP_REASONS = ("null_vin", "invalid_speed", "unparseable_report_time")

# The first reason that applies is the one a row is counted under.
_DROP_REASON = f"""
CASE
    WHEN vin IS NULL THEN 'null_vin'
    WHEN speed IS NULL OR NOT isfinite(speed) OR speed < 0 THEN 'invalid_speed'
    WHEN try_strptime(report_time, '{REPORT_TIME_FORMAT}') IS NULL THEN 'unparseable_report_time'
END"""

_LOC_VALID = "coalesce(lng BETWEEN 70 AND 140 AND lat BETWEEN 10 AND 60, FALSE)"


@dataclass(frozen=True)
class DwdDropCounts:
    """Rows read from ODS and rows dropped per reason (duplicates are counted on write)."""

    rows_in: int
    dropped: dict[str, int]

    @property
    def rows_kept(self) -> int:
        """Rows passing the filters, before duplicate reports are collapsed."""
        return self.rows_in - sum(self.dropped.values())


def count_drops(con: duckdb.DuckDBPyConnection, ods_source: str) -> DwdDropCounts:
    """One scan of the ODS hour classifying every row by why it would be dropped."""
    rows = con.sql(
        f"SELECT {_DROP_REASON} AS reason, count(*) FROM {ods_source} GROUP BY ALL"
    ).fetchall()
    by_reason = {reason: count for reason, count in rows}
    dropped = {reason: int(by_reason.get(reason, 0)) for reason in DROP_REASONS}
    return DwdDropCounts(rows_in=int(sum(by_reason.values())), dropped=dropped)


def dwd_sql(ods_source: str, ordered: bool = True) -> str:
    """The DWD rows of the hour, deduplicated and (by default) in a deterministic order.

    ``ods_source`` is a table expression: a view name or ``read_parquet(...)``. The order makes
    re-runs byte-identical and clusters a vehicle's rows; a consumer that aggregates the rows
    straight away (the benchmark's bare query) does not need it.
    """
    order = "ORDER BY vin, event_time, lng, lat, speed" if ordered else ""
    return f"""
        SELECT vin, event_time, lng, lat, speed, {_LOC_VALID} AS loc_valid
        FROM (
            SELECT DISTINCT
                vin,
                CAST(strptime(report_time, '{REPORT_TIME_FORMAT}') AS TIMESTAMP) AS event_time,
                lng, lat, speed
            FROM {ods_source}
            WHERE ({_DROP_REASON}) IS NULL
        )
        {order}
        """
