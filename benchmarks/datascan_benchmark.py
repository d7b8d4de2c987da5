"""DataScan tick cost with 1k, 10k and 100k objects in the lateness window, and a few new files.

    python benchmarks/datascan_benchmark.py                   # windows of 1k, 10k and 100k objects
    python benchmarks/datascan_benchmark.py --sizes 1000 10000 --cold 1000

Starts moto's S3 server in a subprocess on 127.0.0.1; it fills one bucket per size with the
objects of a 48-hour window (real one-row Parquet files) through moto's backend, since uploading
100k objects over HTTP alone takes minutes on a small machine. Everything the sensor does goes
over HTTP, and requests are counted from the server's own access log.

Per size: the window's footer verdicts are first put where earlier ticks would have left them
(state objects and cursor, computed from one listing), then one pass over the window runs with
nothing new (idle), and one after 5 files land in the newest hour (new files). For the sizes
given to ``--cold``, a cold start (empty cursor, no state: every footer read) is measured too. A
pass that does not fit in one tick's budget is carried over to the next, so each row says how
many ticks the pass took and the slowest tick. moto answers each listing page in time that
grows with the bucket (about 0.35 s per page at 100k objects); S3 does not.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import posixpath
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.defs.ods.discovery import RAW_PREFIX, ScanCursor, scan
from lakehouse.defs.ods.footer_state import Verdict, save_verdicts
from lakehouse.defs.ods.sensors import ods_datascan
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ODS_SCHEMA, ODS_TABLE

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
NEWEST_HOUR = datetime(2025, 9, 17, 23)
WINDOW_HOURS = 48
NEW_FILES = 5
MAX_TICKS = 40
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # the server colours lines of non-200 answers
_LOG_LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) /([^/? ]+)(/[^? ]*)?(\?[^ ]*)? HTTP')


def parquet_bytes() -> bytes:
    row = {f.name: None for f in ODS_SCHEMA} | {"vin": "VIN001", "device_id": "D1"}
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([row], schema=ODS_SCHEMA), sink)
    return sink.getvalue().to_pybytes()


def window_keys(size: int) -> list[str]:
    per_hour = math.ceil(size / WINDOW_HOURS)
    keys = []
    for h in range(WINDOW_HOURS):
        hour = NEWEST_HOUR - timedelta(hours=h)
        folder = f"raw/{ODS_TABLE}/dt={hour:%Y-%m-%d}/hh={hour:%H}"
        keys += [f"{folder}/part-{i:05d}.parquet" for i in range(per_hour)]
    return keys[:size]


def serve(sizes: list[int]) -> None:
    """Server mode (a subprocess): moto on a free port, one bucket filled per size."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    access_log = logging.getLogger("werkzeug")  # one line per request, on stderr
    access_log.addHandler(logging.StreamHandler(sys.stderr))
    access_log.setLevel(logging.INFO)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    body = parquet_bytes()
    for size in sizes:
        backend.create_bucket(f"bench-{size}", "us-east-1")
        for key in window_keys(size):
            backend.put_object(f"bench-{size}", key, body)
    print(f"PORT {server.get_host_and_port()[1]}", flush=True)
    while True:
        time.sleep(3600)


def count_requests(log: Path, bucket: str, since: int) -> Counter[str]:
    time.sleep(0.2)  # let the server flush its access log
    kinds: Counter[str] = Counter()
    with log.open() as handle:
        handle.seek(since)
        for line in handle:
            match = _LOG_LINE.search(_COLOURS.sub("", line))
            if not match or match.group(2) != bucket:
                continue
            method, path, query = match.group(1), match.group(3) or "", match.group(4) or ""
            if "list-type=2" in query:
                kinds["list"] += 1
            elif "/_datascan/" in path:
                kinds[f"state_{method.lower()}"] += 1
            elif method == "GET" and path.startswith("/raw/"):
                kinds["footer"] += 1
            else:
                kinds["other"] += 1
    return kinds


