"""pandera schemas catch violating data, and a violation never reaches the warehouse."""

from __future__ import annotations

import re
from datetime import datetime

import dagster as dg
import duckdb
import pandera.errors
import pandera.pyarrow as pandera_pa
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.defs.publishing import publish, stage_batches, stage_query
from lakehouse.quality.enforcement import (
    ChunkedSchemaValidator,
    SchemaViolation,
    failure_cases_table,
    rules_values,
)
from lakehouse.quality.schemas import AdsVehicleHourlyStat, DwdVehicleGps, OdsVehicleGpsRaw
from lakehouse.rules import NOT_BLANK_PATTERN
from lakehouse.tables import ADS_SCHEMA, ADS_TABLE, DWD_SCHEMA, DWD_TABLE, ODS_SCHEMA, ODS_TABLE
from lakehouse.warehouse.partition_store import read_partition, validated_row_groups
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
        ({"vin": ""}, "str_contains"),
        ({"vin": " \u200b\t"}, "str_contains"),
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


# --- Validating rows that are read but not written (ODS files joined as they are) ---


def _validated_whole(validator: ChunkedSchemaValidator, batch: pa.RecordBatch) -> None:
    """The reference: every row decoded into the table's types and validated, as written."""
    for _ in validated_row_groups([batch], ODS_SCHEMA, validator):
        pass


@st.composite
def _ods_batch(draw) -> pa.RecordBatch:
    """Rows in the ODS columns: NULLs, NaN, any text; strings plain or dictionary-encoded; at
    times a column of another type (one whose cast may fail on its values, or may not)."""
    rows = draw(st.integers(0, 12))
    columns = {}
    for f in ODS_SCHEMA:
        if f.type == pa.string():
            values = st.one_of(st.none(), st.text(max_size=4))
            column = pa.array(draw(st.lists(values, min_size=rows, max_size=rows)), pa.string())
            if draw(st.booleans()):
                column = column.dictionary_encode()
        else:
            values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
            column = pa.array(draw(st.lists(values, min_size=rows, max_size=rows)), pa.float64())
        columns[f.name] = column
    deviation = draw(st.sampled_from([None, None, "int_speed", "text_lat", "int_vin"]))
    if deviation == "int_speed":
        columns["speed"] = pa.array(range(rows), pa.int64())
    elif deviation == "text_lat":  # numbers, then (maybe) text: the cast fails only from there
        numbers = draw(st.integers(0, rows))
        columns["lat"] = pa.array(["1.5"] * numbers + ["x"] * (rows - numbers))
    elif deviation == "int_vin":
        columns["vin"] = pa.array(range(rows), pa.int32())
    return pa.RecordBatch.from_pydict(columns)


def _verdict(check, batches: list[pa.RecordBatch]) -> tuple:
    validator = ChunkedSchemaValidator(ODS_TABLE, OdsVehicleGpsRaw)
    try:
        for batch in batches:
            check(validator, batch)
    except (SchemaViolation, pa.ArrowInvalid, pa.ArrowNotImplementedError) as failed:
        return ("failed", type(failed).__name__)
    # repr: the preview's NaNs compare as text
    head = repr(validator.head.to_pylist()) if validator.head is not None else None
    return ("passed", validator.rows_validated, head)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(_ods_batch(), min_size=1, max_size=4))
def test_accounting_unwritten_rows_gives_the_whole_validation_verdict(batches):
    """ODS has no rule about values, so a batch is validated as a sample of each Arrow schema;
    the verdict, the rows counted and the preview must be those of validating every row."""
    whole = _verdict(_validated_whole, batches)
    accounted = _verdict(lambda v, b: v.account(b, ODS_SCHEMA), batches)
    assert accounted == whole


class _OdsWithValueRule(OdsVehicleGpsRaw):
    """ODS as it would be with one rule about values."""

    lat: pa.float64() = pandera_pa.Field(nullable=True, ge=-90, le=90)


def test_a_schema_with_value_rules_is_validated_on_every_row():
    assert not rules_values(OdsVehicleGpsRaw)
    assert rules_values(DwdVehicleGps) and rules_values(AdsVehicleHourlyStat)
    assert rules_values(_OdsWithValueRule)
    rows = {f.name: [None] * 8 for f in ODS_SCHEMA}
    rows["lat"] = [10.0] * 7 + [95.0]  # the one bad value is far past any sample
    batch = pa.RecordBatch.from_pydict(rows, schema=ODS_SCHEMA)
    validator = ChunkedSchemaValidator(ODS_TABLE, _OdsWithValueRule)
    with pytest.raises(SchemaViolation) as caught:
        validator.account(batch, ODS_SCHEMA)
    assert caught.value.total_failures == 1
    # Without the rule, the same rows pass and are all counted.
    plain = ChunkedSchemaValidator(ODS_TABLE, OdsVehicleGpsRaw)
    plain.account(batch, ODS_SCHEMA)
    plain.account(batch, ODS_SCHEMA)
    assert (plain.rows_validated, plain.chunks_validated) == (16, 1)


# --- DWD's visible-VIN rule, matched once per distinct VIN ---

_VISIBLE = re.compile(NOT_BLANK_PATTERN)
_BLANKS = " \t\x00\x85\xa0\u1680\u2000\u200b\u2028\u3000\ufeff"


@settings(max_examples=200, deadline=None)
@given(
    vins=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["WVW123", "LSV9", "x"]),  # repeated, as in an hour
            st.text(alphabet=_BLANKS, max_size=3),  # blank, empty
            st.text(max_size=3),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_visible_vin_rule_fails_exactly_the_blank_rows(vins):
    """Against Python's ``re`` on every row: the rows reported are exactly the blank or empty
    VINs, whatever the repetition; NULLs are the non-null rule's, not this one's."""
    rows = [{**_dwd().to_pylist()[0], "vin": v} for v in vins]
    table = pa.Table.from_pylist(rows, schema=DWD_SCHEMA.remove_metadata())
    blank = sorted({v for v in vins if v is not None and not _VISIBLE.search(v)})
    try:
        DwdVehicleGps.validate(table, lazy=True)
        reported = []
    except pandera.errors.SchemaErrors as caught:
        cases = failure_cases_table(caught.failure_cases).to_pylist()
        reported = sorted(
            {c["failure_case"] for c in cases if c["check"].startswith("str_contains")}
        )
    assert reported == blank
