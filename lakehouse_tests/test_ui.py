"""`dagster dev` loads the code location from workspace.yaml, and the UI sees every layer."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request

from lakehouse_tests.conftest import DAGSTER, REPO, free_port, subprocess_env

QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name
    locationOrLoadError {
      __typename
      ... on PythonError { message }
      ... on RepositoryLocation { repositories { assetNodes { assetKey { path } } } }
    }
} } } }
"""


def _graphql(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_dagster_dev_loads_the_workspace(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # The code server runs from the workspace's folder, so anchor the instance paths here.
    config = (REPO / "dagster.yaml").read_text().replace("data/dagster", f"{home}/data/dagster")
    (home / "dagster.yaml").write_text(config)
    port = free_port()
    proc = subprocess.Popen(
        [
            DAGSTER,
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=subprocess_env(DAGSTER_HOME=str(home)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        entries = None
        while time.monotonic() < deadline:
            try:
                entries = _graphql(port)["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["locationOrLoadError"]:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert entries, "dagster dev did not answer"
        (entry,) = entries
        assert entry["name"] == "lakehouse"
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location
        keys = {n["assetKey"]["path"][0] for n in location["repositories"][0]["assetNodes"]}
        assert {"ods_vehicle_gps_raw", "dwd_vehicle_gps", "ads_vehicle_hourly_stat"} <= keys
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
