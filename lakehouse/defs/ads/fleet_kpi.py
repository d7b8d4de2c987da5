"""The fleet's hourly KPIs as DuckDB SQL over the hour's ADS and DWD rows.

One row per hour, even an hour without data: ``vehicles`` (vehicles with an ADS row),
``total_distance`` and ``total_distance_haversine`` (sums of ADS, so they reconcile with it),
``avg_speed`` (mean speed over the hour's ``loc_valid`` DWD rows, not a mean of vehicle means)
and ``invalid_point_share`` (DWD rows with ``loc_valid`` false over all DWD rows). Sums are
exact decimals, as in ADS, so re-runs are byte-identical.
"""

from __future__ import annotations

from lakehouse.defs.ads.transform import EXACT
from lakehouse.sql_text import quote_literal


def fleet_kpi_sql(ads_source: str, dwd_source: str, stat_hour: str) -> str:
    """``ads_source``/``dwd_source`` are table expressions, e.g. ``read_parquet(...)``."""
    return f"""
        WITH fleet AS (
            SELECT count(*) AS vehicles,
                   coalesce(sum(total_distance::{EXACT})::DOUBLE, 0.0) AS total_distance,
                   coalesce(sum(total_distance_haversine::{EXACT})::DOUBLE, 0.0)
                       AS total_distance_haversine
            FROM {ads_source}
        ),
        points AS (
            SELECT (sum(speed::{EXACT}) FILTER (WHERE loc_valid)
                    / count(*) FILTER (WHERE loc_valid))::DOUBLE AS avg_speed,
                   (count(*) FILTER (WHERE NOT loc_valid))::DOUBLE
                       / nullif(count(*), 0) AS invalid_point_share
            FROM {dwd_source}
        )
        SELECT {quote_literal(stat_hour)}::VARCHAR AS stat_hour,
               vehicles, total_distance, total_distance_haversine,
               avg_speed, invalid_point_share
        FROM fleet, points
        """
