"""A discovery-triggered run that fails for a transient reason is retried by the daemon."""

from __future__ import annotations

import uuid

import boto3
import dagster as dg

from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    DAEMON,
    HOUR,
    lakehouse_init,
    open_instance,
    project_dir,
    running,
    subprocess_env,
    wait_until,
)


def test_a_failed_datascan_run_is_retried_and_succeeds(tmp_path, monkeypatch, s3_env):
    """The warehouse bucket does not exist yet when DataScan's run starts (as while a bucket
    is being provisioned); it appears once that run has failed, and the daemon's retry lands
    the hour. Raw files stay local; the warehouse is on the real S3-protocol test server.

    (Unreadable raw files would not do: the intake quarantines them and the hour succeeds
    without them, by design; and the tests run as root, where chmod does not stop reads.)
    """
    bucket = f"late-{uuid.uuid4().hex[:12]}"
    work = project_dir(tmp_path)
    env = subprocess_env(
        DAGSTER_HOME=str(work),
        LAKEHOUSE_DATASCAN_INTERVAL_SECONDS="2",
        LAKEHOUSE_WAREHOUSE_URL=f"s3://{bucket}/warehouse",
        **s3_env,
    )
    monkeypatch.chdir(work)
    lakehouse_init(work, env)
    write_sample_data(LakehouseStorage().raw(), start=HOUR.start, vehicles=4, interval_s=300)
    instance = open_instance(work)

    def runs_of_the_hour() -> list[dg.DagsterRun]:
        return instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": HOUR.key}))

    with running([DAEMON, "run"], work, env):
        (first,) = wait_until(
            lambda: [r for r in runs_of_the_hour() if r.status == dg.DagsterRunStatus.FAILURE],
            120,
            "DataScan's run to fail on the missing bucket",
        )
        boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=bucket)
        last = wait_until(
            lambda: next((r for r in runs_of_the_hour() if r.status.value == "SUCCESS"), None),
            120,
            "a retry of the failed run to succeed",
        )

    assert first.tags["lakehouse/trigger"] == "datascan"
    failure_text = " ".join(str(e.dagster_event) for e in instance.all_logs(first.run_id))
    assert bucket in failure_text
    # The retries form one group: each names its parent, the root is DataScan's run.
    runs = {r.run_id: r for r in runs_of_the_hour()}
    chain, run = [last], last
    while run.parent_run_id:
        run = runs[run.parent_run_id]
        chain.append(run)
    assert chain[-1].run_id == first.run_id
    print(f"retry chain: {[r.status.value for r in reversed(chain)]}")
    assert 2 <= len(chain) <= 3  # max_retries: 2
    retry = chain[-2]
    assert retry.tags["dagster/parent_run_id"] == first.run_id
    assert retry.tags["dagster/root_run_id"] == first.run_id
    assert retry.tags["dagster/retry_number"] == "1"
    assert retry.tags["lakehouse/trigger"] == "datascan"  # the retry keeps the run's tags
    assert instance.get_run_by_id(first.run_id).tags["dagster/auto_retry_run_id"] == retry.run_id
    warehouse = LakehouseStorage(warehouse_url=f"s3://{bucket}/warehouse").warehouse()
    assert warehouse.exists(partition_relpath(ADS_TABLE, HOUR))
