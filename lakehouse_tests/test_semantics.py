"""Hand-computed DWD and ADS results for a tiny hour, through the real hourly job."""

from __future__ import annotations

import math
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from lakehouse.tables import ADS_TABLE, DWD_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    HOUR,
    materialization_metadata,
    materialize_hour,
    ods_table,
    write_raw,
)

T0 = "2025-09-17 23:00:00"
T10 = "2025-09-17 23:00:10"
T20 = "2025-09-17 23:00:20"
T30 = "2025-09-17 23:00:30"

ROWS = [
    # VIN001: four valid points, two of them tied on event_time (broken by lng), one exact
    # duplicate, one invalid location and one negative speed.
    {"vin": "VIN001", "report_time": T0, "lng": 120.00, "lat": 30.00, "speed": 10.0},
    {"vin": "VIN001", "report_time": T10, "lng": 120.01, "lat": 30.00, "speed": 20.0},
    {"vin": "VIN001", "report_time": T10, "lng": 120.01, "lat": 30.00, "speed": 20.0},
    {"vin": "VIN001", "report_time": T20, "lng": 120.01, "lat": 30.02, "speed": 30.0},
    {"vin": "VIN001", "report_time": T20, "lng": 120.00, "lat": 30.02, "speed": 40.0},
    {"vin": "VIN001", "report_time": T30, "lng": 0.0, "lat": 0.0, "speed": 50.0},
    {"vin": "VIN001", "report_time": T30, "lng": 120.02, "lat": 30.02, "speed": -5.0},
    # VIN002: one valid point and one report whose time does not parse.
    {"vin": "VIN002", "report_time": T0, "lng": 121.0, "lat": 31.0, "speed": 60.0},
    {"vin": "VIN002", "report_time": "2025/09/17 23:01:00", "lng": 121.1, "lat": 31.0, "speed": 1},
    # VIN003: only an out-of-range latitude: kept in DWD, absent from ADS.
    {"vin": "VIN003", "report_time": T0, "lng": 120.0, "lat": 95.0, "speed": 5.0},
    # No vin at all.
    {"vin": None, "report_time": T0, "lng": 120.0, "lat": 30.0, "speed": 5.0},
]


def _haversine_km(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


@pytest.fixture
def tiny_hour(local_storage, catalog):
    for i, row in enumerate(ROWS):
        row.setdefault("device_id", f"DEV{i}")
        row.setdefault("raw_payload", "mock_payload")
    write_raw(local_storage.raw(), "tiny.parquet", ods_table(ROWS))
    result = materialize_hour(local_storage, catalog)
    assert result.success
    return local_storage.warehouse(), result


def _read(warehouse, table):
    return pq.read_table(warehouse.path(partition_relpath(table, HOUR))).to_pylist()


def test_dwd_rows_are_cleaned_parsed_flagged_and_deduplicated(tiny_hour):
    warehouse, _ = tiny_hour
    rows = sorted(
        (r["vin"], r["event_time"], r["lng"], r["lat"], r["speed"], r["loc_valid"])
        for r in _read(warehouse, DWD_TABLE)
    )
    ts = datetime.fromisoformat
    assert rows == [
        ("VIN001", ts(T0), 120.00, 30.00, 10.0, True),
        ("VIN001", ts(T10), 120.01, 30.00, 20.0, True),
        ("VIN001", ts(T20), 120.00, 30.02, 40.0, True),
        ("VIN001", ts(T20), 120.01, 30.02, 30.0, True),
        ("VIN001", ts(T30), 0.0, 0.0, 50.0, False),
        ("VIN002", ts(T0), 121.0, 31.0, 60.0, True),
        ("VIN003", ts(T0), 120.0, 95.0, 5.0, False),
    ]


def test_dwd_reports_rows_dropped_per_reason(tiny_hour):
    _, result = tiny_hour
    meta = materialization_metadata(result, DWD_TABLE)
    assert meta["rows_in"].value == 11
    assert meta["rows_out"].value == 7
    assert meta["dropped_missing_vin"].value == 1
    assert meta["dropped_invalid_speed"].value == 1
    assert meta["dropped_unparseable_report_time"].value == 1
    assert meta["dropped_duplicate_report"].value == 1
    assert meta["dropped_total"].value == 4


def test_ads_uses_seed_distance_haversine_and_mean_speed(tiny_hour):
    warehouse, _ = tiny_hour
    ads = {r["vin"]: r for r in _read(warehouse, ADS_TABLE)}
    assert set(ads) == {"VIN001", "VIN002"}  # VIN003 has no valid location

    # VIN001 in event_time order, the 23:00:20 tie broken by lng (120.00 before 120.01):
    # (120.00, 30.00) -> (120.01, 30.00) -> (120.00, 30.02) -> (120.01, 30.02)
    legs = [(0.01, 0.00), (0.01, 0.02), (0.01, 0.00)]
    planar = sum(math.sqrt((dx * 111) ** 2 + (dy * 111) ** 2) for dx, dy in legs)
    assert planar == pytest.approx(1.11 + math.sqrt(1.11**2 + 2.22**2) + 1.11)
    haversine = (
        _haversine_km(120.00, 30.00, 120.01, 30.00)
        + _haversine_km(120.01, 30.00, 120.00, 30.02)
        + _haversine_km(120.00, 30.02, 120.01, 30.02)
    )
    v1 = ads["VIN001"]
    assert v1["stat_hour"] == "2025-09-17 23"
    assert v1["total_distance"] == pytest.approx(planar, rel=1e-12)
    assert v1["total_distance_haversine"] == pytest.approx(haversine, rel=1e-12)
    assert v1["avg_speed"] == pytest.approx((10 + 20 + 40 + 30) / 4)

    # A single point travels nowhere; its speed is the mean.
    v2 = ads["VIN002"]
    assert (v2["total_distance"], v2["total_distance_haversine"], v2["avg_speed"]) == (
        0.0,
        0.0,
        60.0,
    )


def test_tie_order_changes_the_distance(tiny_hour):
    """Had the tie at 23:00:20 been broken the other way, the mileage would differ."""
    warehouse, _ = tiny_hour
    v1 = {r["vin"]: r for r in _read(warehouse, ADS_TABLE)}["VIN001"]
    other_order = 1.11 + 2.22 + 1.11  # (120.01,30.00)->(120.01,30.02)->(120.00,30.02)
    assert v1["total_distance"] != pytest.approx(other_order)
