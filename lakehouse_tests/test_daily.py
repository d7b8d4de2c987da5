"""The daily layer: DWS from a hand-built day, late hours, fleet KPIs, and the nightly batch.

A day of three vehicles is built hour by hour through the real hourly job (one hour held back),
then rolled up by the real nightly job; every number is compared with an independent Python
computation from the same raw rows (``lakehouse_tests.reference``).
"""

from __future__ import annotations

import json
import math
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.definitions import defs
from lakehouse.defs.checks import DAY_COMPLETE_CHECK
from lakehouse.defs.dws.assets import dws_vehicle_daily_stat
from lakehouse.defs.dws.schedules import day_ended_before, nightly_batch
from lakehouse.partitions import DayPartition, HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, DWD_TABLE, DWS_TABLE, KPI_TABLE, ODS_SCHEMA
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    DAGSTER,
    lakehouse_resources,
    project_dir,
    subprocess_env,
    write_raw,
)
from lakehouse_tests.reference import daily_reference, reference

DAY = DayPartition.from_key("2025-09-17")
HOURS = [HourPartition(DAY.start + timedelta(hours=h)) for h in range(24)]
LATE = HOURS[5]  # held back, lands after the day was built


def _rows(hour: HourPartition) -> list[dict]:
    """Hand-built reports of the hour: A moves every hour, B never has a valid location, C
    reports in a few hours (among them the late one)."""
    h = hour.start.hour
    rows = []
    for i in range(3):
        when = f"{hour.dt} {hour.hh}:{10 * i:02d}:00".encode()
        rows.append(_row(b"VIN_A", when, 120 + h / 10 + i / 100, 30 + i / 200, 40.0 + h + i))
    if h % 4 == 0:
        rows.append(_row(b"VIN_B", f"{hour.dt} {hour.hh}:05:00".encode(), 120.0, 95.0, 12.0))
    if h in (2, 5, 9):
        rows.append(_row(b"VIN_C", f"{hour.dt} {hour.hh}:30:00".encode(), 121.0, 31.0, 80.0))
        rows.append(_row(b"VIN_C", f"{hour.dt} {hour.hh}:40:00".encode(), 121.1, 31.2, 90.0))
    return rows


def _row(vin: bytes, when: bytes, lng: float, lat: float, speed: float) -> dict:
    return {"vin": vin, "device_id": b"D", "report_time": when, "lng": lng, "lat": lat,
            "speed": speed, "raw_payload": b"p"}  # fmt: skip


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(
        [{k: v.decode() if isinstance(v, bytes) else v for k, v in r.items()} for r in rows],
        schema=ODS_SCHEMA,
    )


def _dws(storage: LakehouseStorage) -> dict[str, dict]:
    path = storage.warehouse().path(partition_relpath(DWS_TABLE, DAY.hive_path))
    return {r["vin"]: r for r in pq.read_table(path).to_pylist()}


def _assert_matches(published: dict[str, dict], expected: dict[str, dict]) -> None:
    assert set(published) == set(expected)
    for vin, want in expected.items():
        got = published[vin]
        assert got["stat_date"] == DAY.key
        for column in ("active_hours", "valid_points", "invalid_points"):
            assert got[column] == want[column], (vin, column)
        for column in ("total_distance", "total_distance_haversine", "avg_speed", "max_speed"):
            if want[column] is None:
                assert got[column] is None, (vin, column)
            else:
                assert math.isclose(got[column], want[column], rel_tol=1e-9), (vin, column)


@pytest.fixture(scope="module")
def built_day(tmp_path_factory):
    """23 hours through the hourly job, then the nightly job for the day, on one instance."""
    root = tmp_path_factory.mktemp("day")
    (root / "raw" / "ods_vehicle_gps_raw").mkdir(parents=True)
    storage = LakehouseStorage(raw_url=str(root / "raw"), warehouse_url=str(root / "warehouse"))
    catalog = CatalogResource(path=str(root / "catalog.duckdb"))
    instance = dg.DagsterInstance.ephemeral()
    resources = lakehouse_resources(storage, catalog)
    hourly = defs.resolve_job_def("hourly_lakehouse_job")
    for hour in HOURS:
        if hour != LATE:
            write_raw(storage.raw(), "part.parquet", _table(_rows(hour)), hour)
            result = hourly.execute_in_process(
                partition_key=hour.key, resources=resources, instance=instance
            )
            assert result.success
    result = _build_dws(resources, instance)
    assert result.success
    return storage, catalog, instance, resources, result


