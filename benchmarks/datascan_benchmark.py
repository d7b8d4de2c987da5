"""DataScan tick cost against bucket size, side by side with ``dagster_aws.s3.sensor.get_objects``.

    python benchmarks/datascan_benchmark.py                  # buckets of 1k, 10k and 100k objects
    python benchmarks/datascan_benchmark.py --sizes 1000 10000

Starts moto's S3 server on 127.0.0.1, fills a bucket with history (older hours of the raw
layout), and times one tick with 0 and with 100 new files: the project's sensor (listing from
its lateness window, cursor from the previous tick) and a ``get_objects`` scan from the last
modification time (the pattern in Dagster's S3 sensor docs). LIST calls are counted from the
server's own access log.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
from dagster_aws.s3.sensor import get_objects

from lakehouse.defs.ods.sensors import ods_datascan
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ODS_TABLE

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
NEWEST_HOUR = datetime(2025, 9, 17, 23)
FILES_PER_HOUR = 4


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("moto server did not start")


def key_of(hour: datetime, index: int) -> str:
    return f"raw/{ODS_TABLE}/dt={hour:%Y-%m-%d}/hh={hour:%H}/part-{index}.parquet"


def put_all(client, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"PAR1"), keys))


def list_calls(log: Path, bucket: str, since: int) -> int:
    time.sleep(0.2)
    with log.open() as handle:
        handle.seek(since)
        return sum(1 for line in handle if f"GET /{bucket}?" in line and "list-type=2" in line)


def measure(label: str, fn, log: Path, bucket: str) -> tuple[float, int, object]:
    offset = log.stat().st_size
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    return seconds, list_calls(log, bucket, offset), result


def bench_bucket(client, endpoint: str, log: Path, size: int) -> list[tuple]:
    bucket = f"bench-{size}"
    client.create_bucket(Bucket=bucket)
    hours = size // FILES_PER_HOUR
    history = [
        key_of(NEWEST_HOUR - timedelta(hours=h), i)
        for h in range(hours)
        for i in range(FILES_PER_HOUR)
    ]
    put_all(client, bucket, history)
    storage = LakehouseStorage(
        raw_url=f"s3://{bucket}/raw", warehouse_url=f"s3://{bucket}/warehouse",
        endpoint_url=endpoint,
    )  # fmt: skip

    def sensor_tick(cursor: str | None):
        context = dg.build_sensor_context(cursor=cursor, resources={"storage": storage})
        return ods_datascan(context)

    cursor = sensor_tick(None).cursor  # the first tick ever lists everything once
    newest = max(o["LastModified"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    rows = []
    for new in (0, 100):
        if new:
            put_all(client, bucket, [key_of(NEWEST_HOUR + timedelta(hours=1 + i // 4), 100 + i)
                                     for i in range(new)])  # fmt: skip
        secs, calls, result = measure("sensor", lambda: sensor_tick(cursor), log, bucket)
        rows.append((size, new, "lakehouse ods_datascan", secs, calls, len(result.run_requests)))
        secs, calls, found = measure(
            "get_objects",
            lambda: get_objects(bucket, f"raw/{ODS_TABLE}/", since_last_modified=newest,
                                client=client),
            log, bucket,
        )  # fmt: skip
        rows.append((size, new, "dagster_aws get_objects", secs, calls, len(found)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    os.environ.update(CREDENTIALS, AWS_REGION="us-east-1")
    log = Path(tempfile.mkdtemp(prefix="datascan-bench-")) / "requests.log"
    proc, endpoint = start_server(log)
    try:
        client = boto3.client("s3", endpoint_url=endpoint)
        rows = []
        for size in args.sizes:
            print(f"bucket of {size:,} objects ...", flush=True)
            rows.extend(bench_bucket(client, endpoint, log, size))
    finally:
        proc.terminate()
    print(
        f"\n{'objects':>8} {'new':>4} {'method':<24} {'tick s':>7} {'LIST calls':>10} {'found':>6}"
    )
    for size, new, method, secs, calls, found in rows:
        print(f"{size:>8,} {new:>4} {method:<24} {secs:>7.3f} {calls:>10} {found:>6}")
    print("found: run requests (hours) for the sensor, objects for get_objects")


if __name__ == "__main__":
    main()
