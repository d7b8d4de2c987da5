"""DWD cleaning as DuckDB SQL over the ODS hour: the seed's filters, made exact and counted.

Kept rows: a ``vin`` that is not blank (NULL, empty, or only whitespace, control or invisible
characters), a finite ``speed`` with ``0 <= speed <= 500`` km/h (beyond is a sensor fault, and no
finite double can then overflow an aggregate), and a ``report_time`` that is exactly
``yyyy-MM-dd HH:mm:ss`` (two-digit fields, no padding) and a real time from year 1 on. Exact
duplicate reports (same vin, event_time, lng, lat, speed) are kept once. ``loc_valid`` is FALSE
unless both coordinates are finite and in range: the finiteness test is evaluated per row, so
no min/max statistics (which leave NaN out) can let an optimiser prove a NaN coordinate valid.

The same patterns are used by the pandera schema (both run RE2), so whatever DWD keeps, the
schema accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from lakehouse.rules import (
    BLANK_CHARACTERS,
    LAT_RANGE,
    LNG_RANGE,
    MAX_SPEED_KMH,
    REPORT_TIME_FORMAT,
    REPORT_TIME_PATTERN,
)

DROP_REASONS = ("missing_vin", "invalid_speed", "unparseable_report_time")

# The first reason that applies is the one a row is counted under.
_DROP_REASON = f"""
CASE
    WHEN vin IS NULL OR regexp_full_match(vin, '{BLANK_CHARACTERS}*') THEN 'missing_vin'
    WHEN speed IS NULL OR NOT isfinite(speed) OR speed < 0 OR speed > {MAX_SPEED_KMH}
        THEN 'invalid_speed'
    WHEN report_time IS NULL
        OR NOT regexp_full_match(report_time, '{REPORT_TIME_PATTERN}')
        OR coalesce(try_strptime(report_time, '{REPORT_TIME_FORMAT}') < '0001-01-01', TRUE)
        THEN 'unparseable_report_time'
END"""

LOC_VALID_SQL = f"""coalesce(
    CASE WHEN isfinite(lng) AND isfinite(lat)
         THEN lng BETWEEN {LNG_RANGE[0]} AND {LNG_RANGE[1]}
              AND lat BETWEEN {LAT_RANGE[0]} AND {LAT_RANGE[1]}
         ELSE FALSE END,
    FALSE)"""


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
        SELECT vin, event_time, lng, lat, speed, {LOC_VALID_SQL} AS loc_valid
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
