"""Policy edits reach a running server: revoked grants, unshared tables, masked roles, bad files.

The server watches its policy file (``LAKEHOUSE_POLICY_PATH``); each change is applied from the
next request on, and a file that no longer loads stops all data (503) until it is fixed.
"""

from __future__ import annotations

import shutil
from urllib.parse import quote

import httpx
import pytest

from lakehouse.resources.storage import LakehouseStorage
from lakehouse.tables import ADS_TABLE, DWS_TABLE
from lakehouse_tests.api_support import DAY, api_server, build_day, hour_at, iso, new_key
from lakehouse_tests.conftest import REPO, edit_policy, wait_until

HOUR = f"from={iso(hour_at(0))}&to={iso(hour_at(0))}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """One published hour (and its day), two keys, and a server on a policy file of its own."""
    root = tmp_path_factory.mktemp("policy")
    home = root / "project"
    storage = LakehouseStorage(
        raw_url=str(home / "data/raw"), warehouse_url=str(home / "data/warehouse")
    )
    build_day(home, storage, raw_hours=1, published_hours=1, vehicles=6)
    policy = root / "policy.yaml"
    shutil.copy(REPO / "policy.yaml", policy)
    keys = {
        role: new_key(home / "data/api_keys.json", role, role, rate_limit=1000.0, rate_burst=1000)
        for role in ("analyst", "thirdparty")
    }
    with api_server(home, root / "server.log", LAKEHOUSE_POLICY_PATH=str(policy)) as server:
        yield server, keys, policy
    shutil.copy(REPO / "policy.yaml", policy)


def get(server, key: str, path: str) -> httpx.Response:
    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def until_status(server, key: str, path: str, status: int) -> httpx.Response:
    """The policy is re-read within a second or so: poll until the answer changes."""
    return wait_until(
        lambda: (r := get(server, key, path)).status_code == status and r,
        timeout=15,
        what=f"{path} to answer {status}",
    )


@pytest.fixture(autouse=True)
def seed_policy_after(served):
    """Each test starts once the server applies the seed policy again."""
    yield
    server, keys, policy = served
    shutil.copy(REPO / "policy.yaml", policy)
    wait_until(
        lambda: _seed_in_force(server, keys), timeout=15, what="the seed policy in force again"
    )


def _seed_in_force(server, keys: dict[str, str]) -> bool:
    tables = get(server, keys["thirdparty"], "/v1/tables").json().get("items", [])
    analyst = get(server, keys["analyst"], f"/v1/vehicles/VIN000001/hourly?{HOUR}").json()
    return [t["name"] for t in tables] == ["dwd_vehicle_gps", ADS_TABLE] and bool(
        analyst.get("items")
    )


def test_a_revoked_grant_is_refused_from_the_next_request(served):
    server, keys, policy = served
    path = f"/v1/vehicles/{quote('V*******1')}/hourly?{HOUR}"
    assert get(server, keys["thirdparty"], path).status_code == 200
    before = get(server, keys["thirdparty"], "/v1/tables").headers["etag"]
    edit_policy(policy, lambda p: p["roles"]["thirdparty"]["tables"].remove(ADS_TABLE))
    refused = until_status(server, keys["thirdparty"], path, 403)
    assert refused.json()["message"] == f"role 'thirdparty' has no grant on table '{ADS_TABLE}'"
    tables = get(server, keys["thirdparty"], "/v1/tables")
    assert tables.headers["etag"] != before
    assert ADS_TABLE not in [t["name"] for t in tables.json()["items"]]


def test_a_granted_table_outside_the_share_is_not_served_from_the_warehouse(served):
    server, keys, policy = served
    path = f"/v1/vehicles/{quote('V*******1')}/daily?from={DAY.key}&to={DAY.key}"
    assert get(server, keys["thirdparty"], path).status_code == 403
    edit_policy(policy, lambda p: p["roles"]["thirdparty"]["tables"].append(DWS_TABLE))
    answer = until_status(server, keys["thirdparty"], path, 404)
    assert answer.json()["error"] == "not_shared"
    assert f"table '{DWS_TABLE}' is granted to role 'thirdparty'" in answer.json()["message"]
    listed = {t["name"]: t for t in get(server, keys["thirdparty"], "/v1/tables").json()["items"]}
    assert listed[DWS_TABLE]["available"] is False and listed[DWS_TABLE]["note"]
    assert listed[ADS_TABLE]["available"] is True


def test_a_role_masked_later_is_served_from_a_share_only(served):
    server, keys, policy = served
    path = f"/v1/vehicles/VIN000001/hourly?{HOUR}"
    assert get(server, keys["analyst"], path).json()["items"]
    edit_policy(policy, lambda p: p["masking_policies"]["masking_vin"]["roles"].append("analyst"))
    answer = until_status(server, keys["analyst"], path, 404)
    assert answer.json()["error"] == "not_shared"
    assert "VIN000001" not in answer.text


def test_a_policy_that_no_longer_loads_stops_the_data_until_it_is_fixed(served):
    server, keys, policy = served
    path = f"/v1/vehicles/VIN000001/hourly?{HOUR}"
    policy.write_text("roles:\n  analyst:\n    tables: [no_such_table]\n")
    answer = until_status(server, keys["analyst"], path, 503)
    assert answer.json()["error"] == "unavailable"
    assert httpx.get(f"{server.url}/readyz").json() == {
        "status": "unavailable",
        "checks": {"policy": False, "storage": False},
    }
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # the process is fine
    shutil.copy(REPO / "policy.yaml", policy)
    until_status(server, keys["analyst"], path, 200)
    assert httpx.get(f"{server.url}/readyz").status_code == 200
