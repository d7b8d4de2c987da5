"""The fleet dashboard: drawn from the right hours and days, published, refreshed, shown in the UI.

A small fleet's 30 sample hours across two days go through the real hourly job (two held back,
so the hours have gaps), the first day's DWS, then the real nightly job for the second day,
which builds its DWS and then draws the dashboard. The plotted series (the metadata tables) are
compared with SQL straight over the published partitions, the daily figures with an independent
computation from ADS and DWD.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from PIL import Image

from lakehouse.definitions import defs
from lakehouse.defs.dashboard.assets import (
    DAILY_ENTRY,
    DASHBOARD_KEY,
    HOURLY_ENTRY,
    IMAGE_ENTRY,
    fleet_dashboard,
)
from lakehouse.defs.dashboard.plot import SIZE_PX
from lakehouse.defs.dashboard.series import gather_fleet_series, sample_positions
from lakehouse.defs.dws.assets import dws_vehicle_daily_stat
from lakehouse.partitions import HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.engine import compute_engine
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data.generator import write_sample_data
from lakehouse.tables import ADS_TABLE, DWD_TABLE, KPI_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    DAGSTER,
    free_port,
    lakehouse_resources,
    project_dir,
    running,
    subprocess_env,
    wait_until,
)

START = datetime(2025, 9, 17, 10)
HOURS = [HourPartition(START + timedelta(hours=h)) for h in range(30)]  # 10:00 to 15:00 next day
SKIPPED = {HOURS[10].key, HOURS[17].key}  # never run: gaps in the hours
DAYS = ("2025-09-17", "2025-09-18")
DASHBOARD = dg.AssetKey("fleet_dashboard")
MARKDOWN_IMAGE = re.compile(r"^!\[Fleet dashboard\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")


def _sample_warehouse(root: Path, hours: list[HourPartition]) -> tuple[LakehouseStorage, dict]:
    """Storage under ``root`` with the sample generator's raw files for ``hours``."""
    (root / "raw" / "ods_vehicle_gps_raw").mkdir(parents=True, exist_ok=True)
    storage = LakehouseStorage(raw_url=str(root / "raw"), warehouse_url=str(root / "warehouse"))
    write_sample_data(
        storage.raw(), start=hours[0].start, hours=len(hours), vehicles=40, interval_s=60,
        dirty=True, seed=9,
    )  # fmt: skip
    catalog = CatalogResource(path=str(root / "catalog.duckdb"))
    return storage, lakehouse_resources(storage, catalog)


def _run_hour(hour: HourPartition, resources: dict, instance: dg.DagsterInstance) -> None:
    job = defs.resolve_job_def("hourly_lakehouse_job")
    result = job.execute_in_process(partition_key=hour.key, resources=resources, instance=instance)
    assert result.success


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """28 of the 30 hours, the first day's DWS, then the nightly job for the second day (its
    DWS, then the dashboard), on one instance with real resources."""
    storage, resources = _sample_warehouse(tmp_path_factory.mktemp("dash"), HOURS)
    instance = dg.DagsterInstance.ephemeral()
    for hour in HOURS:
        if hour.key not in SKIPPED:
            _run_hour(hour, resources, instance)
    assert dg.materialize(
        [dws_vehicle_daily_stat], partition_key=DAYS[0], resources=resources, instance=instance
    ).success
    nightly = defs.resolve_job_def("nightly_lakehouse_job")
    with pytest.MonkeyPatch.context() as patch:  # the nightly job also builds the ML set
        patch.setenv("LAKEHOUSE_MASKING_SALT", "dashboard-test-salt")
        result = nightly.execute_in_process(
            partition_key=DAYS[1], resources=resources, instance=instance
        )
    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == DASHBOARD]
    return storage, event.materialization.metadata


def _glob(storage: LakehouseStorage, table: str) -> str:
    """All published partitions of an hourly table, for SQL straight over the warehouse."""
    path = storage.warehouse().path(table, "*", "*", "part-0.parquet")
    return f"read_parquet('{path}', hive_partitioning = true, hive_types_autocast = false)"


