"""DataScan: new files -> one run request per hour; late files re-run; junk never breaks a tick."""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import dagster as dg
import pyarrow as pa
import pytest

from lakehouse.defs.ods.discovery import ScanCursor, scan
from lakehouse.defs.ods.intake import FOOTER_TAIL_BYTES
from lakehouse.defs.ods.sensors import ods_datascan
from lakehouse.partitions import HourPartition
from lakehouse.resources.listing import ListedObject
from lakehouse.tables import ADS_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    DAEMON,
    count_list_requests,
    ods_table,
    project_dir,
    subprocess_env,
    write_raw,
)
from lakehouse_tests.datascan_support import put_files

ROW = {"vin": "VIN001", "device_id": "D1", "report_time": "2025-09-17 23:00:00",
       "lng": 120.0, "lat": 30.0, "speed": 10.0, "raw_payload": "p"}  # fmt: skip
H22, H23, H00 = (HourPartition.from_key(k) for k in
                 ("2025-09-17-22:00", "2025-09-17-23:00", "2025-09-18-00:00"))  # fmt: skip


@pytest.fixture(params=["local", "s3"])
def storage(request, local_storage):
    """The same tests against the embedded default and a real S3-protocol server."""
    if request.param == "local":
        return local_storage
    return request.getfixturevalue("s3_storage")


def tick(storage, cursor: str | None = None) -> dg.SensorResult:
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(
            cursor=cursor, resources={"storage": storage}, instance=instance
        )
        return ods_datascan(context)


def _upload(storage, name: str, partition: HourPartition, table: pa.Table | None = None) -> None:
    write_raw(storage.raw(), name, table if table is not None else ods_table([ROW]), partition)


def _hour_dir(partition: HourPartition) -> str:
    return f"{ODS_TABLE}/{partition.hive_path}"


def test_new_files_request_one_run_per_hour_then_nothing(storage):
    _upload(storage, "a.parquet", H22)
    _upload(storage, "b.parquet", H23)
    _upload(storage, "c.orc", H23)
    _upload(storage, "d.parquet", H00)
    first = tick(storage)
    assert sorted(r.partition_key for r in first.run_requests) == [H22.key, H23.key, H00.key]
    assert len({r.run_key for r in first.run_requests}) == 3
    observed = {o.partition: o.metadata for o in first.asset_events}
    assert observed[H23.key]["files"].value == 2
    assert observed[H23.key]["rows_in_footers"].value == 2

    second = tick(storage, first.cursor)
    assert second.run_requests == []
    assert second.cursor == first.cursor


def test_a_late_file_reruns_its_hour_exactly_once(storage):
    _upload(storage, "a.parquet", H22)
    _upload(storage, "b.parquet", H23)
    first = tick(storage)
    _upload(storage, "late.parquet", H22)  # an uploader retried, after H23 had arrived
    second = tick(storage, first.cursor)
    (request,) = second.run_requests
    assert request.partition_key == H22.key
    assert request.run_key not in {r.run_key for r in first.run_requests}
    assert tick(storage, second.cursor).run_requests == []


def test_junk_and_bad_files_are_skipped_and_flagged_without_failing(storage):
    raw = storage.raw()
    hour = _hour_dir(H23)
    for name, payload in [(".DS_Store", b"junk"), ("_SUCCESS", b""), ("empty.parquet", b""),
                          ("up.parquet.tmp", b"PAR1"), ("notes.txt", b"hi")]:  # fmt: skip
        raw.write_bytes(f"{hour}/{name}", payload)
    raw.write_bytes(f"{ODS_TABLE}/dt=2025-13-45/hh=99/x.parquet", b"PAR1")  # bad partition key
    raw.write_bytes(f"{ODS_TABLE}/stray.parquet", b"PAR1")  # outside the layout
    junk_only = tick(storage)
    assert junk_only.run_requests == []

    raw.write_bytes(f"{hour}/corrupt.parquet", b"PAR1 not really PAR1")
    _upload(storage, "wrong.parquet", H23, pa.table({"vin": ["V"], "latitude": [1.0]}))
    _upload(storage, "good.parquet", H23)
    result = tick(storage, junk_only.cursor)
    (request,) = result.run_requests
    assert request.partition_key == H23.key
    (observation,) = result.asset_events
    flagged = observation.metadata["flagged_schema"].value
    assert set(flagged) == {"corrupt.parquet", "wrong.parquet"}
    assert flagged["wrong.parquet"].startswith("schema mismatch: missing column")
    assert observation.metadata["files"].value == 3
    assert observation.metadata["rows_in_footers"].value == 1
    skipped = {
        s["key"].rsplit("/", 1)[1]: s["reason"] for s in observation.metadata["skipped"].value
    }
    assert skipped == {
        ".DS_Store": "hidden/system file",
        "_SUCCESS": "marker/metadata file",
        "empty.parquet": "zero-byte object",
        "up.parquet.tmp": "temporary upload name",
        "notes.txt": "unknown extension",
    }


