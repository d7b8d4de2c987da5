"""Store faults during a DataScan tick are never file faults, and never lose the cursor.

moto's S3 server behind the fault-injecting proxy: 503s, resets and stalls on footer reads and
listings, a missing bucket, a missing local raw zone.
"""

from __future__ import annotations

import boto3
import dagster as dg
import pytest
from botocore.exceptions import ClientError

from lakehouse.defs.ods.discovery import ScanCursor
from lakehouse.defs.ods.scan_limits import ENV, TICK_ATTEMPTS
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse_tests.datascan_support import parquet_bytes, put_files, tick
from lakehouse_tests.fault_proxy import Delay, Reset, Status

H22, H23 = (HourPartition.from_key(k) for k in ("2025-09-17-22:00", "2025-09-17-23:00"))


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _footer_of(name: str):
    """Matches ranged GETs (footer reads) of raw files called ``name``."""
    return lambda r: r.method == "GET" and r.path.endswith(f"/{name}") and "range" in r.headers


@pytest.mark.parametrize("fault", [Status(503), Reset(), Delay(1.5)], ids=["503", "reset", "stall"])
def test_footer_read_faults_flag_nothing_and_the_hour_runs_on_a_later_tick(
    s3_storage, s3_bucket, s3_faults, instance, monkeypatch, fault
):
    monkeypatch.setenv(ENV["request_timeout_seconds"], "0.5")  # the stall outlasts a request
    body = parquet_bytes()
    put_files(s3_faults, s3_bucket, H22, ["a.parquet"], body)
    put_files(s3_faults, s3_bucket, H23, ["b.parquet", "c.parquet"], body)
    # As many faults in a row as a tick makes attempts: the whole tick sees only faults.
    rule = s3_faults.add_fault(fault, when=_footer_of("b.parquet"), times=TICK_ATTEMPTS)

    first = tick(s3_storage, None, instance)
    assert rule.fired == TICK_ATTEMPTS
    assert [r.partition_key for r in first.run_requests] == [H22.key]
    assert [o.partition for o in first.asset_events] == [H22.key]  # nothing said about H23
    assert H23.key not in ScanCursor.parse(first.cursor).hours

    second = tick(s3_storage, first.cursor, instance)  # the store has recovered
    (request,) = second.run_requests
    assert request.partition_key == H23.key
    (observation,) = second.asset_events
    assert observation.metadata["flagged_schema"].value == {}
    assert observation.metadata["rows_in_footers"].value == 2
    assert tick(s3_storage, second.cursor, instance).run_requests == []


def test_an_outage_of_footer_reads_requests_nothing_until_the_store_recovers(
    s3_storage, s3_bucket, s3_faults, instance
):
    body = parquet_bytes()
    hours = [HourPartition.from_key(f"2025-09-17-{h:02d}:00") for h in range(10, 16)]
    for hour in hours:
        put_files(s3_faults, s3_bucket, hour, ["a.parquet", "b.parquet"], body)
    outage = s3_faults.add_fault(
        Status(503), when=lambda r: r.method == "GET" and "range" in r.headers, times=None
    )
    during = tick(s3_storage, None, instance)
    assert during.run_requests == [] and during.asset_events == []
    s3_faults.remove(outage)

    after = tick(s3_storage, during.cursor, instance)
    assert sorted(r.partition_key for r in after.run_requests) == [h.key for h in hours]
    assert all(o.metadata["flagged_schema"].value == {} for o in after.asset_events)


@pytest.mark.parametrize("fault", [Status(503), Reset()], ids=["503", "reset"])
def test_a_failing_listing_skips_the_tick_and_keeps_the_cursor(
    s3_storage, s3_bucket, s3_faults, instance, fault
):
    body = parquet_bytes()
    put_files(s3_faults, s3_bucket, H22, ["a.parquet"], body)
    cursor = tick(s3_storage, None, instance).cursor
    put_files(s3_faults, s3_bucket, H23, ["b.parquet"], body)

    outage = s3_faults.add_fault(fault, method="GET", query_regex="list-type=2", times=None)
    failed = tick(s3_storage, cursor, instance)
    assert failed.run_requests == []
    assert "cannot list the raw zone" in failed.skip_message
    assert failed.cursor == cursor
    s3_faults.remove(outage)

    (request,) = tick(s3_storage, failed.cursor, instance).run_requests
    assert request.partition_key == H23.key


def test_a_missing_bucket_is_a_configuration_error_and_nothing_is_created(
    s3_bucket, s3_faults, instance
):
    storage = LakehouseStorage(
        raw_url="s3://no-such-raw-bucket/raw", warehouse_url=f"s3://{s3_bucket}/warehouse"
    )
    result = tick(storage, None, instance)
    assert result.run_requests == []
    assert "storage configuration error" in result.skip_message
    assert "NoSuchBucket" in result.skip_message
    client = boto3.client("s3", endpoint_url=s3_faults.upstream)
    with pytest.raises(ClientError):
        client.head_bucket(Bucket="no-such-raw-bucket")
    assert s3_faults.count("PUT") == 0


def test_a_missing_local_raw_zone_is_reported_and_not_created(tmp_path, instance):
    storage = LakehouseStorage(
        raw_url=str(tmp_path / "mistyped-raw"), warehouse_url=str(tmp_path / "warehouse")
    )
    result = tick(storage, None, instance)
    assert result.run_requests == []
    assert "storage configuration error" in result.skip_message
    assert "mistyped-raw" in result.skip_message
    assert not (tmp_path / "mistyped-raw").exists()
    assert not (tmp_path / "warehouse").exists()
