"""The full chain through Dagster: in process, from the CLI, by backfill, and against S3."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import boto3
import pandas as pd
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from lakehouse.partitions import HourPartition
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    DAEMON,
    DAGSTER,
    HOUR,
    LAKEHOUSE_CLI,
    MATERIALIZE_HOURLY,
    S3_SECRET_KEY,
    materialization_metadata,
    materialize_hour,
    project_dir,
    subprocess_env,
)


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 180):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ads_rows(zone, partition=HOUR):
    path = zone.path(partition_relpath(ADS_TABLE, partition))
    return pq.read_table(path, filesystem=zone.filesystem).to_pylist()


def _expected_drops(zone, data_files: tuple[str, ...]) -> dict[str, int]:
    """Drop counts recomputed with pandas straight from the raw data files, rule by rule."""
    frames = []
    for relative in data_files:
        reader = pq.read_table if relative.endswith(".parquet") else orc.read_table
        frames.append(reader(zone.path(relative)).to_pandas())
    raw = pd.concat(frames, ignore_index=True)
    null_vin = raw["vin"].isna() | (raw["vin"].str.strip() == "")
    bad_speed = ~null_vin & ~((raw["speed"] >= 0) & (raw["speed"] <= 500))
    parsed = pd.to_datetime(raw["report_time"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    bad_time = ~null_vin & ~bad_speed & parsed.isna()
    kept = raw[~(null_vin | bad_speed | bad_time)].assign(event_time=parsed)
    key = ["vin", "event_time", "lng", "lat", "speed"]
    return {
        "rows_in": len(raw),
        "missing_vin": int(null_vin.sum()),
        "invalid_speed": int(bad_speed.sum()),
        "unparseable_report_time": int(bad_time.sum()),
        "duplicate_report": int(kept.duplicated(subset=key).sum()),
    }


def test_in_process_chain_reports_metadata_and_checks(local_storage, catalog):
    report = write_sample_data(
        local_storage.raw(), start=HOUR.start, vehicles=40, interval_s=10, dirty=True
    )
    expected = _expected_drops(local_storage.raw(), report.files)
    assert expected["rows_in"] == report.total_rows
    assert min(expected.values()) > 0, "the sample must exercise every drop reason"
    result = materialize_hour(local_storage, catalog)
    assert result.success
    ods = materialization_metadata(result, ODS_TABLE)
    dwd = materialization_metadata(result, DWD_TABLE)
    assert ods["rows_out"].value == report.total_rows
    assert dwd["rows_in"].value == expected["rows_in"]
    for reason in ("missing_vin", "invalid_speed", "unparseable_report_time", "duplicate_report"):
        assert dwd[f"dropped_{reason}"].value == expected[reason], reason
    assert dwd["rows_out"].value == expected["rows_in"] - sum(
        v for k, v in expected.items() if k != "rows_in"
    )
    assert len(ods["preview"].value.records) == 5
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed
              for c in result.get_asset_check_evaluations()}  # fmt: skip
    assert checks[(ADS_TABLE, "pandera_schema")] is True
    assert checks[(ODS_TABLE, "no_quarantined_files")] is False  # dirty mode uploads junk
    # Every published row went through its layer's schema check, which says whether it looks at
    # values (ODS has no rule about them: its raw files are checked for columns and types).
    schema_checks = {c.asset_key.to_user_string(): c.metadata
                     for c in result.get_asset_check_evaluations()
                     if c.check_name == "pandera_schema"}  # fmt: skip
    assert schema_checks[ODS_TABLE]["rows_validated"].value == ods["rows_out"].value
    assert schema_checks[DWD_TABLE]["rows_validated"].value == dwd["rows_out"].value
    assert schema_checks[ODS_TABLE]["schema_rules_values"].value is False
    assert schema_checks[DWD_TABLE]["schema_rules_values"].value is True
    assert len(_ads_rows(local_storage.warehouse())) == 40


def test_cli_materializes_an_hour(tmp_path, monkeypatch):
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work))
    monkeypatch.chdir(work)
    from lakehouse.resources.storage import LakehouseStorage

    raw = LakehouseStorage().raw(create=True)
    write_sample_data(raw, start=HOUR.start, vehicles=5, interval_s=60)
    args = MATERIALIZE_HOURLY
    done = _run([*args, "--partition", HOUR.key], work, env)
    assert done.returncode == 0, done.stderr[-3000:]
    # The process ends quietly: DuckDB's bindings find none of their objects alive at exit.
    assert "nanobind" not in done.stderr + done.stdout, done.stderr[-3000:]
    rows = _ads_rows(LakehouseStorage().warehouse())
    assert sorted(r["vin"] for r in rows) == [f"VIN00000{i}" for i in range(1, 6)]
    assert (work / "data" / "catalog.duckdb").exists()
    # The run is recorded in the project's own instance storage.
    assert list((work / "data" / "dagster" / "storage").rglob("runs.db"))
    assert list((work / "data" / "dagster" / "compute_logs").rglob("*.complete"))
    assert not (work / "storage").exists()

    bad = _run([*args, "--partition", "2025-09-17-23:30"], work, env)
    assert bad.returncode != 0
    assert "2025-09-17-23:30" in bad.stderr + bad.stdout


def test_backfill_over_a_range_of_hours_with_the_daemon(tmp_path, monkeypatch):
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work))
    monkeypatch.chdir(work)
    from lakehouse.resources.storage import LakehouseStorage

    storage = LakehouseStorage()
    write_sample_data(
        storage.raw(create=True), start=HOUR.start, hours=3, vehicles=4, interval_s=120
    )
    hours = [HourPartition.from_key(k) for k in
             ("2025-09-17-23:00", "2025-09-18-00:00", "2025-09-18-01:00")]  # fmt: skip
    # The backfill only queues runs (and creates the instance storage); the daemon launches them.
    backfill = _run(
        [DAGSTER, "job", "backfill", "-j",
         "hourly_lakehouse_job", "--from", hours[0].key, "--to", hours[-1].key,
         "--noprompt"], work, env,
    )  # fmt: skip
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    daemon = subprocess.Popen(
        [DAEMON, "run"], cwd=work, env=env,  # as the README starts it: one location, `lakehouse`
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        warehouse = storage.warehouse()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(warehouse.exists(partition_relpath(ADS_TABLE, h)) for h in hours):
                break
            time.sleep(1)
        for hour in hours:
            rows = _ads_rows(warehouse, hour)
            assert {r["stat_hour"] for r in rows} == {hour.stat_hour}
            assert len(rows) == 4
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def test_chain_against_a_real_s3_server(s3_storage, s3_bucket, s3_env, catalog):
    write_sample_data(s3_storage.raw(), start=HOUR.start, vehicles=6, interval_s=60, dirty=True)
    result = materialize_hour(s3_storage, catalog)
    assert result.success
    keys = {
        obj["Key"]
        for obj in boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"]).list_objects_v2(
            Bucket=s3_bucket, Prefix="warehouse/"
        )["Contents"]
    }
    for table in (ODS_TABLE, DWD_TABLE, ADS_TABLE):
        assert f"warehouse/{partition_relpath(table, HOUR)}" in keys
    assert not any(k.startswith("warehouse/_staging/") and k.endswith(".parquet") for k in keys)
    ads = _ads_rows(s3_storage.warehouse())
    assert len(ads) == 6
    ods = materialization_metadata(result, ODS_TABLE)
    assert ods["files_quarantined"].value == 2  # the generator's corrupt and wrong-schema files
    assert ods["path"].value.startswith(f"s3://{s3_bucket}/warehouse/")
    # No httpfs in this offline catalog: the view is skipped with a reason, fast, not fatal.
    assert ods["catalog_view"].value.startswith("skipped: ")


def test_cli_against_s3_never_leaks_the_secret(tmp_path, s3_bucket, s3_env):
    work = project_dir(tmp_path)
    urls = {
        "LAKEHOUSE_RAW_URL": f"s3://{s3_bucket}/raw",
        "LAKEHOUSE_WAREHOUSE_URL": f"s3://{s3_bucket}/warehouse",
    }
    env = subprocess_env(DAGSTER_HOME=str(work), **s3_env, **urls)
    gen = _run(
        [LAKEHOUSE_CLI, "generate", "--vehicles", "4", "--interval", "120", "--dirty"], work, env
    )
    assert gen.returncode == 0, gen.stderr
    done = _run(
        [*MATERIALIZE_HOURLY,
         "--partition", HOUR.key], work, env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    from lakehouse.resources.storage import LakehouseStorage

    assert len(_ads_rows(LakehouseStorage(**{
        "raw_url": urls["LAKEHOUSE_RAW_URL"], "warehouse_url": urls["LAKEHOUSE_WAREHOUSE_URL"],
    }).warehouse())) == 4  # fmt: skip
    logs = gen.stdout + gen.stderr + done.stdout + done.stderr
    assert S3_SECRET_KEY not in logs
    for path in (work / "data").rglob("*"):
        if path.is_file():
            assert S3_SECRET_KEY.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("secret_in", ["endpoint"])
def test_a_failing_s3_run_does_not_leak_the_secret(tmp_path, s3_env, secret_in):
    """A wrong bucket fails the run; the error names the bucket, not the credentials."""
    work = project_dir(tmp_path)
    env = subprocess_env(
        DAGSTER_HOME=str(work), **s3_env,
        LAKEHOUSE_RAW_URL="s3://no-such-bucket-here/raw",
        LAKEHOUSE_WAREHOUSE_URL="s3://no-such-bucket-here/warehouse",
    )  # fmt: skip
    done = _run(
        [*MATERIALIZE_HOURLY,
         "--partition", HOUR.key], work, env,
    )  # fmt: skip
    assert done.returncode != 0
    assert "no-such-bucket-here" in done.stdout + done.stderr
    assert S3_SECRET_KEY not in done.stdout + done.stderr
    for path in (work / "data").rglob("*"):
        if path.is_file():
            assert S3_SECRET_KEY.encode() not in path.read_bytes(), path