def _build_dws(resources: dict, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The day's DWS, as the nightly job builds it (its other daily assets are tested apart)."""
    return dg.materialize(
        [dws_vehicle_daily_stat],
        partition_key=DAY.key,
        resources=resources,
        instance=instance,
    )


def test_dws_equals_an_independent_computation_and_reports_the_missing_hour(built_day):
    storage, _, _, _, result = built_day
    landed = {h.key: _rows(h) for h in HOURS if h != LATE}
    _assert_matches(_dws(storage), daily_reference(landed))
    published = _dws(storage)
    # B only ever had invalid locations: a row, zero distance, no speed.
    assert published["VIN_B"]["total_distance"] == 0.0
    assert published["VIN_B"]["avg_speed"] is None and published["VIN_B"]["valid_points"] == 0
    (event,) = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["hours_present"].value == 23
    assert meta["hours_missing"].value == [LATE.key]
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.check_name == DAY_COMPLETE_CHECK
    ]
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN


def test_fleet_kpis_equal_a_direct_computation_over_ads_and_dwd(built_day):
    storage, _, _, _, _ = built_day
    warehouse = storage.warehouse()
    for hour in (HOURS[0], HOURS[2], HOURS[23]):
        kpi = pq.read_table(warehouse.path(partition_relpath(KPI_TABLE, hour))).to_pylist()
        dwd, ads = reference(_rows(hour))
        valid = [speed for *_, speed, ok in dwd if ok]
        assert kpi == [
            {
                "stat_hour": hour.stat_hour,
                "vehicles": len(ads),
                "total_distance": pytest.approx(sum(a[0] for a in ads.values()), rel=1e-12),
                "total_distance_haversine": pytest.approx(
                    sum(a[1] for a in ads.values()), rel=1e-12
                ),
                "avg_speed": pytest.approx(sum(valid) / len(valid), rel=1e-12),
                "invalid_point_share": pytest.approx(
                    sum(1 for row in dwd if not row[-1]) / len(dwd), rel=1e-12
                ),
            }
        ]
        ads_file = warehouse.path(partition_relpath(ADS_TABLE, hour))
        dwd_file = warehouse.path(partition_relpath(DWD_TABLE, hour))
        with duckdb.connect() as con:
            direct = con.sql(
                f"SELECT (SELECT count(*) FROM '{ads_file}'), "
                f"(SELECT avg(speed) FROM '{dwd_file}' WHERE loc_valid)"
            ).fetchall()[0]
        assert kpi[0]["vehicles"] == direct[0]
        assert kpi[0]["avg_speed"] == pytest.approx(direct[1], rel=1e-12)


def test_a_late_hour_rebuilds_its_day_and_the_numbers_follow(built_day):
    storage, _, instance, resources, _ = built_day
    dws = dg.AssetSelection.assets(DWS_TABLE)
    evening = datetime(2025, 9, 18, 3, 0, tzinfo=UTC)
    before = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=dws, evaluation_time=evening
    )
    assert before.total_requested == 0  # built, and an hour is still missing

    write_raw(storage.raw(), "part.parquet", _table(_rows(LATE)), LATE)
    hourly = defs.resolve_job_def("hourly_lakehouse_job")
    assert hourly.execute_in_process(
        partition_key=LATE.key, resources=resources, instance=instance
    ).success
    after = dg.evaluate_automation_conditions(
        defs=defs,
        instance=instance,
        asset_selection=dws,
        evaluation_time=evening + timedelta(minutes=1),
        cursor=before.cursor,
    )
    assert after.total_requested == 1
    (requested,) = after.get_requested_partitions(dg.AssetKey(DWS_TABLE))
    assert requested == DAY.key

    rebuilt = _build_dws(resources, instance)
    assert rebuilt.success
    _assert_matches(_dws(storage), daily_reference({h.key: _rows(h) for h in HOURS}))
    assert _dws(storage)["VIN_C"]["active_hours"] == 3  # the late hour counts now
    (check,) = [
        c for c in rebuilt.get_asset_check_evaluations() if c.check_name == DAY_COMPLETE_CHECK
    ]
    assert check.passed


