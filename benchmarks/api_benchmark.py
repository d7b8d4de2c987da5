"""The data service under load: `lakehouse serve` over generated hours, driven over loopback.

    python benchmarks/api_benchmark.py                       # 2,000 vehicles, 4 hours, 8 clients
    python benchmarks/api_benchmark.py --vehicles 10000 --requests 4000 --clients 16

It generates dirty raw hours with the project's generator, publishes them with the real hourly
job and the day with the DWS asset, creates keys (rate limit raised), starts the server as a
user does (a subprocess on a free port) and, per scenario, sends ``--requests`` GETs from
``--clients`` threads (one keep-alive connection each). It prints p50/p99 latency and
requests/s per scenario, every answer checked to be a 200 (or 304) with items.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test helpers, from anywhere

from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ADS_TABLE, DWD_TABLE
from lakehouse_tests.api_support import (
    DAY,
    api_server,
    build_day,
    hour_at,
    iso,
    new_key,
    run_load,
)

FAST = {"rate_limit": 1_000_000.0, "rate_burst": 1_000_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--hours", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--interval", type=int, default=60, help="seconds between reports")
    parser.add_argument("--requests", type=int, default=2000, help="per scenario")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--only", default=None, help="run only the scenarios whose name contains this"
    )
    parser.add_argument("--threads", type=int, default=None, help="LAKEHOUSE_API_THREADS")
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        home = Path(tmp) / "project"
        storage = LakehouseStorage(
            raw_url=str(home / "data/raw"), warehouse_url=str(home / "data/warehouse")
        )
        began = time.perf_counter()
        build_day(
            home, storage, raw_hours=args.hours, published_hours=args.hours,
            vehicles=args.vehicles, interval_s=args.interval,
        )  # fmt: skip
        print(
            f"published {args.hours} hour(s) of {args.vehicles:,} vehicles (every "
            f"{args.interval} s) and their day in {time.perf_counter() - began:.1f} s"
        )
        keys_path = home / "data" / "api_keys.json"
        analyst = new_key(keys_path, "analyst", "bench-analyst", **FAST)
        partner = new_key(keys_path, "thirdparty", "bench-partner", **FAST)
        span = f"from={iso(hour_at(0))}&to={iso(hour_at(args.hours - 1))}"
        rng = random.Random(7)
        vins = [f"VIN{rng.randint(1, args.vehicles):06d}" for _ in range(200)]

        def masked(vin: str) -> str:
            return quote(vin[0] + "*" * (len(vin) - 2) + vin[-1])

        scenarios = [
            ("vehicle hourly (analyst)", analyst,
             [f"/v1/vehicles/{v}/hourly?{span}" for v in vins]),
            ("vehicle hourly (thirdparty, masked)", partner,
             [f"/v1/vehicles/{masked(v)}/hourly?{span}" for v in vins]),
            ("vehicle daily (analyst)", analyst,
             [f"/v1/vehicles/{v}/daily?from={DAY.key}&to={DAY.key}" for v in vins]),
            ("fleet hourly (analyst)", analyst, [f"/v1/fleet/hourly?{span}"]),
            ("ADS rows, 1000/page (analyst)", analyst,
             [f"/v1/tables/{ADS_TABLE}/rows?dt={DAY.key}&hh={hour_at(0).hh}&limit=1000"]),
            ("DWD rows, 100/page (thirdparty)", partner,
             [f"/v1/tables/{DWD_TABLE}/rows?dt={DAY.key}&hh={hour_at(0).hh}"]),
            ("tables (thirdparty)", partner, ["/v1/tables"]),
        ]  # fmt: skip
        print(f"\n{args.requests} requests per scenario from {args.clients} clients on loopback")
        print(f"{'':40} {'every request queries':>26}   {'page cache on (default)':>26}")
        print(f"{'scenario':40} " + f"{'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}   " * 2)
        results: dict[str, list] = {}
        for cache_mb in ("0", "64"):
            env = {"LAKEHOUSE_API_RESPONSE_CACHE_MB": cache_mb}
            if args.threads:
                env["LAKEHOUSE_API_THREADS"] = str(args.threads)
            with api_server(home, Path(tmp) / f"server-{cache_mb}.log", **env) as server:
                for name, key, paths in scenarios:
                    if not args.only or args.only in name:
                        results.setdefault(name, []).append(
                            run_load(server.url, key, paths, args.requests, args.clients,
                                     check=_has_items)
                        )  # fmt: skip
                etag = httpx.get(
                    f"{server.url}/v1/fleet/hourly?{span}",
                    headers={"Authorization": f"Bearer {analyst}"},
                ).headers["etag"]
                results.setdefault("fleet hourly, If-None-Match -> 304", []).append(
                    _revalidate(server.url, analyst, span, etag, args)
                )
        for name, measured in results.items():
            print(f"{name:40} " + "".join(_cells(r) for r in measured))


def _has_items(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text[:300]
    assert response.json()["items"], response.request.url


def _revalidate(url: str, key: str, span: str, etag: str, args: argparse.Namespace):
    """Conditional requests: the ETag matches, so no query runs and 304 comes back."""

    def check(response: httpx.Response) -> None:
        assert response.status_code == 304, response.status_code

    return run_load(
        url, key, [f"/v1/fleet/hourly?{span}"], args.requests, args.clients,
        check=check, headers={"If-None-Match": etag},
    )  # fmt: skip


def _cells(result) -> str:
    rate = result.requests / result.seconds
    return f"{result.percentile(50):8.1f} {result.percentile(99):8.1f} {rate:8.0f}   "


if __name__ == "__main__":
    main()