def seed_state(storage: LakehouseStorage) -> str:
    """Verdicts and cursor as earlier ticks would have left them for the window's files."""
    listing = storage.list_raw(RAW_PREFIX, None)
    result = scan(listing.objects, ScanCursor())
    warehouse = storage.warehouse()
    for hour in result.changed:
        verdicts = {posixpath.basename(f.key): Verdict(f.size, f.version, 1) for f in hour.files}
        save_verdicts(warehouse, hour.partition, verdicts)
    return result.cursor.serialize()


def run_pass(
    storage: LakehouseStorage, cursor: str | None, log: Path, bucket: str
) -> tuple[str | None, Counter]:
    """Ticks until a pass (a listing of the whole window, maybe over several ticks) is complete;
    its costs."""
    offset = log.stat().st_size
    durations, runs = [], 0
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(MAX_TICKS):
            context = dg.build_sensor_context(
                cursor=cursor, resources={"storage": storage}, instance=instance
            )
            started = time.perf_counter()
            result = ods_datascan(context)
            durations.append(time.perf_counter() - started)
            if isinstance(result, dg.SkipReason):
                sys.exit(f"tick skipped: {result.skip_message}")
            runs += len(result.run_requests)
            cursor = result.cursor
            if ScanCursor.parse(cursor).resume is None:
                break
    kinds = count_requests(log, bucket, offset)
    kinds.update(ticks=len(durations), runs=runs)
    kinds["max_s"] = max(durations)  # type: ignore[assignment]
    return cursor, kinds


def bench(endpoint: str, log: Path, size: int, cold: bool) -> list[tuple]:
    bucket = f"bench-{size}"
    storage = LakehouseStorage(
        raw_url=f"s3://{bucket}/raw", warehouse_url=f"s3://{bucket}/warehouse",
        endpoint_url=endpoint,
    )  # fmt: skip
    rows = []
    if cold:
        _, costs = run_pass(storage, None, log, bucket)
        rows.append((size, "cold start (all footers)", costs))
        storage.warehouse().delete_prefix("_datascan")
    cursor = seed_state(storage)
    cursor, costs = run_pass(storage, cursor, log, bucket)
    rows.append((size, "idle", costs))
    client = boto3.client("s3", endpoint_url=endpoint)
    body = parquet_bytes()
    for i in range(NEW_FILES):
        key = f"raw/{ODS_TABLE}/{HourPartition(NEWEST_HOUR).hive_path}/new-{i}.parquet"
        client.put_object(Bucket=bucket, Key=key, Body=body)
    _, costs = run_pass(storage, cursor, log, bucket)
    rows.append((size, f"{NEW_FILES} new files", costs))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--cold", type=int, nargs="*", default=[1000, 10000],
                        help="sizes whose cold start is measured too")  # fmt: skip
    parser.add_argument("--serve", type=int, nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    os.environ.update(CREDENTIALS, AWS_REGION="us-east-1")
    log = Path(tempfile.mkdtemp(prefix="datascan-bench-")) / "requests.log"
    print(f"filling {', '.join(f'{s:,}' for s in args.sizes)} objects ...", flush=True)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", *map(str, args.sizes)],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
    )  # fmt: skip
    try:
        lines = iter(server.stdout.readline, "")
        port = next(line.split()[1] for line in lines if line.startswith("PORT "))
        endpoint = f"http://127.0.0.1:{port}"
        rows = []
        for size in args.sizes:
            print(f"window of {size:,} objects ...", flush=True)
            rows += bench(endpoint, log, size, size in args.cold)
    finally:
        server.terminate()
    header = ("objects", "scenario", "ticks", "max s/tick", "LIST", "footer GET", "state GET",
              "state PUT", "other", "runs")  # fmt: skip
    print("\n{:>8} {:<25} {:>5} {:>10} {:>5} {:>10} {:>9} {:>9} {:>5} {:>4}".format(*header))
    for size, scenario, c in rows:
        print(
            f"{size:>8,} {scenario:<25} {c['ticks']:>5} {c['max_s']:>10.2f} {c['list']:>5} "
            f"{c['footer']:>10} {c['state_get']:>9} {c['state_put']:>9} {c['other']:>5} "
            f"{c['runs']:>4}"
        )
    print("\nticks: of one pass over the window (carried over from tick to tick when it does not")
    print("fit in one tick's budget); requests summed over the pass; runs: hours requested.")


if __name__ == "__main__":
    main()