def test_a_day_some_hours_never_reach_is_built_after_its_grace(tmp_path):
    storage = LakehouseStorage(
        raw_url=str(tmp_path / "raw"), warehouse_url=str(tmp_path / "warehouse")
    )
    (tmp_path / "raw" / "ods_vehicle_gps_raw").mkdir(parents=True)
    resources = lakehouse_resources(storage, CatalogResource(path=str(tmp_path / "c.duckdb")))
    instance = dg.DagsterInstance.ephemeral()
    write_raw(storage.raw(), "part.parquet", _table(_rows(HOURS[1])), HOURS[1])
    hourly = defs.resolve_job_def("hourly_lakehouse_job")
    assert hourly.execute_in_process(
        partition_key=HOURS[1].key, resources=resources, instance=instance
    ).success
    dws = dg.AssetSelection.assets(DWS_TABLE)
    early = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=dws,
        evaluation_time=datetime(2025, 9, 18, 1, 0, tzinfo=UTC),
    )  # fmt: skip
    assert early.total_requested == 0  # closed one hour ago: within the 2 h grace
    late = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=dws,
        evaluation_time=datetime(2025, 9, 18, 2, 5, tzinfo=UTC), cursor=early.cursor,
    )  # fmt: skip
    assert late.get_requested_partitions(dg.AssetKey(DWS_TABLE)) == {DAY.key}


@pytest.mark.parametrize(
    ("tick", "expected"),
    [
        (datetime(2025, 9, 18, 0, 30, tzinfo=UTC), "2025-09-17"),
        (datetime(2025, 9, 18, 23, 59, tzinfo=UTC), "2025-09-17"),
        # 00:30 in Shanghai is 16:30 UTC the day before: the last UTC day that has ended.
        (datetime(2025, 9, 18, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai")), "2025-09-16"),
        # 00:30 in Los Angeles is 07:30 UTC the same day.
        (datetime(2025, 9, 18, 0, 30, tzinfo=ZoneInfo("America/Los_Angeles")), "2025-09-17"),
    ],
)
def test_the_nightly_schedule_builds_the_day_that_ended(tick, expected):
    assert day_ended_before(tick) == expected
    context = dg.build_schedule_context(scheduled_execution_time=tick)
    request = nightly_batch(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == expected
    assert request.run_key == f"nightly@{expected}"
    assert nightly_batch.cron_schedule == "30 0 * * *"
    assert nightly_batch.execution_timezone == "UTC"


def test_the_nightly_chain_from_the_cli(tmp_path: Path):
    """As an operator would: a generated day's hours land, then `dagster job execute` runs the
    nightly job (DWS, dashboard, ML training set and model) in its own process."""
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work), LAKEHOUSE_MASKING_SALT="nightly-test-salt")
    storage = LakehouseStorage(
        raw_url=str(work / "data" / "raw"), warehouse_url=str(work / "data" / "warehouse")
    )
    write_sample_data(
        storage.raw(create=True), start=DAY.start, hours=24, vehicles=30, interval_s=60, seed=3
    )
    catalog = CatalogResource(path=str(work / "data" / "catalog.duckdb"))
    hourly = defs.resolve_job_def("hourly_lakehouse_job")
    with dg.DagsterInstance.ephemeral() as instance:
        for hour in HOURS:
            assert hourly.execute_in_process(
                partition_key=hour.key,
                resources=lakehouse_resources(storage, catalog),
                instance=instance,
            ).success
    done = subprocess.run(
        [DAGSTER, "job", "execute", "-m", "lakehouse.definitions", "-j", "nightly_lakehouse_job",
         "--tags", json.dumps({"dagster/partition": DAY.key})],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    warehouse = storage.warehouse()
    with duckdb.connect() as con:
        dws = warehouse.path(partition_relpath(DWS_TABLE, DAY.hive_path))
        ads = warehouse.path(ADS_TABLE, f"dt={DAY.key}", "hh=*", "part-0.parquet")
        (vehicles, daily_km, hours), (hourly_km,) = (
            con.sql(
                f"SELECT count(*), sum(total_distance), sum(active_hours) FROM '{dws}'"
            ).fetchall()[0],
            con.sql(f"SELECT sum(total_distance) FROM '{ads}'").fetchall()[0],
        )
    assert (vehicles, hours) == (30, 30 * 24)
    assert daily_km == pytest.approx(hourly_km, rel=1e-12)  # daily and hourly reconcile
    for built in (
        f"ml_gps_training_set/dt={DAY.key}/split=train/part-0.parquet",
        f"ml_speed_model/dt={DAY.key}/speed_model.pt",
        "_dashboards/fleet_dashboard.png",
    ):
        assert warehouse.exists(built), built
    with duckdb.connect(str(work / "data" / "catalog.duckdb"), read_only=True) as con:
        assert con.sql(f"SELECT count(*) FROM {DWS_TABLE}").fetchall() == [(30,)]
