"""DWS as DuckDB SQL: the day's hourly figures per vehicle, combined from per-hour partials.

A day is read one hour at a time: each hour's ADS and DWD rows are reduced to a small per-vehicle
partial (exact decimal sums, counts, maxima) and only those partials are combined. Memory and
local disk therefore stay bounded by one hour however large the fleet, and the result is exact:
``total_distance`` and ``total_distance_haversine`` are the sums of the vehicle's hourly ADS
values (so daily and hourly figures reconcile), ``avg_speed`` is the mean over all of the day's
``loc_valid`` points (not a mean of hourly means), ``max_speed`` their maximum.
"""

from __future__ import annotations

from lakehouse.defs.ads.transform import EXACT
from lakehouse.sql_text import quote_literal

PARTIALS = "dws_hour_partials"

CREATE_PARTIALS = f"""
    CREATE TEMP TABLE {PARTIALS} (
        vin VARCHAR, active BOOLEAN,
        total_distance {EXACT}, total_distance_haversine {EXACT},
        speed_sum {EXACT}, max_speed DOUBLE, valid_points BIGINT, invalid_points BIGINT
    )"""


def hour_partials_sql(ads_source: str, dwd_source: str) -> str:
    """``INSERT`` of one hour's per-vehicle partials (either source may be an empty hour)."""
    return f"""
        INSERT INTO {PARTIALS}
        WITH points AS (
            SELECT vin,
                   count(*) FILTER (WHERE loc_valid) AS valid_points,
                   count(*) FILTER (WHERE NOT loc_valid) AS invalid_points,
                   sum(speed::{EXACT}) FILTER (WHERE loc_valid) AS speed_sum,
                   max(speed) FILTER (WHERE loc_valid) AS max_speed
            FROM {dwd_source}
            GROUP BY vin
        ),
        hour AS (
            SELECT vin, total_distance::{EXACT} AS total_distance,
                   total_distance_haversine::{EXACT} AS total_distance_haversine
            FROM {ads_source}
        )
        SELECT coalesce(points.vin, hour.vin), hour.vin IS NOT NULL,
               hour.total_distance, hour.total_distance_haversine,
               points.speed_sum, points.max_speed,
               coalesce(points.valid_points, 0), coalesce(points.invalid_points, 0)
        FROM points FULL OUTER JOIN hour ON points.vin = hour.vin
        """


def dws_sql(stat_date: str) -> str:
    """One row per vehicle of the day, ordered by vin, from the partials inserted so far."""
    return f"""
        SELECT vin,
               {quote_literal(stat_date)}::VARCHAR AS stat_date,
               coalesce(sum(total_distance), 0)::DOUBLE AS total_distance,
               coalesce(sum(total_distance_haversine), 0)::DOUBLE AS total_distance_haversine,
               (sum(speed_sum) / nullif(sum(valid_points), 0))::DOUBLE AS avg_speed,
               max(max_speed) AS max_speed,
               (count(*) FILTER (WHERE active))::INTEGER AS active_hours,
               sum(valid_points)::BIGINT AS valid_points,
               sum(invalid_points)::BIGINT AS invalid_points
        FROM {PARTIALS}
        GROUP BY vin
        ORDER BY vin
        """
