"""A hand-built day for the ML tests, its independent plain-Python reference, and torch checks.

The day (2025-09-17) has raw files for hours 00, 01 and 03 only (02 is missing): five vehicles,
ties on time (broken by lng, then lat, then speed), invalid points (a 0/0 fix, a NaN, an
infinite and a missing longitude, a latitude past the pole), a report from the day before, a
late report arriving an hour after its time, an exact duplicate, and rows DWD drops (no VIN,
negative speed, a malformed time). Everything below recomputes, without DuckDB, what the
training set must hold.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

import dagster as dg
import pyarrow.parquet as pq
import pytest

from lakehouse.defs.hourly.assets import hourly_layers
from lakehouse.defs.ml.assets import ml_gps_training_set, speed_model
from lakehouse.partitions import HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ML_TRAINING_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import lakehouse_resources, materialize_hour, ods_table, write_raw

DAY = "2025-09-17"
PRESENT_HOURS = ("00", "01", "03")
NAN, INF = float("nan"), float("inf")
V1, V2, V3, V4, V5 = (
    "LSVAU2180N2183291",
    "LFV3A28K8J3012345",
    "LGBH52E05KY123456",
    "WVWZZZ1KZAW000777",
    "JTDBR32E720012345",
)
VINS = (V1, V2, V3, V4, V5)
VALIDATION_BELOW = 0x199A  # written out again here: the rule under test, not imported

# (arrival hour, vin, report_time, lng, lat, speed)
RAW_ROWS = [
    ("00", V1, "2025-09-17 00:00:10", 120.0, 30.0, 10.0),
    ("00", V1, "2025-09-17 00:00:40", 120.001, 30.0005, 12.5),
    ("00", V1, "2025-09-17 00:00:40", 120.0005, 30.0, 11.0),  # tie on time: lower lng first
    ("00", V1, "2025-09-17 00:01:10", 0.0, 0.0, 13.0),  # a 0/0 fix: not loc_valid
    ("00", V1, "2025-09-17 00:01:40", 120.002, 30.001, 14.0),
    ("00", V1, "2025-09-17 00:01:40", 120.002, 30.0008, 14.0),  # tie on time and lng: lat
    ("00", V1, "2025-09-17 00:01:40", 120.002, 30.0008, 14.0),  # exact duplicate: kept once
    ("00", None, "2025-09-17 00:01:50", 120.0, 30.0, 10.0),  # no VIN: dropped
    ("00", V1, "2025-09-17 00:01:55", 120.0, 30.0, -3.0),  # negative speed: dropped
    ("00", V1, "2025/09/17 00:02:00", 120.0, 30.0, 10.0),  # malformed time: dropped
    ("00", V1, "2025-09-16 23:59:50", 119.999, 29.999, 9.0),  # the day before: V1's first
    ("01", V1, "2025-09-17 01:00:00", NAN, 30.0, 20.0),  # NaN: not loc_valid, after numbers
    ("01", V1, "2025-09-17 01:00:00", 120.01, 30.01, 21.0),
    ("01", V1, "2025-09-17 00:59:30", 120.009, 30.009, 19.0),  # late: arrives an hour later
    ("01", V1, "2025-09-17 01:30:00", None, 30.0, 22.0),  # missing lng: after a number,
    ("01", V1, "2025-09-17 01:30:00", 120.015, 29.0, 22.5),  # then by lat among missing ones
    ("01", V1, "2025-09-17 01:30:00", None, 29.5, 22.2),
    ("03", V1, "2025-09-17 03:15:00", 120.02, 30.02, 30.0),
    ("03", V1, "2025-09-17 03:15:30", 120.021, 30.02, 31.0),
    ("00", V2, "2025-09-17 00:10:00", 121.0, 31.0, 50.0),
    ("03", V2, "2025-09-17 03:20:00", 121.05, 31.02, 55.0),
    ("01", V3, "2025-09-17 01:05:00", 122.0, 32.0, 40.0),  # a single point: no row
    ("00", V4, "2025-09-17 00:05:00", 118.0, 25.0, 60.0),
    ("00", V4, "2025-09-17 00:05:30", 118.001, 25.0, 61.0),
    ("01", V4, "2025-09-17 01:10:00", INF, 25.0, 62.0),
    ("01", V4, "2025-09-17 01:10:30", 118.01, 95.0, 63.0),  # past the pole
    ("03", V4, "2025-09-17 03:00:00", 118.02, 25.01, 64.0),
    ("03", V4, "2025-09-17 03:00:30", 118.021, 25.011, 0.0),
    ("00", V5, "2025-09-17 00:20:00", 125.0, 40.0, 80.0),
    ("00", V5, "2025-09-17 00:20:30", 125.001, 40.0, 80.0),
    ("00", V5, "2025-09-17 00:21:00", 125.002, 40.0, 79.5),
    ("00", V5, "2025-09-17 00:21:00", 125.002, 40.0, 78.0),  # tie on all but speed
    ("01", V5, "2025-09-17 01:00:00", 125.01, 40.01, 70.0),
]


def vehicle_id(salt: str, vin: str) -> str:
    return hashlib.sha256((salt + vin).encode()).hexdigest()


def split_of(vid: str) -> str:
    return "validation" if int(vid[:4], 16) < VALIDATION_BELOW else "train"


def pick_salt() -> str:
    """The first test salt that puts a vehicle with rows in each split (the fleet is tiny)."""
    with_rows = (V1, V2, V4, V5)
    for attempt in range(1000):
        salt = f"hand-built-salt-{attempt}"
        splits = [split_of(vehicle_id(salt, vin)) for vin in with_rows]
        if splits.count("validation") == 1:
            return salt
    raise AssertionError("no salt splits the hand-built fleet")


def _order_key(value: float | None) -> tuple[int, float]:
    """Numbers, then NaN, then NULL: DuckDB's ascending order with NULLS LAST."""
    if value is None:
        return (2, 0.0)
    if math.isnan(value):
        return (1, 0.0)
    return (0, value)


