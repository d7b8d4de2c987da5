"""The SPEC's layer rules re-implemented in plain Python, independently of the project's SQL.

Tests compare what the real jobs publish with what this reference computes from the same raw
rows. Raw rows are dicts of the ODS columns, strings as ``bytes`` (so invalid UTF-8 can be
expressed), numbers as floats or None.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import defaultdict
from datetime import datetime

LIMITS = {"vin": 64, "device_id": 128, "report_time": 64, "raw_payload": 65536}
TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _blank(vin: str) -> bool:
    return all(
        unicodedata.category(c) in {"Zs", "Zl", "Zp", "Cc"} or c in "\u200b\ufeff" for c in vin
    )


def _valid_utf8(value: bytes | None) -> bool:
    if value is None:
        return True
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _event_time(text: str | None) -> datetime | None:
    if text is None or not TIME_RE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _canon(x: float | None) -> object:
    """A hashable stand-in that treats NaN as equal to NaN and -0.0 as 0.0 (SQL DISTINCT)."""
    if x is None:
        return None
    if math.isnan(x):
        return "nan"
    return x + 0.0


def reference(rows: list[dict]) -> tuple[set, dict]:
    """(DWD rows as a set of canonical tuples, ADS per vin) for raw rows given as bytes/floats."""
    kept = []
    for row in rows:
        strings = {c: row[c] for c in LIMITS}
        if not all(_valid_utf8(v) for v in strings.values()):
            continue
        if any(v is not None and len(v) > LIMITS[c] for c, v in strings.items()):
            continue
        vin = row["vin"].decode() if row["vin"] is not None else None
        if vin is None or _blank(vin):
            continue
        speed = row["speed"]
        if not _finite(speed) or speed < 0 or speed > 500:
            continue
        when = _event_time(row["report_time"].decode() if row["report_time"] else None)
        if when is None:
            continue
        lng, lat = row["lng"], row["lat"]
        valid = _finite(lng) and _finite(lat) and 70 <= lng <= 140 and 10 <= lat <= 60
        kept.append((vin, when, lng, lat, speed, valid))
    unique = {}
    for vin, when, lng, lat, speed, valid in kept:
        unique.setdefault((vin, when, _canon(lng), _canon(lat), _canon(speed)), (lng, lat, valid))
    dwd = {(*key, value[2]) for key, value in unique.items()}
    points = defaultdict(list)
    for (vin, when, _, _, speed), (lng, lat, valid) in unique.items():
        if valid:
            points[vin].append((when, lng, lat, speed))
    ads = {}
    for vin, series in points.items():
        series.sort()
        planar = haversine = 0.0
        for (_, lng0, lat0, _), (_, lng1, lat1, _) in itertools.pairwise(series):
            planar += math.sqrt((abs(lng1 - lng0) * 111) ** 2 + (abs(lat1 - lat0) * 111) ** 2)
            p0, p1 = math.radians(lat0), math.radians(lat1)
            a = (
                math.sin((p1 - p0) / 2) ** 2
                + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lng1 - lng0) / 2) ** 2
            )
            haversine += 2 * 6371.0 * math.asin(math.sqrt(a))
        speeds = [s for *_, s in series]
        ads[vin] = (planar, haversine, math.fsum(speeds) / len(speeds))
    return dwd, ads


def daily_reference(rows_by_hour: dict[str, list[dict]]) -> dict[str, dict]:
    """DWS per vin for a day given as hour key -> raw rows (hours absent: not landed)."""
    empty = {"total_distance": 0.0, "total_distance_haversine": 0.0, "active_hours": 0,
             "valid_points": 0, "invalid_points": 0}  # fmt: skip
    days: dict[str, dict] = defaultdict(lambda: {**empty, "speeds": []})
    for rows in rows_by_hour.values():
        dwd, ads = reference(rows)
        for vin, _, _, _, speed, valid in dwd:
            day = days[vin]
            day["valid_points" if valid else "invalid_points"] += 1
            if valid:
                day["speeds"].append(speed)
        for vin, (planar, haversine, _) in ads.items():
            days[vin]["total_distance"] += planar
            days[vin]["total_distance_haversine"] += haversine
            days[vin]["active_hours"] += 1
    result = {}
    for vin, day in days.items():
        speeds = day.pop("speeds")
        day["avg_speed"] = math.fsum(speeds) / len(speeds) if speeds else None
        day["max_speed"] = max(speeds) if speeds else None
        result[vin] = day
    return result
