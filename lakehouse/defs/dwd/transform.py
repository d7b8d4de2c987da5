"""DWD cleaning as DuckDB SQL over the ODS hour: the seed's filters, made exact and counted.

Kept rows: a ``vin`` that is not blank (NULL, empty, or only whitespace, control or invisible
characters), a finite ``speed`` with ``0 <= speed <= 500`` km/h (beyond is a sensor fault, and no
finite double can then overflow an aggregate), and a ``report_time`` that is exactly
``yyyy-MM-dd HH:mm:ss`` (two-digit fields, no padding) and a real time from year 1 on. Exact
duplicate reports (same vin, event_time, lng, lat, speed) are kept once. ``loc_valid`` is FALSE
unless both coordinates are finite and in range: the finiteness test is evaluated per row, so
no min/max statistics (which leave NaN out) can let an optimiser prove a NaN coordinate valid.
Numbers are published in one canonical form: ``-0.0`` as ``0.0`` and every NaN as the one quiet
NaN, so that reports differing only there are one report, and an hour has the same bits
whichever engine computed it (Spark normalises both when it compares; DuckDB keeps the input's).

The same patterns are used by the pandera schema (both run RE2), so whatever DWD keeps, the
schema accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.engines.session import LayerSession
from lakehouse.rules import (
    BLANK_CHARACTERS,
    LAT_RANGE,
    LNG_RANGE,
    MAX_SPEED_KMH,
    REPORT_TIME_FORMAT,
)

DROP_REASONS = ("missing_vin", "invalid_speed", "unparseable_report_time")

# The first reason that applies is the one a row is counted under. A report_time is exact when
# parsing and formatting it back gives the same 19 characters (no padding, two-digit fields, a
# real date), which is twice as fast as a regular expression and equally strict. ``blank_vin``
# and ``bad_time`` come from ``classified_sql``'s per-value tables (NULL: no such value).
_DROP_REASON = f"""
CASE
    WHEN ods_row.vin IS NULL OR vins.blank_vin THEN 'missing_vin'
    WHEN speed IS NULL OR NOT isfinite(speed) OR speed < 0 OR speed > {MAX_SPEED_KMH}
        THEN 'invalid_speed'
    WHEN times.bad_time IS NOT FALSE THEN 'unparseable_report_time'
END"""

LOC_VALID_SQL = f"""coalesce(
    CASE WHEN isfinite(lng) AND isfinite(lat)
         THEN lng BETWEEN {LNG_RANGE[0]} AND {LNG_RANGE[1]}
              AND lat BETWEEN {LAT_RANGE[0]} AND {LAT_RANGE[1]}
         ELSE FALSE END,
    FALSE)"""


def _canonical(column: str) -> str:
    return f"CASE WHEN isnan({column}) THEN 'NaN'::DOUBLE ELSE {column} + 0.0 END"


@dataclass(frozen=True)
class DwdDropCounts:
    """Rows read from ODS and rows dropped per reason (duplicates are counted on write)."""

    rows_in: int
    dropped: dict[str, int]

    @property
    def rows_kept(self) -> int:
        """Rows passing the filters, before duplicate reports are collapsed."""
        return self.rows_in - sum(self.dropped.values())


def classified_sql(ods_source: str) -> str:
    """Every ODS row with its parsed ``event_time`` and why it would be dropped (NULL: kept).

    ``ods_source`` is a table expression: a view name or ``read_parquet(...)``. What depends on
    one column only (a VIN's blankness; a report_time's parse and exactness) is worked out once
    per distinct value and joined back: an hour holds one VIN per vehicle and at most 3,600
    valid report times, and parsing and formatting every row's time was most of the work
    (10.9M rows: the drop counts 0.6 -> 0.26 s, DWD's scan 1.85 -> 1.53 s).
    """
    return f"""
        WITH times AS (
            SELECT report_time, event_time,
                   event_time IS NULL
                       OR length(report_time) <> 19
                       OR strftime(event_time, '{REPORT_TIME_FORMAT}') <> report_time
                       OR event_time < '0001-01-01' AS bad_time
            FROM (
                SELECT report_time,
                       CAST(try_strptime(report_time, '{REPORT_TIME_FORMAT}') AS TIMESTAMP)
                           AS event_time
                FROM (SELECT DISTINCT report_time FROM {ods_source})
            )
        ),
        vins AS (
            SELECT vin, regexp_full_match(vin, '{BLANK_CHARACTERS}*') AS blank_vin
            FROM (SELECT DISTINCT vin FROM {ods_source})
        )
        SELECT ods_row.vin, times.event_time, lng, lat, speed, {_DROP_REASON} AS reason
        FROM {ods_source} AS ods_row
        LEFT JOIN times ON ods_row.report_time = times.report_time
        LEFT JOIN vins ON ods_row.vin = vins.vin
        """


def count_drops(layers: LayerSession, classified_source: str) -> DwdDropCounts:
    """Rows of the hour, and rows dropped per reason, from the classified rows."""
    rows = layers.rows(f"SELECT reason, count(*) FROM {classified_source} GROUP BY ALL")
    by_reason = {reason: count for reason, count in rows}
    dropped = {reason: int(by_reason.get(reason, 0)) for reason in DROP_REASONS}
    return DwdDropCounts(rows_in=int(sum(by_reason.values())), dropped=dropped)


def dwd_sql(classified_source: str, ordered: bool = False) -> str:
    """The DWD rows of the hour: the kept rows, duplicates removed, ``loc_valid`` added.

    ``classified_source`` is ``classified_sql``'s rows (a table, or the query in parentheses).
    Unordered by default: a full sort costs more than the rest of DWD and no reader needs it
    (ADS, DWS and the ML set order or group what they read; shares order by masked values).
    """
    order = "ORDER BY vin, event_time, lng, lat, speed" if ordered else ""
    return f"""
        SELECT vin, event_time, lng, lat, speed, {LOC_VALID_SQL} AS loc_valid
        FROM (
            SELECT DISTINCT vin, event_time, {_canonical("lng")} AS lng,
                   {_canonical("lat")} AS lat, {_canonical("speed")} AS speed
            FROM {classified_source}
            WHERE reason IS NULL
        )
        {order}
        """
