"""pandera schemas of the layer tables: what every published partition must satisfy."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE


class OdsVehicleGpsRaw(pa.DataFrameModel):
    """Raw reports as uploaded: typed, but any value may be missing or wrong."""

    vin: Series[str] = pa.Field(nullable=True)
    device_id: Series[str] = pa.Field(nullable=True)
    report_time: Series[str] = pa.Field(nullable=True)
    lng: Series[float] = pa.Field(nullable=True)
    lat: Series[float] = pa.Field(nullable=True)
    speed: Series[float] = pa.Field(nullable=True)
    raw_payload: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True


class DwdVehicleGps(pa.DataFrameModel):
    """Cleaned reports: identified, timed, a real speed, and an honest location flag."""

    vin: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    event_time: Series[pd.Timestamp] = pa.Field(nullable=False)
    lng: Series[float] = pa.Field(nullable=True)
    lat: Series[float] = pa.Field(nullable=True)
    speed: Series[float] = pa.Field(nullable=False, ge=0)
    loc_valid: Series[bool] = pa.Field(nullable=False)

    class Config:
        strict = True

    @pa.dataframe_check(
        error="loc_valid must equal lng BETWEEN 70 AND 140 AND lat BETWEEN 10 AND 60"
    )
    @classmethod
    def loc_valid_matches_coordinates(cls, df: pd.DataFrame) -> pd.Series:
        expected = df["lng"].between(70, 140) & df["lat"].between(10, 60)
        return df["loc_valid"] == expected.fillna(False)


class AdsVehicleHourlyStat(pa.DataFrameModel):
    """Per-vehicle hourly mileage and speed: one row per vin, non-negative numbers."""

    vin: Series[str] = pa.Field(nullable=False, unique=True)
    stat_hour: Series[str] = pa.Field(nullable=False, str_matches=r"^\d{4}-\d{2}-\d{2} \d{2}$")
    total_distance: Series[float] = pa.Field(nullable=False, ge=0)
    total_distance_haversine: Series[float] = pa.Field(nullable=False, ge=0)
    avg_speed: Series[float] = pa.Field(nullable=False, ge=0)

    class Config:
        strict = True


LAYER_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    ODS_TABLE: OdsVehicleGpsRaw,
    DWD_TABLE: DwdVehicleGps,
    ADS_TABLE: AdsVehicleHourlyStat,
}
