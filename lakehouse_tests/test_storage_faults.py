"""Nothing is lost silently: store faults are retried or fail loudly, never become quarantine.

The S3 tests run the real hourly job against moto's S3 server through a fault-injecting HTTP
proxy on 127.0.0.1 (``s3_faults``): 503 SlowDown, connection resets and truncated bodies on
the requests that read raw files, or a lasting outage.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import (
    STAGING_DIR,
    partition_relpath,
    sweep_staging,
)
from lakehouse_tests.conftest import (
    HOUR,
    MATERIALIZE_HOURLY,
    S3_SECRET_KEY,
    materialization_metadata,
    materialize_hour,
    ods_table,
    project_dir,
    subprocess_env,
    write_raw,
)
from lakehouse_tests.fault_proxy import Reset, Status, Truncate

LAYERS = (ODS_TABLE, DWD_TABLE, ADS_TABLE)
RAW_DATA_GET = r"/raw/ods_vehicle_gps_raw/.*\.(parquet|orc)$"


@pytest.fixture
def fast_step_retries(monkeypatch):
    """Step retries after 50 ms instead of seconds, so a lasting outage fails quickly."""
    monkeypatch.setenv("LAKEHOUSE_STEP_RETRY_SECONDS", "0.05")


def _published(storage: LakehouseStorage) -> dict[str, bytes]:
    warehouse = storage.warehouse()
    return {t: warehouse.read_bytes(partition_relpath(t, HOUR)) for t in LAYERS}


def _intake(storage: LakehouseStorage) -> dict:
    key = f"_intake/{ODS_TABLE}/{HOUR.hive_path}/intake.json"
    return json.loads(storage.warehouse().read_bytes(key))


@pytest.mark.parametrize(
    "fault",
    [Status(503, "SlowDown"), Status(500, "InternalError"), Reset(), Truncate(200)],
    ids=["503", "500", "reset", "truncated"],
)
def test_transient_faults_on_raw_reads_are_retried_not_quarantined(
    s3_faults, s3_storage, catalog, fault
):
    report = write_sample_data(s3_storage.raw(), start=HOUR.start, vehicles=6, interval_s=60)
    rule = s3_faults.add_fault(fault, method="GET", path_regex=RAW_DATA_GET, times=3)
    result = materialize_hour(s3_storage, catalog)
    assert result.success
    assert rule.fired == 3
    ods = materialization_metadata(result, ODS_TABLE)
    assert ods["files_quarantined"].value == 0
    assert ods["rows_out"].value == report.total_rows  # nothing missing
    assert ods["files_read"].value == len(report.files)


def test_a_lasting_outage_fails_the_run_and_keeps_every_published_layer(
    s3_faults, s3_bucket, catalog, fast_step_retries
):
    # Fewer request attempts than the default 5, so the outage is given up on within seconds.
    s3_storage = LakehouseStorage(
        raw_url=f"s3://{s3_bucket}/raw", warehouse_url=f"s3://{s3_bucket}/warehouse", io_attempts=2
    )
    write_sample_data(s3_storage.raw(), start=HOUR.start, vehicles=6, interval_s=60)
    assert materialize_hour(s3_storage, catalog).success
    before, intake_before = _published(s3_storage), _intake(s3_storage)
    write_raw(s3_storage.raw(), "late.parquet", ods_table([{"vin": "VIN777", "speed": 1.0}]))

    outage = s3_faults.add_fault(
        Status(503, "SlowDown"), method="GET", path_regex=RAW_DATA_GET, times=None
    )
    result = materialize_hour(s3_storage, catalog, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "still failing after" in str(failure.event_specific_data.error)
    restarts = [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert len(restarts) == 3  # the step was retried before it gave up
    assert outage.fired > 10
    s3_faults.clear()
    assert _published(s3_storage) == before
    assert _intake(s3_storage) == intake_before  # nothing was quarantined on the store's fault


def test_a_missing_raw_zone_is_a_configuration_error_not_an_empty_hour(tmp_path):
    """A mistyped LAKEHOUSE_RAW_URL, through the CLI: a clear failure, nothing replaced."""
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work))
    raw = LakehouseStorage(raw_url=str(work / "data" / "raw")).raw(create=True)
    write_sample_data(raw, start=HOUR.start, vehicles=4, interval_s=120)
    command = [*MATERIALIZE_HOURLY,
               "--partition", HOUR.key]  # fmt: skip
    first = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr[-2000:]
    warehouse = work / "data" / "warehouse"
    before = {t: (warehouse / partition_relpath(t, HOUR)).read_bytes() for t in LAYERS}

    typo = work / "data" / "rwa"
    done = subprocess.run(
        command, cwd=work, env={**env, "LAKEHOUSE_RAW_URL": str(typo)},
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode != 0
    assert "does not exist" in done.stdout + done.stderr
    assert not typo.exists(), "the pipeline must not create a raw zone"
    assert {t: (warehouse / partition_relpath(t, HOUR)).read_bytes() for t in LAYERS} == before


def test_a_raw_prefix_without_the_dataset_is_refused(s3_storage, s3_bucket, catalog):
    write_sample_data(s3_storage.raw(), start=HOUR.start, vehicles=4, interval_s=300)
    mistyped = LakehouseStorage(
        raw_url=f"s3://{s3_bucket}/rwa", warehouse_url=s3_storage.warehouse_url
    )
    result = materialize_hour(mistyped, catalog, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "holds no ods_vehicle_gps_raw/ folder" in str(failure.event_specific_data.error)
    assert not s3_storage.warehouse().exists(partition_relpath(ODS_TABLE, HOUR))


def test_vanished_raw_files_never_replace_a_published_hour(local_storage, catalog):
    """Retention removed the hour's raw files: a re-run refuses, unless explicitly asked."""
    report = write_sample_data(local_storage.raw(), start=HOUR.start, vehicles=5, interval_s=60)
    assert materialize_hour(local_storage, catalog).success
    before = _published(local_storage)
    for relative in report.files:
        os.remove(local_storage.raw().path(relative))

    refused = materialize_hour(local_storage, catalog, raise_on_error=False)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "4 raw file(s) it was built from are gone" in message
    assert "lakehouse/allow_shrink=true" in message
    assert _published(local_storage) == before

    allowed = materialize_hour(local_storage, catalog, tags={"lakehouse/allow_shrink": "true"})
    assert allowed.success
    assert materialization_metadata(allowed, ODS_TABLE)["rows_out"].value == 0


