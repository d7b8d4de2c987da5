"""The data service over an object store: the warehouse and the share in a bucket (moto's S3).

The server reads the listed objects as pyarrow datasets through the storage zones (DuckDB gets
no httpfs and may open no file): the same answers, the same masking, and new hours appear once
the short listing cache expires.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pyarrow.parquet as pq
import pytest

from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ADS_TABLE, DWD_TABLE
from lakehouse_tests.api_support import DAY, api_server, build_day, hour_at, iso, new_key
from lakehouse_tests.conftest import wait_until


def test_the_api_serves_a_bucket_with_the_same_rules(
    s3_storage: LakehouseStorage, s3_env: dict[str, str], tmp_path: Path
):
    home = tmp_path / "project"
    day = build_day(home, s3_storage, raw_hours=2, published_hours=1, vehicles=8)
    keys_path = home / "data" / "api_keys.json"
    analyst = new_key(keys_path, "analyst", "a", rate_limit=1000.0, rate_burst=1000)
    partner = new_key(keys_path, "thirdparty", "t", rate_limit=1000.0, rate_burst=1000)
    env = {
        "LAKEHOUSE_RAW_URL": s3_storage.raw_url,
        "LAKEHOUSE_WAREHOUSE_URL": s3_storage.warehouse_url,
        "LAKEHOUSE_API_LISTING_TTL_SECONDS": "1",
    }
    warehouse = s3_storage.warehouse()
    ads_key = f"{ADS_TABLE}/{hour_at(0).hive_path}/part-0.parquet"
    expected = pq.read_table(warehouse.path(ads_key), filesystem=warehouse.filesystem)
    raw_vins = set(expected.column("vin").to_pylist())
    span = f"from={iso(hour_at(0))}&to={iso(hour_at(1))}"

    with api_server(home, tmp_path / "server.log", **env) as server:

        def get(key: str, path: str) -> httpx.Response:
            response = httpx.get(server.url + path, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200, response.text
            return response

        assert httpx.get(f"{server.url}/readyz").json()["checks"] == {
            "policy": True,
            "storage": True,
        }
        own = get(analyst, f"/v1/vehicles/VIN000002/hourly?{span}").json()["items"]
        (row,) = [r for r in expected.to_pylist() if r["vin"] == "VIN000002"]
        assert [(i["vin"], i["total_distance"]) for i in own] == [
            ("VIN000002", row["total_distance"])
        ]
        assert get(partner, f"/v1/vehicles/VIN000002/hourly?{span}").json()["items"] == []
        masked = get(partner, f"/v1/vehicles/{quote('V*******2')}/hourly?{span}").json()
        assert row["total_distance"] in [i["total_distance"] for i in masked["items"]]
        rows = get(partner, f"/v1/tables/{DWD_TABLE}/rows?dt={DAY.key}&limit=10000")
        assert rows.json()["items"] and not any(v in rows.text for v in raw_vins)
        fleet = get(analyst, f"/v1/fleet/hourly?{span}")
        assert len(fleet.json()["items"]) == 1

        day.publish_hour(hour_at(1))  # into the bucket, while the server runs
        wait_until(
            lambda: len(get(analyst, f"/v1/fleet/hourly?{span}").json()["items"]) == 2,
            timeout=20,
            what="the new hour to be served",
        )
        assert get(analyst, f"/v1/fleet/hourly?{span}").headers["etag"] != fleet.headers["etag"]
        log = server.log()
    assert "httpfs" not in log and analyst not in log and partner not in log


@pytest.fixture(autouse=True)
def _no_local_warehouse(tmp_path: Path):
    """Nothing of the bucket's data lands in the project folder."""
    yield
    assert not list((tmp_path / "project").rglob("part-0.parquet"))
