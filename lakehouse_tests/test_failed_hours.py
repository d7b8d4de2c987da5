"""Hours whose DataScan run failed for good are requested again: bounded, with growing pauses.

Runs live in a real (temporary) Dagster instance: one really failing run of the hourly job, and
runs written through the instance's public API for the schedule and the guards.
"""

from __future__ import annotations

import time

import dagster as dg
import pytest

from lakehouse.definitions import defs
from lakehouse.defs.ods.failed_hours import (
    ATTEMPT_TAG,
    FILE_SET_TAG,
    PARTITION_TAG,
    RETRY_OF_TAG,
    WILL_RETRY_TAG,
    RetryPolicy,
    failed_hour_retries,
    hour_request,
)
from lakehouse.defs.ods.scan_limits import ENV
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse_tests.conftest import lakehouse_resources, ods_table, write_raw
from lakehouse_tests.datascan_support import ROW, tick

JOB = "hourly_lakehouse_job"
H23 = HourPartition.from_key("2025-09-17-23:00")
DIGEST = "1-0123456789abcdef"
# Dagster's own run tags, as its retry daemon sets them.
ROOT_RUN_TAG, PARENT_RUN_TAG = "dagster/root_run_id", "dagster/parent_run_id"
RETRY_NUMBER_TAG = "dagster/retry_number"
POLICY = RetryPolicy(retries=3, first_cooldown_seconds=300)
Status = dg.DagsterRunStatus


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def record_run(
    instance: dg.DagsterInstance,
    request: dg.RunRequest,
    status: dg.DagsterRunStatus,
    retry_of: dg.DagsterRun | None = None,
) -> dg.DagsterRun:
    """A run of the hourly job for ``request``'s hour, moved to ``status`` by its run events.

    ``retry_of``: the run is Dagster's automatic retry of that one (tags as its daemon sets them).
    """
    tags = {**request.tags, PARTITION_TAG: request.partition_key}
    if retry_of is not None:
        tags.update({ROOT_RUN_TAG: retry_of.run_id, PARENT_RUN_TAG: retry_of.run_id,
                     RETRY_NUMBER_TAG: "1"})  # fmt: skip
    run = instance.create_run_for_job(
        defs.resolve_job_def(JOB),
        tags=tags,
        root_run_id=retry_of.run_id if retry_of else None,
        parent_run_id=retry_of.run_id if retry_of else None,
    )
    if status == Status.STARTED:
        event = dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=JOB)
        instance.report_dagster_event(event, run_id=run.run_id)
    if status == Status.FAILURE:
        instance.report_run_failed(run)  # stores the failure event: end time, will_retry
    run = instance.get_run_by_id(run.run_id)
    assert run.status == status
    return run


def retries_at(instance: dg.DagsterInstance, now: float, digest: str = DIGEST) -> list:
    return failed_hour_retries(instance, JOB, {H23.key: digest}, POLICY, now)


def test_a_really_failed_run_is_requested_again_after_its_cool_down(
    local_storage, catalog, tmp_path, instance, monkeypatch
):
    write_raw(local_storage.raw(), "a.parquet", ods_table([ROW]), H23)
    first = tick(local_storage, None, instance)
    (request,) = first.run_requests
    # The run meets a raw zone it cannot use (as in an outage that outlasted its step retries).
    (tmp_path / "elsewhere").mkdir()
    broken = LakehouseStorage(raw_url=str(tmp_path / "elsewhere"), warehouse_url=str(tmp_path))
    run = defs.resolve_job_def(JOB).execute_in_process(
        partition_key=request.partition_key,
        tags=request.tags,
        instance=instance,
        resources=lakehouse_resources(broken, catalog),
        raise_on_error=False,
    )
    assert not run.success

    assert tick(local_storage, first.cursor, instance).run_requests == []  # 5 min cool-down
    monkeypatch.setenv(ENV["retry_cooldown_seconds"], "0.5")
    time.sleep(0.6)
    again = tick(local_storage, first.cursor, instance)
    (retry,) = again.run_requests
    assert retry.partition_key == H23.key
    assert retry.run_key not in {request.run_key, None}
    assert retry.tags[ATTEMPT_TAG] == "2"
    assert retry.tags[RETRY_OF_TAG] == run.run_id
    assert retry.tags[FILE_SET_TAG] == request.tags[FILE_SET_TAG]
    assert again.cursor == first.cursor  # the run history is the state, not the cursor


def test_attempts_back_off_exponentially_and_stop_at_the_limit(instance):
    request = hour_request(H23.key, DIGEST, files=1)
    assert [POLICY.cooldown(attempt) for attempt in (1, 2, 3)] == [300, 1200, 4800]
    for attempt in (1, 2, 3, 4):
        failed = record_run(instance, request, Status.FAILURE)
        ended = instance.get_run_record_by_id(failed.run_id).end_time
        if attempt == 4:
            (gave_up,) = retries_at(instance, now=ended + 10**6)
            assert gave_up.request is None and "giving up" in gave_up.note
            break
        (waiting,) = retries_at(instance, now=ended + POLICY.cooldown(attempt) - 1)
        assert waiting.request is None
        (retry,) = retries_at(instance, now=ended + POLICY.cooldown(attempt) + 1)
        assert retry.request.tags[ATTEMPT_TAG] == str(attempt + 1)
        assert retry.request.tags[RETRY_OF_TAG] == failed.run_id
        request = retry.request
    # Another file set (a new file arrived) is not this one's retry: it runs as a new request.
    assert retries_at(instance, now=time.time() + 10**6, digest="2-fedcba9876543210") == []


def test_no_request_while_a_run_for_the_hour_is_queued_or_in_progress(instance):
    request = hour_request(H23.key, DIGEST, files=1)
    # NOT_STARTED: created by the daemon, not yet through the queue (QUEUED needs a code
    # location's origin, which a test instance has none of); STARTED: in progress.
    for status in (Status.NOT_STARTED, Status.STARTED):
        older = record_run(instance, request, status)
        record_run(instance, request, Status.FAILURE)  # the latest run failed meanwhile
        assert retries_at(instance, now=time.time() + 10**6) == []
        instance.report_run_canceled(older)
    (retry,) = retries_at(instance, now=time.time() + 10**6)
    assert retry.request is not None


def test_dagster_run_retries_go_first():
    overrides = {"run_retries": {"enabled": True, "max_retries": 1}}
    with dg.instance_for_test(overrides=overrides) as instance:
        request = hour_request(H23.key, DIGEST, files=1)
        first = record_run(instance, request, Status.FAILURE)
        assert first.tags[WILL_RETRY_TAG] == "true"  # Dagster will retry it
        assert retries_at(instance, now=time.time() + 10**6) == []

        retried = record_run(instance, request, Status.FAILURE, retry_of=first)  # failed too
        assert retried.tags[WILL_RETRY_TAG] == "false"
        (retry,) = retries_at(instance, now=time.time() + 10**6)
        assert retry.request.tags[ATTEMPT_TAG] == "2"
        assert retry.request.tags[RETRY_OF_TAG] == retried.run_id
