"""Helpers for the DataScan tests: real ticks against a real instance, bulk uploads, counts."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config

from lakehouse.definitions import defs
from lakehouse.defs.ods.discovery import ScanCursor
from lakehouse.defs.ods.sensors import ods_datascan
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ODS_TABLE
from lakehouse_tests.conftest import ods_table
from lakehouse_tests.fault_proxy import FaultProxy

UPLOADERS = 16
ROW = {"vin": "VIN001", "device_id": "D1", "report_time": "2025-09-17 23:00:00",
       "lng": 120.0, "lat": 30.0, "speed": 10.0, "raw_payload": "p"}  # fmt: skip


def parquet_bytes(rows: int = 1) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(ods_table([ROW] * rows), sink)
    return sink.getvalue().to_pybytes()


def tick(storage: LakehouseStorage, cursor: str | None, instance: dg.DagsterInstance) -> Any:
    """One tick as the daemon runs it: ``evaluate_tick``'s SensorExecutionData (run_requests,
    cursor, which stays the old one when the tick skips, skip_message, asset_events)."""
    context = dg.build_sensor_context(
        cursor=cursor, resources={"storage": storage}, instance=instance, definitions=defs
    )
    return ods_datascan.evaluate_tick(context)


def put_files(
    proxy: FaultProxy, bucket: str, partition: HourPartition, names: list[str], body: bytes
) -> None:
    """Upload straight to the S3 server (not through the proxy, so its log stays the tick's)."""
    client = boto3.client(
        "s3", endpoint_url=proxy.upstream, config=Config(max_pool_connections=UPLOADERS)
    )
    folder = f"raw/{ODS_TABLE}/{partition.hive_path}"

    def put(name: str) -> None:
        client.put_object(Bucket=bucket, Key=f"{folder}/{name}", Body=body)

    with ThreadPoolExecutor(UPLOADERS) as pool:
        list(pool.map(put, names))


def request_kinds(proxy: FaultProxy, bucket: str) -> Counter[str]:
    """The proxy's logged requests by kind: list, footer, state_get, state_put, other."""
    kinds: Counter[str] = Counter()
    for r in proxy.log:
        if r.method == "GET" and "list-type=2" in r.query:
            kinds["list"] += 1
        elif r.method == "GET" and r.path.startswith(f"/{bucket}/raw/") and "range" in r.headers:
            kinds["footer"] += 1
        elif r.path.startswith(f"/{bucket}/warehouse/_datascan/"):
            kinds[f"state_{r.method.lower()}"] += 1
        else:
            kinds["other"] += 1
    return kinds


def settle(
    storage: LakehouseStorage, cursor: str | None, instance: dg.DagsterInstance, ticks: int = 20
) -> tuple[str | None, list[dg.RunRequest]]:
    """Tick until a pass is complete and nothing is left to request; the requests made."""
    requests = []
    for _ in range(ticks):
        result = tick(storage, cursor, instance)
        requests += result.run_requests
        cursor = result.cursor
        if not result.run_requests and ScanCursor.parse(cursor).resume is None:
            return cursor, requests
    raise AssertionError(f"DataScan did not settle in {ticks} ticks")
