"""A DataScan tick costs O(new files), bounds its own work, and carries the rest over.

Against moto's S3 server through the fault proxy, whose request log is counted.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import dagster as dg
import pytest

from lakehouse.defs.ods.discovery import ScanCursor
from lakehouse.defs.ods.scan_limits import ENV
from lakehouse.partitions import HourPartition
from lakehouse.tables import ODS_TABLE
from lakehouse_tests.datascan_support import (
    parquet_bytes,
    put_files,
    request_kinds,
    settle,
    tick,
)
from lakehouse_tests.fault_proxy import Delay

H23 = HourPartition.from_key("2025-09-17-23:00")
FILES_PER_HOUR = 1000


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_one_new_file_costs_a_few_requests_whatever_the_hour_holds(
    s3_storage, s3_bucket, s3_faults, instance
):
    body = parquet_bytes()
    costs = []
    cursor = None
    for batch in range(2):  # the hour holds 1,000 files, then 2,000
        names = [f"f{batch}-{i:04d}.parquet" for i in range(FILES_PER_HOUR)]
        put_files(s3_faults, s3_bucket, H23, names, body)
        cursor, requests = settle(s3_storage, cursor, instance)
        assert [r.partition_key for r in requests] == [H23.key]

        put_files(s3_faults, s3_bucket, H23, [f"new-{batch}.parquet"], body)
        s3_faults.clear_log()
        result = tick(s3_storage, cursor, instance)
        assert [r.partition_key for r in result.run_requests] == [H23.key]
        (observation,) = result.asset_events
        files = (batch + 1) * FILES_PER_HOUR + batch + 1
        assert observation.metadata["files"].value == files
        assert observation.metadata["rows_in_footers"].value == files
        assert observation.metadata["footers_read"].value == 1
        kinds = request_kinds(s3_faults, s3_bucket)
        assert kinds["list"] == batch + 2  # ceil(files / 1,000) pages
        costs.append({k: n for k, n in kinds.items() if k != "list"})
        cursor = result.cursor

        s3_faults.clear_log()  # an idle tick costs the listing and nothing else
        assert tick(s3_storage, cursor, instance).run_requests == []
        assert request_kinds(s3_faults, s3_bucket) == Counter(list=batch + 2)
    # The verdicts of the others are remembered: one state read, one footer, one state write.
    assert costs[0] == costs[1] == {"state_get": 1, "footer": 1, "state_put": 1}


def test_a_large_window_is_processed_over_several_bounded_ticks(
    s3_storage, s3_bucket, s3_faults, instance, monkeypatch
):
    hours = [HourPartition(H23.start - timedelta(hours=h)) for h in range(30)]
    body = parquet_bytes()
    for hour in hours:
        put_files(s3_faults, s3_bucket, hour, [f"p{i:02d}.parquet" for i in range(40)], body)
    monkeypatch.setenv(ENV["max_list_pages"], "1")
    monkeypatch.setenv(ENV["max_footer_reads"], "100")

    requested: Counter[str] = Counter()
    cursor, ticks = None, 0
    while ticks < 30:
        s3_faults.clear_log()
        result = tick(s3_storage, cursor, instance)
        ticks += 1
        kinds = request_kinds(s3_faults, s3_bucket)
        assert kinds["list"] <= 1 + 2  # one page (+ the first tick's two folder listings)
        assert kinds["footer"] <= 100
        for request in result.run_requests:
            requested[request.partition_key] += 1
            assert request.tags["lakehouse/files"] == "40"  # never a partly listed hour
        cursor = result.cursor
        if not result.run_requests and ScanCursor.parse(cursor).resume is None:
            break
    assert ticks >= 12  # 1,200 footers at 100 a tick
    assert requested == Counter({hour.key: 1 for hour in hours})


def test_a_tick_stops_at_its_time_budget_and_the_next_goes_on(
    s3_storage, s3_bucket, s3_faults, instance, monkeypatch
):
    hours = [HourPartition(H23.start - timedelta(hours=h)) for h in range(6)]
    body = parquet_bytes()
    for hour in hours:
        put_files(s3_faults, s3_bucket, hour, [f"p{i:02d}.parquet" for i in range(20)], body)
    monkeypatch.setenv(ENV["budget_seconds"], "1")
    s3_faults.add_fault(Delay(0.2), method="GET", when=lambda r: "range" in r.headers, times=None)

    requested: Counter[str] = Counter()
    cursor, durations = None, []
    for _ in range(15):
        started = time.monotonic()
        result = tick(s3_storage, cursor, instance)
        durations.append(time.monotonic() - started)
        requested.update(r.partition_key for r in result.run_requests)
        cursor = result.cursor
        if not result.run_requests and ScanCursor.parse(cursor).resume is None:
            break
    assert len(durations) > 2  # 120 footers at 0.2 s, 8 at a time: several 1 s ticks
    assert max(durations) < 1 + 0.2 + 1.5  # budget + a read in flight + the state writes
    assert requested == Counter({hour.key: 1 for hour in hours})


def test_an_hour_too_large_for_one_tick_is_never_requested_on_a_partial_view(
    local_storage, instance, monkeypatch
):
    raw = local_storage.raw()
    big, after = H23, HourPartition(H23.start + timedelta(hours=1))
    body = parquet_bytes()
    for i in range(1001):  # a page holds 1,000 objects; the tick may list one page
        raw.write_bytes(f"{ODS_TABLE}/{big.hive_path}/p{i:04d}.parquet", body)
    raw.write_bytes(f"{ODS_TABLE}/{after.hive_path}/a.parquet", body)
    monkeypatch.setenv(ENV["max_list_pages"], "1")

    requested = []
    cursor = None
    for _ in range(4):
        result = tick(local_storage, cursor, instance)
        requested += [r.partition_key for r in result.run_requests]
        cursor = result.cursor
    assert requested == [after.key]  # the hour after it is not stalled either