def test_orc_files_larger_than_the_footer_tail_are_judged_not_flagged(storage):
    """Discovery reads a file's last 256 KiB; an ORC file's row indexes lie before that."""
    rows = 30_000
    payloads = [os.urandom(16).hex() for _ in range(rows)]  # incompressible: ~1 MB of data
    table = ods_table([ROW] * rows).set_column(6, "raw_payload", pa.array(payloads))
    _upload(storage, "big.orc", H23, table)
    _upload(storage, "wrong.orc", H23, pa.table({"vin": ["V"], "speed": ["fast"]}))
    listed = storage.raw().list_files(_hour_dir(H23))
    (size,) = [o.size for o in listed if o.key.endswith("big.orc")]
    assert size > 2 * FOOTER_TAIL_BYTES
    (observation,) = tick(storage).asset_events
    flagged = observation.metadata["flagged_schema"].value
    assert list(flagged) == ["wrong.orc"]
    assert flagged["wrong.orc"].startswith("schema mismatch: missing column")
    assert observation.metadata["rows_in_footers"].value == rows


def test_cursor_survives_a_restart(storage):
    _upload(storage, "a.parquet", H23)
    stored = tick(storage).cursor
    # A new daemon process starts from the stored cursor string alone.
    assert tick(storage, stored).run_requests == []
    _upload(storage, "b.parquet", H00)
    (request,) = tick(storage, stored).run_requests
    assert request.partition_key == H00.key


def test_scan_forgets_hours_beyond_the_lateness_window():
    def obj(partition: HourPartition, name: str) -> ListedObject:
        return ListedObject(f"{_hour_dir(partition)}/{name}", 10, "t0")

    old = HourPartition.from_key("2025-09-10-00:00")
    result = scan([obj(old, "a.parquet"), obj(H23, "b.parquet")], ScanCursor(), lateness_hours=48)
    assert [h.partition.key for h in result.changed] == [H23.key]
    assert set(result.cursor.hours) == {H23.key}
    assert result.skipped == [(f"{_hour_dir(old)}/a.parquet",
                               "older than the 48 h lateness window (backfill it)")]  # fmt: skip
    assert len(result.cursor.serialize()) < 200


def test_local_listing_cost_does_not_grow_with_history(local_storage):
    raw = local_storage.raw()
    _upload(local_storage, "a.parquet", H23)
    cursor = tick(local_storage).cursor
    before = local_storage.list_raw(f"{ODS_TABLE}/", f"{ODS_TABLE}/dt=2025-09-15/hh=23")
    for day in range(1, 21):  # 20 days x 1,000 files of older history
        folder = raw.path(f"{ODS_TABLE}/dt=2025-08-{day:02d}/hh=00")
        os.makedirs(folder, exist_ok=True)
        for i in range(1000):
            with open(f"{folder}/f{i}.parquet", "wb") as handle:
                handle.write(b"PAR1")
    after = local_storage.list_raw(f"{ODS_TABLE}/", f"{ODS_TABLE}/dt=2025-09-15/hh=23")
    assert after.list_calls == before.list_calls
    assert tick(local_storage, cursor).run_requests == []


