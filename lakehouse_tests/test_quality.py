"""pandera schemas catch violating data, and a violation never reaches the warehouse."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb
import pandera.errors
import pyarrow as pa
import pytest

from lakehouse.defs.publishing import publish, stage_batches, stage_query
from lakehouse.quality.enforcement import (
    ChunkedSchemaValidator,
    SchemaViolation,
    failure_cases_table,
)
from lakehouse.quality.schemas import AdsVehicleHourlyStat, DwdVehicleGps, OdsVehicleGpsRaw
from lakehouse.tables import ADS_SCHEMA, ADS_TABLE, DWD_SCHEMA, DWD_TABLE
from lakehouse.warehouse.partition_store import read_partition
from lakehouse_tests.conftest import HOUR


def _dwd(**overrides) -> pa.Table:
    row = {
        "vin": "VIN001",
        "event_time": datetime(2025, 9, 17, 23),
        "lng": 120.0,
        "lat": 30.0,
        "speed": 10.0,
        "loc_valid": True,
    }
    rows = [row, {**row, **overrides}]
    return pa.Table.from_pylist(rows, schema=DWD_SCHEMA.remove_metadata())


def _ads(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ADS_SCHEMA)


ADS_ROW = {
    "vin": "VIN001",
    "stat_hour": "2025-09-17 23",
    "total_distance": 1.0,
    "total_distance_haversine": 0.9,
    "avg_speed": 10.0,
}


def test_valid_frames_pass_every_layer_schema():
    DwdVehicleGps.validate(_dwd())
    AdsVehicleHourlyStat.validate(_ads([ADS_ROW]))


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"speed": -1.0}, "greater_than_or_equal_to(0)"),
        ({"loc_valid": False}, "loc_valid must equal"),
        ({"lat": 95.0}, "loc_valid must equal"),
        ({"vin": ""}, "str_length"),
    ],
)
def test_dwd_violations_are_caught(overrides, check):
    validator = ChunkedSchemaValidator(DWD_TABLE, DwdVehicleGps)
    with pytest.raises(SchemaViolation) as caught:
        validator(_dwd(**overrides))
    assert any(check in str(c) for c in caught.value.failure_cases["check"])
    assert validator.rows_validated == 0


def test_ads_duplicate_vin_bad_hour_and_negative_distance_are_caught():
    bad = [ADS_ROW, {**ADS_ROW, "stat_hour": "2025-09-17T23", "total_distance": -3.0}]
    with pytest.raises(pandera.errors.SchemaErrors) as caught:
        AdsVehicleHourlyStat.validate(_ads(bad), lazy=True)
    checks = set(failure_cases_table(caught.value.failure_cases).column("check").to_pylist())
    assert {"field_uniqueness", "greater_than_or_equal_to(0)"} <= checks
    assert any(c.startswith("str_matches") for c in checks)


def test_ods_wrong_dtype_and_extra_column_are_caught():
    frame = pa.table(
        {
            "vin": ["V"],
            "device_id": ["D"],
            "report_time": ["t"],
            "lng": ["not a number"],
            "lat": [1.0],
            "speed": [1.0],
            "raw_payload": ["p"],
            "surprise": [1],
        }
    )
    with pytest.raises(pandera.errors.SchemaErrors) as caught:
        OdsVehicleGpsRaw.validate(frame, lazy=True)
    checks = set(failure_cases_table(caught.value.failure_cases).column("check").to_pylist())
    assert "column_in_schema" in checks
    assert any("dtype" in c for c in checks)


def test_publish_refuses_violating_rows_and_shows_the_cases(local_storage, catalog):
    warehouse = local_storage.warehouse()
    publish(stage_batches(warehouse, ADS_TABLE, HOUR, _ads([ADS_ROW]).to_batches()), catalog)
    bad = _ads([{**ADS_ROW, "avg_speed": -7.5}])
    with pytest.raises(dg.Failure) as caught:
        stage_batches(warehouse, ADS_TABLE, HOUR, bad.to_batches())
    assert "-7.5" in caught.value.metadata["failure_cases"].value
    assert caught.value.metadata["failures"].value == 1
    still = read_partition(warehouse, ADS_TABLE, HOUR).to_table().to_pylist()
    assert still == [ADS_ROW]


def test_engine_written_partitions_are_validated_before_publishing(local_storage, catalog):
    warehouse = local_storage.warehouse()
    good = "SELECT 'VIN001' AS vin, '2025-09-17 23' AS stat_hour, 1.0::DOUBLE AS total_distance, " \
        "0.9::DOUBLE AS total_distance_haversine, 10.0::DOUBLE AS avg_speed"  # fmt: skip
    with duckdb.connect() as con:
        publish(stage_query(warehouse, con, ADS_TABLE, HOUR, good), catalog)
        duplicated = f"{good} UNION ALL {good}"
        with pytest.raises(dg.Failure) as caught:
            stage_query(warehouse, con, ADS_TABLE, HOUR, duplicated)
    assert "field_uniqueness" in caught.value.metadata["failure_cases"].value
    assert read_partition(warehouse, ADS_TABLE, HOUR).to_table().to_pylist() == [ADS_ROW]
    assert warehouse.list_files("_staging", recursive=True) == []