def _valid(lng: float | None, lat: float | None) -> bool:
    if lng is None or lat is None or not (math.isfinite(lng) and math.isfinite(lat)):
        return False
    return 70 <= lng <= 140 and 10 <= lat <= 60


def expected_rows(salt: str) -> dict[str, list[dict]]:
    """The training set's rows per split, from RAW_ROWS, in plain Python."""
    kept, seen = [], set()
    for _hour, vin, report_time, lng, lat, speed in RAW_ROWS:
        if vin is None or not vin.strip() or not 0 <= speed <= 500:
            continue
        try:
            event_time = datetime.strptime(report_time, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
        identity = (vin, event_time, repr(lng), repr(lat), speed)
        if identity in seen:
            continue
        seen.add(identity)
        kept.append((vin, event_time, lng, lat, speed))
    by_vin: dict[str, list] = {}
    for row in kept:
        by_vin.setdefault(row[0], []).append(row)
    rows: dict[str, list[dict]] = {"train": [], "validation": []}
    for vin in sorted(by_vin, key=lambda v: vehicle_id(salt, v)):
        points = sorted(by_vin[vin], key=lambda p: (p[1], _order_key(p[2]), _order_key(p[3]), p[4]))
        vid = vehicle_id(salt, vin)
        for index, (_, time, lng, lat, speed) in enumerate(points[:-1]):
            valid = _valid(lng, lat)
            previous = points[index - 1] if index > 0 else None
            delta_km = None
            if previous is not None and valid and _valid(previous[2], previous[3]):
                delta_km = math.sqrt(
                    (abs(lng - previous[2]) * 111) ** 2 + (abs(lat - previous[3]) * 111) ** 2
                )
            rows[split_of(vid)].append(
                {
                    "vehicle_id": vid,
                    "seconds_since_midnight": time.hour * 3600 + time.minute * 60 + time.second,
                    "hour_of_day": time.hour,
                    "speed": speed,
                    "delta_seconds": (
                        None if previous is None else (time - previous[1]).total_seconds()
                    ),
                    "delta_km": delta_km,
                    "delta_speed": None if previous is None else speed - previous[4],
                    "loc_valid": valid,
                    "target_next_speed": points[index + 1][4],
                }
            )
    return rows


@dataclass
class HandDay:
    storage: LakehouseStorage
    catalog: CatalogResource
    salt: str
    result: dg.ExecuteInProcessResult

    def split_path(self, split: str) -> str:
        zone = self.storage.warehouse()
        return zone.path(partition_relpath(ML_TRAINING_TABLE, f"dt={DAY}/split={split}"))

    def split_rows(self, split: str) -> list[dict]:
        return pq.read_table(self.split_path(split)).to_pylist()


def write_hand_day(storage: LakehouseStorage) -> None:
    raw = storage.raw()
    for hour in PRESENT_HOURS:
        rows = [
            {"vin": vin, "report_time": t, "lng": lng, "lat": lat, "speed": speed}
            for h, vin, t, lng, lat, speed in RAW_ROWS
            if h == hour
        ]
        write_raw(raw, f"hand-{hour}.parquet", ods_table(rows), HourPartition.from_hive(DAY, hour))


def materialize_ml(
    storage: LakehouseStorage,
    catalog: CatalogResource,
    day: str = DAY,
    selection: Sequence[dg.AssetsDefinition] = (ml_gps_training_set,),
    **kw,
) -> dg.ExecuteInProcessResult:
    """Materialize the ML assets of ``selection`` for ``day``, in process.

    DWD is part of the graph, unselected, so the training set's partition mapping applies.
    """
    return dg.materialize(
        [hourly_layers, ml_gps_training_set, speed_model],
        selection=list(selection),
        partition_key=day,
        resources=lakehouse_resources(storage, catalog),
        **kw,
    )


def build_hand_day(root: Path, salt: str) -> HandDay:
    """Raw files -> the real hourly job for each present hour -> the training set, in process."""
    (root / "raw" / ODS_TABLE).mkdir(parents=True)
    storage = LakehouseStorage(raw_url=str(root / "raw"), warehouse_url=str(root / "warehouse"))
    catalog = CatalogResource(path=str(root / "catalog.duckdb"))
    write_hand_day(storage)
    for hour in PRESENT_HOURS:
        assert materialize_hour(storage, catalog, HourPartition.from_hive(DAY, hour)).success
    result = materialize_ml(storage, catalog)
    assert result.success
    return HandDay(storage, catalog, salt, result)


def require_torch() -> ModuleType:
    """PyTorch, or a test failure that says how to install it: never a silent skip."""
    try:
        import torch
    except ImportError as exc:
        pytest.fail(
            f"this test needs PyTorch from the `ml` extra ({exc}); install the test "
            "environment with: pip install -e '.[dev,ml]'",
            pytrace=False,
        )
    return torch
