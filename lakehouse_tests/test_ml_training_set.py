"""The GPS training set: features, targets, split, privacy and failure modes, on a hand-built day.

The day goes through the real hourly job (ODS -> DWD -> ADS -> shares) for its hours, then the
training-set asset, all in process; every expectation is recomputed in plain Python
(``ml_support.expected_rows``), never by the SQL under test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pandera.errors
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse.defs.checks import SCHEMA_CHECK
from lakehouse.defs.ml import features
from lakehouse.defs.ml.features import split_predicate
from lakehouse.governance.masking import SALT_ENV
from lakehouse.quality.enforcement import failure_cases_table
from lakehouse.quality.schemas import MlGpsTrainingSet
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sql_text import quote_literal
from lakehouse.tables import DWD_TABLE, ML_TRAINING_SCHEMA, ML_TRAINING_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import materialization_metadata
from lakehouse_tests.ml_support import (
    DAY,
    VINS,
    HandDay,
    build_hand_day,
    expected_rows,
    materialize_ml,
    pick_salt,
    split_of,
    vehicle_id,
)

SPLITS = ("train", "validation")


@pytest.fixture(scope="module")
def hand_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandDay]:
    salt = pick_salt()
    with pytest.MonkeyPatch.context() as env:
        env.setenv(SALT_ENV, salt)
        yield build_hand_day(tmp_path_factory.mktemp("hand-day"), salt)


def _close(actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.keys() == want.keys()
        for column, value in want.items():
            if isinstance(value, float):
                assert got[column] == pytest.approx(value, rel=1e-12, abs=1e-12), column
            else:
                assert got[column] == value, (column, got, want)


def test_features_and_targets_equal_a_plain_python_computation(hand_day: HandDay) -> None:
    expected = expected_rows(hand_day.salt)
    for split in SPLITS:
        _close(hand_day.split_rows(split), expected[split])
    # The hand-built cases are all there: V1's first point is from the day before, ties,
    # unknown distances around invalid points, and vehicles with a single point give no row.
    train_and_validation = expected["train"] + expected["validation"]
    assert len(train_and_validation) == 24
    assert {r["seconds_since_midnight"] for r in train_and_validation} >= {86390}
    assert sum(r["delta_km"] is None for r in train_and_validation) == 14
    assert vehicle_id(hand_day.salt, VINS[2]) not in {r["vehicle_id"] for r in train_and_validation}


def test_first_point_of_a_vehicle_has_no_deltas_and_last_point_is_dropped(
    hand_day: HandDay,
) -> None:
    rows = hand_day.split_rows("train") + hand_day.split_rows("validation")
    by_vehicle: dict[str, list[dict]] = {}
    for row in rows:
        by_vehicle.setdefault(row["vehicle_id"], []).append(row)
    assert len(by_vehicle) == 4  # V3 reported once: its only point is its last
    for points in by_vehicle.values():
        first, *rest = points
        assert (first["delta_seconds"], first["delta_km"], first["delta_speed"]) == (
            None,
            None,
            None,
        )
        assert all(p["delta_seconds"] is not None for p in rest)
    v2 = by_vehicle[vehicle_id(hand_day.salt, VINS[1])]
    # V2 has two points: one row, the first, whose target is the second point's speed.
    assert [(p["speed"], p["target_next_speed"]) for p in v2] == [(50.0, 55.0)]


def test_split_is_by_hashed_vehicle_and_deterministic(hand_day: HandDay) -> None:
    ids = {split: {r["vehicle_id"] for r in hand_day.split_rows(split)} for split in SPLITS}
    assert ids["train"] and ids["validation"]
    assert not ids["train"] & ids["validation"]
    for split, vehicles in ids.items():
        assert {split_of(v) for v in vehicles} == {split}
    metadata = materialization_metadata(hand_day.result, ML_TRAINING_TABLE)
    assert metadata["vehicles_train"].value == len(ids["train"]) == 3
    assert metadata["vehicles_validation"].value == len(ids["validation"]) == 1
    for split in SPLITS:
        assert metadata[f"rows_{split}"].value == len(hand_day.split_rows(split))


@pytest.mark.parametrize(
    ("prefix", "split"),
    [("0000", "validation"), ("1999", "validation"), ("199a", "train"), ("ffff", "train")],
)
def test_split_rule_at_its_boundary(prefix: str, split: str) -> None:
    """The SQL predicate puts the first 0x199a of 0x10000 id prefixes (10.0%) in validation."""
    vid = prefix + "e" * 60
    with duckdb.connect() as con:
        chosen = [
            s
            for s in SPLITS
            if con.execute(f"SELECT {split_predicate(quote_literal(vid), s)}").fetchall()[0][0]
        ]
    assert chosen == [split] == [split_of(vid)] == [features.split_of(vid)]


def test_rows_are_stored_in_hashed_id_order(hand_day: HandDay) -> None:
    for split in SPLITS:
        ids = [r["vehicle_id"] for r in hand_day.split_rows(split)]
        assert ids == sorted(ids)
    # Raw-VIN order would differ for this fleet: the check above could fail.
    ordered_by_vin = [vehicle_id(hand_day.salt, v) for v in sorted(VINS)]
    assert ordered_by_vin != sorted(ordered_by_vin)


def test_no_raw_vin_in_values_file_bytes_or_statistics(hand_day: HandDay) -> None:
    zone = hand_day.storage.warehouse()
    files = [hand_day.split_path(split) for split in SPLITS]
    for path in files:
        payload = Path(path).read_bytes()
        table = pq.read_table(path)
        values = [str(v) for column in table.columns for v in column.to_pylist()]
        parquet = pq.ParquetFile(path)
        stats = [
            repr(group.column(c).statistics)
            for g in range(parquet.metadata.num_row_groups)
            for group in [parquet.metadata.row_group(g)]
            for c in range(group.num_columns)
        ]
        footer = repr(parquet.metadata.metadata) + repr(parquet.schema_arrow)
        for vin in VINS:
            assert vin.encode() not in payload
            assert not any(vin in value for value in values)
            assert not any(vin in s for s in stats)
            assert vin not in footer
        assert table.schema.names[0] == "vehicle_id" and "vin" not in table.schema.names
    # The byte scan finds VINs where they are: DWD's footer statistics hold raw min/max VINs.
    dwd_hour = zone.path(partition_relpath(DWD_TABLE, f"dt={DAY}/hh=00"))
    assert any(vin.encode() in Path(dwd_hour).read_bytes() for vin in VINS)
    # Nor does the run's metadata (preview, paths) show one.
    metadata = materialization_metadata(hand_day.result, ML_TRAINING_TABLE)
    shown = repr(dict(metadata.items()))
    assert not any(vin in shown for vin in VINS)
    assert hand_day.split_rows("train")[0]["vehicle_id"] in shown  # the preview shows ids


def test_missing_hours_are_reported_and_the_day_builds_from_the_rest(hand_day: HandDay) -> None:
    metadata = materialization_metadata(hand_day.result, ML_TRAINING_TABLE)
    assert metadata["hours_present"].value == 3
    assert metadata["hours_missing"].value == 21
    assert metadata["present_hours"].value == "00, 01, 03"
    missing = metadata["missing_hours"].value.split(", ")
    assert "02" in missing and len(missing) == 21
    assert metadata["feature_columns"].value == [
        "seconds_since_midnight",
        "hour_of_day",
        "speed",
        "delta_seconds",
        "delta_km",
        "delta_speed",
        "loc_valid",
    ]
    assert metadata["path"].value.endswith(f"{ML_TRAINING_TABLE}/dt={DAY}")
    assert metadata["preview"].value.records  # the first train rows
    (check,) = hand_day.result.get_asset_check_evaluations()
    assert check.check_name == SCHEMA_CHECK and check.passed
    assert check.metadata["rows_validated"].value == 24


def test_catalog_view_reads_both_splits(hand_day: HandDay) -> None:
    with duckdb.connect(hand_day.catalog.path, read_only=True) as con:
        counts = dict(
            con.execute(
                f"SELECT split, count(*) FROM {ML_TRAINING_TABLE} WHERE dt = '{DAY}' GROUP BY split"
            ).fetchall()
        )
    assert counts == {s: len(hand_day.split_rows(s)) for s in SPLITS}


def test_rerun_is_byte_identical(hand_day: HandDay, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {s: Path(hand_day.split_path(s)).read_bytes() for s in SPLITS}
    monkeypatch.setenv(SALT_ENV, hand_day.salt)
    rerun = materialize_ml(hand_day.storage, hand_day.catalog)
    assert rerun.success
    assert {s: Path(hand_day.split_path(s)).read_bytes() for s in SPLITS} == before


def test_refuses_without_the_salt_and_keeps_the_published_day(
    hand_day: HandDay, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {s: Path(hand_day.split_path(s)).read_bytes() for s in SPLITS}
    monkeypatch.delenv(SALT_ENV, raising=False)
    result = materialize_ml(
        hand_day.storage,
        hand_day.catalog,
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert SALT_ENV in message and "salted SHA-256 of the VIN" in message
    assert {s: Path(hand_day.split_path(s)).read_bytes() for s in SPLITS} == before


def test_a_day_without_any_hour_fails_clearly(tmp_path: Path, hand_day: HandDay) -> None:
    empty = LakehouseStorage(
        raw_url=hand_day.storage.raw_url, warehouse_url=str(tmp_path / "warehouse")
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv(SALT_ENV, hand_day.salt)
        result = materialize_ml(empty, hand_day.catalog, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "none of its 24 DWD hours is materialized" in failure.step_failure_data.error.message
    assert not (tmp_path / "warehouse" / ML_TRAINING_TABLE).exists()


def _one_row(**change: object) -> pa.Table:
    row = {
        "vehicle_id": "0" * 64,
        "seconds_since_midnight": 3600,
        "hour_of_day": 1,
        "speed": 10.0,
        "delta_seconds": 30.0,
        "delta_km": 0.1,
        "delta_speed": 1.0,
        "loc_valid": True,
        "target_next_speed": 11.0,
        **change,
    }
    return pa.Table.from_pylist([row], schema=ML_TRAINING_SCHEMA)


@pytest.mark.parametrize(
    "change",
    [
        {"vehicle_id": VINS[0]},  # a raw VIN where the hashed id belongs
        {"hour_of_day": 2},  # disagrees with seconds_since_midnight
        {"delta_km": float("inf")},
        {"delta_seconds": float("nan")},
        {"delta_km": 0.1, "loc_valid": False},  # a distance without a valid location
        {"delta_seconds": None},  # a first point keeps no delta_speed
        {"target_next_speed": 501.0},
    ],
)
def test_schema_refuses_rows_the_training_set_never_holds(change: dict) -> None:
    MlGpsTrainingSet.validate(_one_row(), lazy=True)  # the unchanged row passes
    with pytest.raises(pandera.errors.SchemaErrors):
        MlGpsTrainingSet.validate(_one_row(**change), lazy=True)


_HASHES = ["0" * 64, "ab" * 32, "0123456789abcdef" * 4]
_NOT_HASHES = ["AB" * 32, "0" * 63, "0" * 65, "0" * 64 + "\n", "", VINS[0], "g" + "0" * 63]


@settings(max_examples=80, deadline=None)
@given(ids=st.lists(st.sampled_from(_HASHES + _NOT_HASHES) | st.text(max_size=4), max_size=40))
def test_hashed_id_rule_fails_exactly_the_ids_that_are_not_hashes(ids: list[str]) -> None:
    """Against Python's ``re`` on every row: the ids reported are exactly those that are not
    64 lower-case hex digits, however often each repeats (the rule matches distinct ids)."""
    table = pa.concat_tables([_one_row(vehicle_id=i) for i in ids] or [_one_row()])
    wrong = sorted({i for i in ids if not re.fullmatch(r"[0-9a-f]{64}", i)})
    try:
        MlGpsTrainingSet.validate(table, lazy=True)
        reported = []
    except pandera.errors.SchemaErrors as caught:
        cases = failure_cases_table(caught.failure_cases).to_pylist()
        checks = {c["failure_case"]: c["check"] for c in cases}
        reported = sorted(i for i, check in checks.items() if check.startswith("str_matches"))
    assert reported == wrong


def test_asset_reads_the_days_hours_through_its_partition_mapping() -> None:
    from lakehouse.definitions import defs

    graph = defs.resolve_asset_graph()
    key = dg.AssetKey(ML_TRAINING_TABLE)
    (dep,) = [d for d in graph.get(key).parent_keys]
    mapping = graph.get_partition_mapping(key, dep)
    assert dep == dg.AssetKey(DWD_TABLE)
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert graph.get(key).group_name == "ml"
