"""API keys as operators manage them: `lakehouse api-key` in its own process, a running server.

Keys are printed once and stored as salted hashes in a private file; a running server sees a new
or revoked key at the next request; expired, revoked and unknown keys get 401.
"""

from __future__ import annotations

import json
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lakehouse_tests.api_support import api_server
from lakehouse_tests.conftest import run_cli, subprocess_env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty project home: no data yet, the repository's policy."""
    path = tmp_path / "project"
    path.mkdir()
    return path


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=subprocess_env(LAKEHOUSE_HOME=str(home), **env), cwd=home)


def create(home: Path, *args: str, **env: str) -> str:
    done = cli(home, "api-key", "create", *args, **env)
    assert done.returncode == 0, done.stderr
    (key,) = done.stdout.split()  # the key alone on stdout, for scripts
    assert "shown once" in done.stderr
    return key


def test_keys_are_printed_once_and_stored_as_salted_hashes(home):
    key = create(home, "--role", "analyst", "--name", "dashboards", "--expires", "30")
    assert key.startswith("lhk_") and len(key) > 50
    other = create(home, "--role", "analyst")
    assert other != key
    path = home / "data" / "api_keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    secret = key.split("_", 2)[2]
    assert key not in text and secret not in text
    records = json.loads(text)["keys"]
    assert records[0]["name"] == "dashboards"
    assert {len(r["salt"]) for r in records} == {32} and records[0]["salt"] != records[1]["salt"]
    expires = datetime.fromisoformat(records[0]["expires"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    listed = cli(home, "api-key", "list")
    assert listed.returncode == 0
    assert "dashboards" in listed.stdout and "analyst" in listed.stdout
    assert "active" in listed.stdout and secret not in listed.stdout

    for args, message in (
        (["--role", "analyst", "--name", "dashboards"], "exists already"),
        (["--role", "nobody"], "no role 'nobody'"),
        (["--role", "analyst", "--name", "bad name!"], "a key name is"),
        (["--role", "analyst", "--expires", "0"], "--expires"),
    ):
        done = cli(home, "api-key", "create", *args)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_concurrent_creates_keep_every_key(home):
    with ThreadPoolExecutor(4) as pool:
        keys = list(
            pool.map(lambda i: create(home, "--role", "analyst", "--name", f"k{i}"), range(4))
        )
    assert len(set(keys)) == 4
    names = {r["name"] for r in json.loads((home / "data/api_keys.json").read_text())["keys"]}
    assert names == {"k0", "k1", "k2", "k3"}


def test_a_running_server_follows_new_revoked_and_expired_keys(home, tmp_path):
    keys_file = tmp_path / "secrets" / "keys.json"
    env = {"LAKEHOUSE_API_KEYS_PATH": str(keys_file)}
    with api_server(home, tmp_path / "server.log", **env) as server:

        def status(key: str) -> httpx.Response:
            return httpx.get(f"{server.url}/v1/tables", headers={"Authorization": f"Bearer {key}"})

        key = create(home, "--role", "thirdparty", "--name", "partner", **env)  # server running
        assert keys_file.exists() and not (home / "data/api_keys.json").exists()
        assert status(key).status_code == 200
        spare = create(home, "--role", "analyst", "--name", "spare", **env)

        done = cli(home, "api-key", "revoke", "partner", **env)
        assert done.returncode == 0 and "revoked" in done.stdout
        revoked = status(key)
        assert revoked.status_code == 401
        assert revoked.json()["message"] == "API key 'partner' has been revoked"
        assert "revoked" in cli(home, "api-key", "list", **env).stdout
        assert cli(home, "api-key", "revoke", "nobody", **env).returncode != 0

        # Time passes: the spare key's expiry is now behind us.
        data = json.loads(keys_file.read_text())
        for record in data["keys"]:
            if record["name"] == "spare":
                record["expires"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        keys_file.write_text(json.dumps(data))
        expired = status(spare)
        assert expired.status_code == 401 and "expired" in expired.json()["message"]
        assert status(spare[:-1] + ("A" if spare[-1] != "A" else "B")).status_code == 401

        # A key file that cannot be read refuses everyone (fails closed), until it is fixed.
        good = keys_file.read_text()
        keys_file.write_text("{not json")
        broken = status(spare)
        assert broken.status_code == 503 and broken.json()["error"] == "unavailable"
        keys_file.write_text(good)
        assert status(key).status_code == 401 and status(spare).status_code == 401
        fresh = create(home, "--role", "analyst", "--name", "fresh", **env)
        assert status(fresh).status_code == 200
        log = server.log()
    assert key not in log and spare not in log and spare.split("_", 2)[2] not in log


def test_the_lakehouse_command_lists_serve_and_api_key(home):
    top = cli(home, "--help")
    assert top.returncode == 0
    assert "serve" in top.stdout and "api-key" in top.stdout
    for args in (["serve", "--help"], ["api-key", "--help"], ["api-key", "create", "--help"]):
        done = cli(home, *args)
        assert done.returncode == 0 and "Usage:" in done.stdout, args
    assert "--port" in cli(home, "serve", "--help").stdout
    bad = cli(home, "serve", "--port", "80000")
    assert bad.returncode != 0 and "80000" in bad.stderr
