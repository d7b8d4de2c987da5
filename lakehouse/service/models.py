"""Response shapes (pydantic v2): what ``/openapi.json`` documents and every response follows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['query', 'from'].")
    msg: str


class ErrorBody(BaseModel):
    """Every error: a stable code, a sentence for humans, and per-parameter details for 422."""

    error: str = Field(examples=["forbidden"])
    message: str
    details: list[ErrorDetail] | None = None


class HourlyStat(BaseModel):
    """A vehicle's hour (ADS ``ads_vehicle_hourly_stat``)."""

    vin: str = Field(description="Masked for roles that see it masked, e.g. V*******1.")
    stat_hour: datetime = Field(description="The UTC hour, ISO 8601.")
    total_distance: float = Field(description="km, the seed's planar formula.")
    total_distance_haversine: float = Field(description="km, great-circle.")
    avg_speed: float = Field(description="km/h over the hour's valid points.")


class DailyStat(BaseModel):
    """A vehicle's day (DWS ``dws_vehicle_daily_stat``)."""

    vin: str
    stat_date: date
    total_distance: float
    total_distance_haversine: float
    avg_speed: float | None
    max_speed: float | None
    active_hours: int
    valid_points: int
    invalid_points: int


class FleetHour(BaseModel):
    """The fleet's figures of an hour (``ads_fleet_hourly_kpi``)."""

    stat_hour: datetime
    vehicles: int
    total_distance: float
    total_distance_haversine: float
    avg_speed: float | None
    invalid_point_share: float | None


class HourlyPage(BaseModel):
    items: list[HourlyStat]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: done.")


class DailyPage(BaseModel):
    items: list[DailyStat]
    next_cursor: str | None


class FleetPage(BaseModel):
    items: list[FleetHour]
    next_cursor: str | None


class RowsPage(BaseModel):
    """Rows of a table: its columns and partition columns, values as stored (masked if so)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class ColumnInfo(BaseModel):
    name: str
    type: str = Field(description="DuckDB type.")
    masked: bool = Field(description="Whether the caller sees this column masked.")
    masking: str | None = Field(default=None, description="The masking function, if masked.")


class TableInfo(BaseModel):
    name: str
    partitioning: Literal["hourly", "daily"]
    partition_columns: list[str]
    columns: list[ColumnInfo]
    available: bool = Field(description="False: granted, but not served to this role.")
    note: str | None = None


class TablesPage(BaseModel):
    items: list[TableInfo]
    next_cursor: str | None = None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool]