def _records(metadata: dict, entry: str) -> list[dict]:
    return [record.data for record in metadata[entry].value.records]


def _embedded_png(metadata: dict) -> bytes:
    match = MARKDOWN_IMAGE.match(metadata[IMAGE_ENTRY].value)
    assert match, metadata[IMAGE_ENTRY].value[:80]
    return base64.b64decode(match.group(1), validate=True)


def _assert_rows(got: list[dict], expected: list[tuple], columns: tuple[str, ...]) -> None:
    assert len(got) == len(expected)
    for row, want in zip(got, expected, strict=True):
        assert row[columns[0]] == want[0]
        assert row[columns[1]] == want[1]
        for column, value in zip(columns[2:], want[2:], strict=True):
            assert row[column] == pytest.approx(value, rel=1e-9), (row, column)


def test_the_hourly_series_are_the_published_kpi_hours(drawn):
    storage, metadata = drawn
    columns = ("stat_hour", "vehicles", "total_distance", "total_distance_haversine",
               "avg_speed", "invalid_point_share")  # fmt: skip
    with duckdb.connect() as con:
        expected = con.sql(
            f"SELECT {', '.join(columns)} FROM {_glob(storage, KPI_TABLE)} ORDER BY stat_hour"
        ).fetchall()
    assert len(expected) == 28  # fewer than 48: every hour with data, and only those
    assert metadata["hours_shown"].value == 28
    got = _records(metadata, HOURLY_ENTRY)
    _assert_rows(got, expected, columns)
    shown = {row["stat_hour"] for row in got}
    assert not shown & {HourPartition.from_key(k).stat_hour for k in SKIPPED}
    assert got[-1]["stat_hour"] == HOURS[-1].stat_hour == metadata["newest_hour"].value
    assert all(row["vehicles"] == 40 for row in got)


def test_the_daily_series_equal_an_independent_computation_from_ads_and_dwd(drawn):
    storage, metadata = drawn
    with duckdb.connect() as con:
        expected = con.sql(
            f"""WITH ads AS (
                    SELECT dt, count(DISTINCT vin) AS vehicles, sum(total_distance) AS km,
                           sum(total_distance_haversine) AS km_h
                    FROM {_glob(storage, ADS_TABLE)} GROUP BY dt),
                dwd AS (
                    SELECT dt, avg(speed) FILTER (WHERE loc_valid) AS speed,
                           avg(CASE WHEN loc_valid THEN 0.0 ELSE 1.0 END) AS invalid
                    FROM {_glob(storage, DWD_TABLE)} GROUP BY dt)
                SELECT dt, vehicles, km, km_h, speed, invalid
                FROM ads JOIN dwd USING (dt) ORDER BY dt"""
        ).fetchall()
    assert [row[0] for row in expected] == list(DAYS)
    # Drawn by the nightly run after the day it built: the newest day is in the picture.
    assert metadata["days_shown"].value == 2 and metadata["newest_day"].value == DAYS[1]
    columns = ("stat_date", "vehicles", "total_distance", "total_distance_haversine",
               "avg_speed", "invalid_point_share")  # fmt: skip
    _assert_rows(_records(metadata, DAILY_ENTRY), expected, columns)
    assert all(row[5] > 0 for row in expected)  # the dirt gives invalid locations to show


def test_the_png_is_published_and_embedded_at_its_size(drawn):
    storage, metadata = drawn
    png = _embedded_png(metadata)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == SIZE_PX == (1600, 1000)
        image.load()  # decodes every pixel
        assert len(image.getcolors(maxcolors=256 * 256) or ()) > 20  # a picture, not a blank
    path = metadata["path"].value
    assert path == storage.warehouse().path(DASHBOARD_KEY)
    assert Path(path).read_bytes() == png
    assert metadata["png_bytes"].value == len(png)
    assert len(metadata[IMAGE_ENTRY].value) < 200_000  # small enough to live in the event log