def test_allowing_a_shrink_by_run_config_from_the_cli(tmp_path):
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work))
    raw = LakehouseStorage(raw_url=str(work / "data" / "raw")).raw(create=True)
    report = write_sample_data(raw, start=HOUR.start, vehicles=4, interval_s=120)
    command = [*MATERIALIZE_HOURLY,
               "--partition", HOUR.key]  # fmt: skip

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, *extra], cwd=work, env=env, capture_output=True, text=True, timeout=180
        )

    assert run().returncode == 0
    os.remove(raw.path(report.files[0]))
    refused = run()
    assert refused.returncode != 0
    assert "1 raw file(s) it was built from are gone" in refused.stdout + refused.stderr
    config = {"ops": {ODS_TABLE: {"config": {"allow_shrink": True}}}}
    allowed = run("--config-json", json.dumps(config))
    assert allowed.returncode == 0, allowed.stderr[-2000:]


def test_an_hour_turned_unreadable_never_replaces_good_data(local_storage, catalog):
    """Every file now quarantined: the published rows stay; the verdicts are reported."""
    report = write_sample_data(local_storage.raw(), start=HOUR.start, vehicles=5, interval_s=60)
    assert materialize_hour(local_storage, catalog).success
    before = _published(local_storage)
    for relative in report.files:
        with open(local_storage.raw().path(relative), "wb") as handle:
            handle.write(b"PAR1 garbage PAR1")
    refused = materialize_hour(local_storage, catalog, raise_on_error=False)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    assert "with an empty hour" in str(failure.event_specific_data.error)
    assert _published(local_storage) == before


