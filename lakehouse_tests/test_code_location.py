"""One project, one code location: every documented entry point names it `lakehouse`.

Run from the repository root without ``-m``/``-w``, Dagster's workspace commands
(``dagster job backfill``, ``dagster-daemon run``, ``dagster dev``, ``dagster-webserver``) read
``[tool.dagster]`` in pyproject.toml, falling back to workspace.yaml; both name the location
``lakehouse``. ``-m lakehouse.definitions`` would name it ``lakehouse.definitions``: a second
location whose DataScan sensor keeps a cursor of its own and re-requests every hour.
"""

from __future__ import annotations

import subprocess
import time
import tomllib

import yaml

from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse_tests.conftest import (
    DAEMON,
    DAGSTER,
    HOUR,
    REPO,
    free_port,
    lakehouse_init,
    open_instance,
    project_dir,
    running,
    subprocess_env,
    wait_until,
)

LOCATION = "lakehouse"


def test_pyproject_and_workspace_name_the_same_location():
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    (entry,) = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    assert tool == {"module_name": "lakehouse.definitions", "code_location_name": LOCATION}
    assert entry["python_module"] == {"module_name": tool["module_name"], "location_name": LOCATION}


def _datascan_states(instance):
    return [s for s in instance.all_instigator_state() if s.name == "ods_datascan"]


def test_backfill_daemon_and_dev_share_one_location_and_one_sensor_cursor(tmp_path, monkeypatch):
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work), LAKEHOUSE_DATASCAN_INTERVAL_SECONDS="2")
    monkeypatch.chdir(work)
    lakehouse_init(work, env)
    write_sample_data(
        LakehouseStorage().raw(create=True), start=HOUR.start, vehicles=4, interval_s=300
    )
    instance = open_instance(work)
    # The README's backfill command queues a run; the README's daemon launches it, and its
    # DataScan sensor requests the uploaded hour.
    backfill = subprocess.run(
        [DAGSTER, "job", "backfill", "-j", "hourly_lakehouse_job", "--from", HOUR.key,
         "--to", HOUR.key, "--noprompt"],
        cwd=work, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert backfill.returncode == 0, backfill.stderr[-3000:]

    def both_runs_finished() -> list:
        runs = instance.get_runs()
        return runs if len(runs) == 2 and all(r.is_finished for r in runs) else []

    with running([DAEMON, "run"], work, env):
        runs = wait_until(both_runs_finished, 150, "the backfill's and DataScan's runs to finish")
    by_trigger = {r.tags.get("lakehouse/trigger", "backfill"): r for r in runs}
    assert set(by_trigger) == {"backfill", "datascan"}
    assert {r.status.value for r in runs} == {"SUCCESS"}
    assert {r.remote_job_origin.location_name for r in runs} == {LOCATION}
    (state,) = _datascan_states(instance)
    assert state.origin.repository_origin.code_location_origin.location_name == LOCATION

    # `dagster dev` (the README's command, no -w) evaluates the same sensor with the same cursor:
    # it ticks, and requests nothing for the hour the daemon already requested.
    def ticks_since(started: float) -> list:
        return [
            tick
            for s in _datascan_states(instance)
            for tick in instance.get_ticks(s.instigator_origin_id, s.selector_id, after=started)
            if tick.status.value != "STARTED"
        ]

    dev_started = time.time()
    with running([DAGSTER, "dev", "-h", "127.0.0.1", "-p", str(free_port())], work, env):
        ticks = wait_until(lambda: ticks_since(dev_started), 120, "a DataScan tick under dev")
    assert all(not tick.run_ids for tick in ticks)
    assert len(_datascan_states(instance)) == 1
    assert len(instance.get_runs()) == 2


def test_readme_starts_dagster_without_module_flags():
    """The README's workspace commands rely on pyproject.toml, so they all name `lakehouse`."""
    commands = [
        line.strip()
        for line in (REPO / "README.md").read_text().splitlines()
        if line.strip().startswith(("dagster job", "dagster-daemon", "dagster dev", "dagster-web"))
        # `job execute`, like `asset materialize`, runs in its own process and reads neither
        # pyproject.toml nor workspace.yaml: it needs -m, and its runs carry no code location.
        and not line.strip().startswith("dagster job execute")
    ]
    assert any(c.startswith("dagster-daemon run") for c in commands)
    assert any(c.startswith("dagster job backfill") for c in commands)
    for command in commands:
        assert " -m " not in command and " -f " not in command, command