def test_s3_list_calls_stay_constant_as_the_bucket_grows(
    s3_storage, s3_bucket, s3_env, s3_request_log
):
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])
    _upload(s3_storage, "a.parquet", H23)
    cursor = tick(s3_storage).cursor

    def fill(start: int, count: int) -> None:
        def put(i: int) -> None:
            key = f"raw/{ODS_TABLE}/dt=2025-08-{1 + i // 500:02d}/hh=00/f{i}.parquet"
            client.put_object(Bucket=s3_bucket, Key=key, Body=b"PAR1")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(start, start + count)))

    def list_calls_of_a_quiet_tick() -> int:
        offset = s3_request_log.stat().st_size
        assert tick(s3_storage, cursor).run_requests == []
        time.sleep(0.2)  # let the server flush its access log
        return count_list_requests(s3_request_log, s3_bucket, offset)

    fill(0, 500)
    small = list_calls_of_a_quiet_tick()
    fill(500, 2500)  # six times the history
    large = list_calls_of_a_quiet_tick()
    assert small == large == 1


def test_daemon_discovers_an_upload_and_lands_its_ads_hour(tmp_path, s3_storage, s3_bucket, s3_env):
    """The real daemon, a real S3 server: upload a file, its ADS hour appears within 60 s."""
    work = project_dir(tmp_path)
    env = subprocess_env(
        DAGSTER_HOME=str(work),
        LAKEHOUSE_RAW_URL=f"s3://{s3_bucket}/raw",
        LAKEHOUSE_WAREHOUSE_URL=f"s3://{s3_bucket}/warehouse",
        LAKEHOUSE_DATASCAN_INTERVAL_SECONDS="2",
        **s3_env,
    )
    daemon = subprocess.Popen(
        [DAEMON, "run"], cwd=work, env=env,  # as the README starts it: one location, `lakehouse`
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _upload(s3_storage, "fresh.parquet", H23, ods_table([ROW, {**ROW, "vin": "VIN002"}]))
        warehouse = s3_storage.warehouse()
        uploaded = time.monotonic()
        while time.monotonic() - uploaded < 60:
            if warehouse.exists(partition_relpath(ADS_TABLE, H23)):
                break
            time.sleep(1)
        assert warehouse.exists(partition_relpath(ADS_TABLE, H23)), "no ADS hour within 60 s"
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def test_hours_sliding_out_of_the_window_are_not_reported_as_late():
    def obj(partition: HourPartition, name: str, stamp: str = "t0") -> ListedObject:
        return ListedObject(f"{_hour_dir(partition)}/{name}", 10, stamp)

    first = scan([obj(H22, "a.parquet")], ScanCursor(), lateness_hours=1)
    later = HourPartition.from_key("2025-09-18-05:00")
    # H22 was processed; a new, much later hour pushes it out of the window.
    second = scan([obj(H22, "a.parquet"), obj(later, "b.parquet")], first.cursor, lateness_hours=1)
    assert [h.partition.key for h in second.changed] == [later.key]
    assert second.skipped == []
    # A file that changes H22 now is genuinely too late, and says so.
    third = scan([obj(H22, "a.parquet", "t1")], second.cursor, lateness_hours=1)
    assert third.changed == []
    assert third.skipped == [(f"{_hour_dir(H22)}/a.parquet",
                              "older than the 1 h lateness window (backfill it)")]  # fmt: skip


def test_the_first_tick_lists_only_the_lateness_window(s3_storage, s3_bucket, s3_faults):
    """The newest hour comes from folder names (two small listings), not from all of history."""
    old_days = [HourPartition.from_key(f"2025-08-{day:02d}-00:00") for day in range(1, 11)]
    for day in old_days:  # 2,500 objects of history, 5 weeks before the newest hour
        put_files(s3_faults, s3_bucket, day, [f"f{i}.parquet" for i in range(250)], b"PAR1")
    _upload(s3_storage, "a.parquet", H23)
    s3_faults.clear_log()

    first = tick(s3_storage)
    assert [r.partition_key for r in first.run_requests] == [H23.key]
    pages = s3_faults.requests("GET", query_regex="list-type=2")
    assert len([p for p in pages if "delimiter" not in p.query]) == 1
    assert len([p for p in pages if "delimiter" in p.query]) == 2  # dt= folders, then hh=
    assert all("start-after" in p.query for p in pages if "delimiter" not in p.query)