def test_credentials_in_run_config_are_refused_before_the_run_is_stored(tmp_path):
    work = project_dir(tmp_path)
    secret_url = f"s3://AKIALAKEHOUSE:{S3_SECRET_KEY}@bucket/raw"
    config = {"resources": {"storage": {"config": {"raw_url": secret_url}}}}
    done = subprocess.run(
        [*MATERIALIZE_HOURLY,
         "--partition", HOUR.key, "--config-json", json.dumps(config)],
        cwd=work, env=subprocess_env(DAGSTER_HOME=str(work)),
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode != 0
    assert "must not carry credentials" in done.stdout + done.stderr
    assert S3_SECRET_KEY not in done.stdout + done.stderr
    stored = [p for p in work.rglob("*") if p.is_file()]
    assert any(p.name == "runs.db" for p in stored), "the instance exists"
    for path in stored:
        assert S3_SECRET_KEY.encode() not in path.read_bytes(), path


def _corrupt_pages(table: pa.Table) -> bytes:
    """Parquet whose footer is intact but whose data pages are garbage."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    payload = bytearray(sink.getvalue().to_pybytes())
    footer_start = len(payload) - 8 - int.from_bytes(payload[-8:-4], "little")
    payload[4:footer_start] = b"\xa5" * (footer_start - 4)
    return bytes(payload)


def test_files_breaking_mid_read_are_quarantined_and_cost_nothing_else(local_storage, catalog):
    raw = local_storage.raw()
    rows = [{"vin": f"VIN{i:03d}", "report_time": "2025-09-17 23:00:00", "lng": 120.0,
             "lat": 30.0, "speed": 1.0} for i in range(50)]  # fmt: skip
    for name in ("a", "c", "e"):
        write_raw(raw, f"{name}_good.parquet", ods_table(rows[:10]))
    for name in ("b", "d", "f"):
        raw.write_bytes(f"{ODS_TABLE}/{HOUR.hive_path}/{name}_bad.parquet",
                        _corrupt_pages(ods_table(rows)))  # fmt: skip
    result = materialize_hour(local_storage, catalog)
    assert result.success
    ods = materialization_metadata(result, ODS_TABLE)
    assert ods["files_quarantined"].value == 3
    assert ods["files_verbatim"].value + ods["files_converted"].value == 3
    assert ods["rows_out"].value == 30
    assert local_storage.warehouse().list_files(STAGING_DIR, recursive=True) == []


def test_s3_runs_leave_no_markers_staging_or_open_uploads(s3_storage, s3_bucket, s3_env, catalog):
    write_sample_data(s3_storage.raw(), start=HOUR.start, vehicles=6, interval_s=60, dirty=True)
    assert materialize_hour(s3_storage, catalog).success
    assert materialize_hour(s3_storage, catalog).success
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert not [k for k in keys if k.endswith("/")], "zero-byte folder markers"
    assert not [k for k in keys if f"/{STAGING_DIR}/" in k]
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_leftovers_of_killed_writers_are_swept(s3_storage, s3_bucket, s3_env, local_storage):
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])
    key = f"warehouse/{partition_relpath(DWD_TABLE, HOUR)}"
    upload = client.create_multipart_upload(Bucket=s3_bucket, Key=key)
    client.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1,
                       Body=b"x" * 1024)  # fmt: skip
    # moto dates every upload 2010-11-10, so on S3 only the abort itself can be shown here;
    # the age rule is shown on the local staging files below.
    assert sweep_staging(s3_storage.warehouse(), DWD_TABLE) == 1
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []

    warehouse = local_storage.warehouse()
    folder = warehouse.path(STAGING_DIR, DWD_TABLE)
    os.makedirs(folder)
    stale, fresh = os.path.join(folder, "stale.parquet"), os.path.join(folder, "fresh.parquet")
    for path in (stale, fresh):
        with open(path, "wb") as handle:
            handle.write(b"partial")
    old = time.time() - 7 * 3600
    os.utime(stale, (old, old))
    assert sweep_staging(warehouse, DWD_TABLE) == 1
    assert os.path.exists(fresh) and not os.path.exists(stale)