def test_the_map_samples_the_newest_hours_valid_positions(drawn):
    storage, metadata = drawn
    dwd_file = storage.warehouse().path(partition_relpath(DWD_TABLE, HOURS[-1]))
    source = f"read_parquet('{dwd_file}')"
    with duckdb.connect() as con:
        ((valid,),) = con.sql(f"SELECT count(*) FROM {source} WHERE loc_valid").fetchall()
    assert 2000 < valid < 20_000  # a small fleet: the whole hour is shown
    assert metadata["positions_in_newest_hour"].value == valid
    assert metadata["positions_shown"].value == valid
    with compute_engine().get_connection() as con:
        sample, counted = sample_positions(con, source, 500)
        again, _ = sample_positions(con, source, 500)
        con.register("sample", sample)
        ((kept,),) = con.sql(
            f"SELECT count(*) FROM sample s SEMI JOIN (SELECT * FROM {source} WHERE loc_valid) d "
            "ON s.lng = d.lng AND s.lat = d.lat AND s.speed = d.speed"
        ).fetchall()
    assert counted == valid
    assert sample.num_rows == 500 and kept == 500  # capped, and only valid positions
    assert sample.equals(again)  # the same hour draws the same map


def test_the_newest_partitions_are_found_across_gaps(drawn):
    storage, _ = drawn
    with compute_engine().get_connection() as con:
        series = gather_fleet_series(storage.warehouse(), con, hours=14, days=1)
    hours = series.hourly.column("stat_hour").to_pylist()
    expected = [h.stat_hour for h in HOURS if h.key not in SKIPPED][-14:]
    assert hours == expected  # the newest 14 with data, across a day and one of the gaps
    assert HOURS[17].stat_hour not in hours and hours[0] < HOURS[17].stat_hour < hours[-1]
    assert series.daily.column("stat_date").to_pylist() == [DAYS[-1]]


def test_an_empty_warehouse_draws_a_dashboard_that_says_so(tmp_path):
    storage = LakehouseStorage(warehouse_url=str(tmp_path / "warehouse"))
    resources = {"storage": storage, "engine": compute_engine()}
    result = dg.materialize([fleet_dashboard], resources=resources)
    assert result.success  # not a failure: a new deployment's nightly run stays green
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["hours_shown"].value == 0 and metadata["days_shown"].value == 0
    assert metadata["newest_hour"].value == "none" and metadata["positions_shown"].value == 0
    assert _records(metadata, HOURLY_ENTRY) == [] and _records(metadata, DAILY_ENTRY) == []
    png = _embedded_png(metadata)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == SIZE_PX
    assert (tmp_path / "warehouse" / DASHBOARD_KEY).read_bytes() == png


def test_on_s3_the_dashboard_reads_and_writes_through_the_bucket(s3_storage, tmp_path):
    raw = s3_storage.raw()
    write_sample_data(raw, start=HOURS[0].start, hours=2, vehicles=20, interval_s=120, seed=3)
    resources = lakehouse_resources(s3_storage, CatalogResource(path=str(tmp_path / "c.duckdb")))
    instance = dg.DagsterInstance.ephemeral()
    for hour in HOURS[:2]:
        _run_hour(hour, resources, instance)
    result = dg.materialize([fleet_dashboard], resources=resources, instance=instance)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["hours_shown"].value == 2 and metadata["positions_shown"].value > 0
    warehouse = s3_storage.warehouse()
    assert metadata["path"].value == f"{warehouse.url}/{DASHBOARD_KEY}"
    assert warehouse.read_bytes(DASHBOARD_KEY) == _embedded_png(metadata)


def test_the_dashboard_is_wired_into_the_nightly_job_and_its_group():
    graph = defs.resolve_asset_graph()
    assert graph.get(DASHBOARD).group_name == "dashboard"
    assert graph.get(DASHBOARD).parent_keys == {
        dg.AssetKey(t) for t in (KPI_TABLE, "dws_vehicle_daily_stat", DWD_TABLE)
    }
    nightly = defs.resolve_job_def("nightly_lakehouse_job")
    assert DASHBOARD in nightly.asset_layer.executable_asset_keys


