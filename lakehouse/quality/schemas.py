"""pandera schemas of the layer tables: what every published partition must satisfy.

They use pandera's pyarrow backend, so an hour is validated as the Arrow record batches it is
written from, with vectorised compute, instead of being converted to pandas first.
"""

from __future__ import annotations

import narwhals.stable.v1 as nw
import pandera.pyarrow as pa
import pyarrow

from lakehouse.rules import LAT_RANGE, LNG_RANGE, MAX_SPEED_KMH, NOT_BLANK_PATTERN
from lakehouse.tables import ADS_TABLE, DWD_TABLE, DWS_TABLE, KPI_TABLE, ODS_TABLE

STAT_HOUR_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}$"
STAT_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class OdsVehicleGpsRaw(pa.DataFrameModel):
    """Raw reports as uploaded: typed, but any value may be missing or wrong."""

    vin: pyarrow.string() = pa.Field(nullable=True)
    device_id: pyarrow.string() = pa.Field(nullable=True)
    report_time: pyarrow.string() = pa.Field(nullable=True)
    lng: pyarrow.float64() = pa.Field(nullable=True)
    lat: pyarrow.float64() = pa.Field(nullable=True)
    speed: pyarrow.float64() = pa.Field(nullable=True)
    raw_payload: pyarrow.string() = pa.Field(nullable=True)

    class Config:
        strict = True


class DwdVehicleGps(pa.DataFrameModel):
    """Cleaned reports: identified, timed, a real speed, and an honest location flag."""

    # A visible character somewhere: the complement of DWD's blank-VIN rule, in the same RE2.
    vin: pyarrow.string() = pa.Field(
        nullable=False, str_length={"min_value": 1}, str_contains=NOT_BLANK_PATTERN
    )
    event_time: pyarrow.timestamp("us") = pa.Field(nullable=False)
    lng: pyarrow.float64() = pa.Field(nullable=True)
    lat: pyarrow.float64() = pa.Field(nullable=True)
    speed: pyarrow.float64() = pa.Field(nullable=False, ge=0, le=MAX_SPEED_KMH)
    loc_valid: pyarrow.bool_() = pa.Field(nullable=False)

    class Config:
        strict = True

    @pa.dataframe_check(
        native=False, error="loc_valid must equal lng BETWEEN 70 AND 140 AND lat BETWEEN 10 AND 60"
    )
    @classmethod
    def loc_valid_matches_coordinates(cls, frame: nw.DataFrame) -> nw.Expr:
        in_range = nw.col("lng").is_between(*LNG_RANGE) & nw.col("lat").is_between(*LAT_RANGE)
        return nw.col("loc_valid") == in_range.fill_null(False)


class AdsVehicleHourlyStat(pa.DataFrameModel):
    """Per-vehicle hourly mileage and speed: one row per vin, non-negative numbers."""

    vin: pyarrow.string() = pa.Field(nullable=False, unique=True)
    stat_hour: pyarrow.string() = pa.Field(nullable=False, str_matches=STAT_HOUR_PATTERN)
    total_distance: pyarrow.float64() = pa.Field(nullable=False, ge=0)
    total_distance_haversine: pyarrow.float64() = pa.Field(nullable=False, ge=0)
    avg_speed: pyarrow.float64() = pa.Field(nullable=False, ge=0)

    class Config:
        strict = True


class AdsFleetHourlyKpi(pa.DataFrameModel):
    """One row per hour: fleet counts and sums that are never negative, shares within [0, 1]."""

    stat_hour: pyarrow.string() = pa.Field(nullable=False, str_matches=STAT_HOUR_PATTERN)
    vehicles: pyarrow.int64() = pa.Field(nullable=False, ge=0)
    total_distance: pyarrow.float64() = pa.Field(nullable=False, ge=0)
    total_distance_haversine: pyarrow.float64() = pa.Field(nullable=False, ge=0)
    avg_speed: pyarrow.float64() = pa.Field(nullable=True, ge=0, le=MAX_SPEED_KMH)
    invalid_point_share: pyarrow.float64() = pa.Field(nullable=True, ge=0, le=1)

    class Config:
        strict = True


class DwsVehicleDailyStat(pa.DataFrameModel):
    """One row per vehicle and day; the day's hourly figures summed, its points counted."""

    vin: pyarrow.string() = pa.Field(nullable=False, unique=True, str_contains=NOT_BLANK_PATTERN)
    stat_date: pyarrow.string() = pa.Field(nullable=False, str_matches=STAT_DATE_PATTERN)
    total_distance: pyarrow.float64() = pa.Field(nullable=False, ge=0)
    total_distance_haversine: pyarrow.float64() = pa.Field(nullable=False, ge=0)
    avg_speed: pyarrow.float64() = pa.Field(nullable=True, ge=0, le=MAX_SPEED_KMH)
    max_speed: pyarrow.float64() = pa.Field(nullable=True, ge=0, le=MAX_SPEED_KMH)
    active_hours: pyarrow.int32() = pa.Field(nullable=False, ge=0, le=24)
    valid_points: pyarrow.int64() = pa.Field(nullable=False, ge=0)
    invalid_points: pyarrow.int64() = pa.Field(nullable=False, ge=0)

    class Config:
        strict = True


LAYER_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    ODS_TABLE: OdsVehicleGpsRaw,
    DWD_TABLE: DwdVehicleGps,
    ADS_TABLE: AdsVehicleHourlyStat,
    KPI_TABLE: AdsFleetHourlyKpi,
    DWS_TABLE: DwsVehicleDailyStat,
}
