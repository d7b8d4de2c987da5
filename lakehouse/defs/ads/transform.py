"""ADS per-vehicle hourly mileage and speed as DuckDB SQL over the DWD hour.

Over the hour's ``loc_valid`` points of each vehicle, ordered by ``event_time`` with ties broken
by ``lng, lat, speed``: the seed's planar distance ``sqrt((|dlng|*111)^2 + (|dlat|*111)^2)`` km
(kept for parity with the MaxLake numbers), its great-circle (haversine) equivalent, and the
mean speed. The first point of a vehicle contributes 0 distance.

Sums run over exact decimals (each term rounded to 1e-12) and are converted back to double:
a parallel floating-point sum depends on the order threads add it up, and a re-run must give
the same bytes.
"""

from __future__ import annotations

from lakehouse.sql_text import quote_literal

EARTH_RADIUS_KM = 6371.0
KM_PER_DEGREE = 111.0
EXACT = "DECIMAL(38, 12)"


def ads_sql(dwd_source: str, stat_hour: str) -> str:
    """One row per vehicle with at least one valid point in the hour, ordered by vin.

    ``dwd_source`` is a table expression: a view name or ``read_parquet(...)``.
    """
    return f"""
        WITH points AS (
            SELECT vin, speed, lng, lat,
                   lag(lng) OVER w AS prev_lng,
                   lag(lat) OVER w AS prev_lat
            FROM {dwd_source}
            WHERE loc_valid
            WINDOW w AS (PARTITION BY vin ORDER BY event_time, lng, lat, speed)
        ),
        legs AS (
            SELECT vin, speed,
                   sqrt(pow(abs(lng - prev_lng) * {KM_PER_DEGREE}, 2)
                        + pow(abs(lat - prev_lat) * {KM_PER_DEGREE}, 2)) AS planar_km,
                   2 * {EARTH_RADIUS_KM} * asin(sqrt(
                        pow(sin(radians(lat - prev_lat) / 2), 2)
                        + cos(radians(prev_lat)) * cos(radians(lat))
                          * pow(sin(radians(lng - prev_lng) / 2), 2))) AS haversine_km
            FROM points
        )
        SELECT vin,
               {quote_literal(stat_hour)}::VARCHAR AS stat_hour,
               coalesce(sum(planar_km::{EXACT})::DOUBLE, 0.0) AS total_distance,
               coalesce(sum(haversine_km::{EXACT})::DOUBLE, 0.0) AS total_distance_haversine,
               (sum(speed::{EXACT}) / count(speed))::DOUBLE AS avg_speed
        FROM legs
        GROUP BY vin
        ORDER BY vin
        """