def test_a_new_hour_requests_the_dashboard_once_and_a_burst_once_it_settles(tmp_path):
    hours = HOURS[:4]
    _, resources = _sample_warehouse(tmp_path, hours)
    instance = dg.DagsterInstance.ephemeral()
    tick = datetime(2025, 9, 18, 18, 0, tzinfo=UTC)
    cursor = None

    def evaluate() -> int:
        nonlocal tick, cursor
        tick += timedelta(minutes=1)
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=dg.AssetSelection.assets(DASHBOARD),
            evaluation_time=tick, cursor=cursor,
        )  # fmt: skip
        cursor = result.cursor
        return result.total_requested

    _run_hour(hours[0], resources, instance)
    assert evaluate() == 0  # a condition starts from "handled": it waits for new data
    _run_hour(hours[1], resources, instance)
    assert evaluate() == 1  # a new KPI hour landed
    assert evaluate() == 0  # and nothing since
    assert dg.materialize([fleet_dashboard], resources=resources, instance=instance).success
    assert evaluate() == 0  # its own refresh is no reason to draw it again

    # Hour 2's run is created, not yet finished (its KPI hour is in progress), while hour 3
    # lands: the dashboard waits for the burst to settle.
    pending = instance.create_run_for_job(
        defs.resolve_job_def("hourly_lakehouse_job"),
        tags={"dagster/partition": hours[2].key},
        status=dg.DagsterRunStatus.NOT_STARTED,
    )
    _run_hour(hours[3], resources, instance)
    assert evaluate() == 0
    assert evaluate() == 0
    instance.report_run_canceled(pending)
    assert evaluate() == 1  # settled: the hour that landed meanwhile is drawn now
    assert evaluate() == 0


def test_the_ui_shows_the_dashboard_materialized_from_the_cli(tmp_path):
    """`dagster asset materialize` in a DAGSTER_HOME, then the webserver's GraphQL API."""
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work))
    # The hours and the day, through the real jobs in process, into the project's data folder.
    _, resources = _sample_warehouse(work / "data", HOURS[14:16])
    for hour in HOURS[14:16]:
        _run_hour(hour, resources, dg.DagsterInstance.ephemeral())
    assert dg.materialize(
        [dws_vehicle_daily_stat], partition_key=DAYS[1], resources=resources
    ).success
    done = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "lakehouse.definitions", "--select",
         "fleet_dashboard"],
        cwd=work, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    port = free_port()
    webserver = str(Path(DAGSTER).with_name("dagster-webserver"))
    with running([webserver, "-h", "127.0.0.1", "-p", str(port)], work, env):
        answer = wait_until(lambda: _latest_materialization(port), 120, "the webserver")
    assert answer["__typename"] == "Asset", answer
    (event,) = answer["assetMaterializations"]
    entries = {e["label"]: e for e in event["metadataEntries"]}
    assert entries[IMAGE_ENTRY]["__typename"] == "MarkdownMetadataEntry"
    match = MARKDOWN_IMAGE.match(entries[IMAGE_ENTRY]["mdStr"])
    assert match
    png = base64.b64decode(match.group(1), validate=True)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == SIZE_PX
    # Shown as the warehouse URL says it (the default, relative to the project home).
    assert entries["path"]["path"] == f"data/warehouse/{DASHBOARD_KEY}"
    assert (work / "data" / "warehouse" / DASHBOARD_KEY).read_bytes() == png
    assert entries["hours_shown"]["intValue"] == 2
    assert entries[HOURLY_ENTRY]["__typename"] == "TableMetadataEntry"


QUERY = """
{ assetOrError(assetKey: {path: ["fleet_dashboard"]}) {
    __typename
    ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries {
        label __typename
        ... on MarkdownMetadataEntry { mdStr }
        ... on PathMetadataEntry { path }
        ... on IntMetadataEntry { intValue }
    } } }
} }
"""


def _latest_materialization(port: int) -> dict | None:
    """The asset as the UI's GraphQL API returns it, or None while the server starts."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["data"]["assetOrError"]
    except OSError:
        return None
