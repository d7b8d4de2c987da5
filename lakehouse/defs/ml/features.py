"""The speed model's training set as DuckDB SQL over a day of DWD: per-point features, next speed.

Pure SQL text, no Dagster, so it is tested on its own and reused by anything that needs the
same features. Per vehicle, over the day's DWD rows (its arrival hours), points are ordered by
``event_time``, ties broken by ``lng, lat, speed`` (NULLs last, NaN after every number), as ADS
orders them. Each point becomes one row:

- ``vehicle_id``: the policy's ``hash`` masking expression (salted SHA-256) of ``vin``; the raw
  VIN never leaves the query, so the training set is as shareable as the third-party share.
- ``seconds_since_midnight``, ``hour_of_day``: of the point's own ``event_time`` (UTC).
- ``speed`` (km/h) and ``loc_valid`` as in DWD.
- ``delta_seconds``, ``delta_speed``: change since the vehicle's previous point of the day;
  ``delta_km``: the seed's planar ``sqrt((|dlng|*111)^2 + (|dlat|*111)^2)`` km from it, only when
  both points have a valid location. The vehicle's **first point** of the day has no previous
  point: its three deltas are NULL. ``delta_km`` is also NULL when either end is not
  ``loc_valid`` (a missing, NaN or out-of-range coordinate has no meaningful distance).
- ``target_next_speed``: the speed of the vehicle's next point. The vehicle's **last point**
  of the day has none and is dropped (a vehicle with a single point contributes no row).

Rows are written in ``vehicle_id`` order, then the order above: never in raw-VIN order.
The split is by vehicle, from the hashed id alone (:func:`split_of`), so no vehicle is in both.
"""

from __future__ import annotations

from lakehouse.defs.ads.transform import KM_PER_DEGREE
from lakehouse.governance.masking import mask_expression
from lakehouse.sql_text import quote_literal

TRAIN, VALIDATION = "train", "validation"
SPLITS = (TRAIN, VALIDATION)
# A vehicle is in validation when the first four hex digits of its id, read as a number, are
# below this: 0x199a / 0x10000 = 10.0% of ids, the other 90% train.
VALIDATION_BELOW = 0x199A
ID_PREFIX_DIGITS = 4
FEATURE_COLUMNS = (
    "seconds_since_midnight",
    "hour_of_day",
    "speed",
    "delta_seconds",
    "delta_km",
    "delta_speed",
    "loc_valid",
)
TARGET_COLUMN = "target_next_speed"
ID_COLUMN = "vehicle_id"
POINT_ORDER = "event_time, lng NULLS LAST, lat NULLS LAST, speed"


def split_of(vehicle_id: str) -> str:
    """The split a hashed vehicle id belongs to (the rule the SQL applies)."""
    return VALIDATION if int(vehicle_id[:ID_PREFIX_DIGITS], 16) < VALIDATION_BELOW else TRAIN


def split_predicate(id_sql: str, split: str) -> str:
    """SQL that is true for the ids of ``split``: a comparison of lower-case hex prefixes."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    bound = quote_literal(f"{VALIDATION_BELOW:0{ID_PREFIX_DIGITS}x}")
    operator = "<" if split == VALIDATION else ">="
    return f"left({id_sql}, {ID_PREFIX_DIGITS}) {operator} {bound}"


def vehicle_id_sql() -> str:
    """The hashed vehicle id: the masking policy's salted ``hash`` of ``vin`` (needs the salt)."""
    return mask_expression("hash", "vin", {})


def training_set_sql(dwd_source: str, split: str) -> str:
    """The rows of one split, ordered by hashed id and point order.

    ``dwd_source`` is a table expression over the day's DWD rows, e.g. ``read_parquet([...])``.
    The split is filtered before the window: it depends on the vehicle only, so each split's
    query windows its own vehicles and the two together cost one pass of windowing. Needs the
    hash salt bound on the connection (``lakehouse.governance.masking.bind_salt``).
    """
    return f"""
        WITH hashed AS (
            SELECT {vehicle_id_sql()} AS vehicle_id, event_time, lng, lat, speed, loc_valid
            FROM {dwd_source}
        ),
        mine AS (
            SELECT * FROM hashed WHERE {split_predicate(ID_COLUMN, split)}
        ),
        points AS (
            SELECT vehicle_id, event_time, lng, lat, speed, loc_valid,
                   row_number() OVER w AS point_index,
                   lag(event_time) OVER w AS prev_time,
                   lag(lng) OVER w AS prev_lng,
                   lag(lat) OVER w AS prev_lat,
                   lag(speed) OVER w AS prev_speed,
                   lag(loc_valid) OVER w AS prev_loc_valid,
                   lead(speed) OVER w AS next_speed
            FROM mine
            WINDOW w AS (PARTITION BY vehicle_id ORDER BY {POINT_ORDER})
        )
        SELECT vehicle_id,
               (hour(event_time) * 3600 + minute(event_time) * 60 + second(event_time))::INTEGER
                   AS seconds_since_midnight,
               hour(event_time)::INTEGER AS hour_of_day,
               speed,
               (date_diff('microsecond', prev_time, event_time) / 1e6)::DOUBLE AS delta_seconds,
               CASE WHEN loc_valid AND prev_loc_valid THEN
                   sqrt(pow(abs(lng - prev_lng) * {KM_PER_DEGREE}, 2)
                        + pow(abs(lat - prev_lat) * {KM_PER_DEGREE}, 2))
               END AS delta_km,
               speed - prev_speed AS delta_speed,
               loc_valid,
               next_speed AS target_next_speed
        FROM points
        WHERE next_speed IS NOT NULL
        ORDER BY vehicle_id, point_index
        """
