"""DataScan's run requests, and the re-requests of hours whose DataScan run failed for good.

A run key is spent once its run exists, and a failed hour's file set does not change by itself,
so a run that failed for a transient reason (an outage outlasting the step retries) would never
run again. Dagster's run retries come first; when the hour's latest run is still a failure after
them (``dagster/will_retry`` is not ``true``), DataScan requests the hour again with a new run
key, after a cool-down that grows with each attempt (5, 20, 80 min by default), a bounded number
of times per file set. The attempt is a run tag, so the history is the state: nothing is added to
the cursor, and the schedule survives restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

TRIGGER_TAG, TRIGGER = "lakehouse/trigger", "datascan"
FILE_SET_TAG = "lakehouse/file_set"
FILES_TAG = "lakehouse/files"
ATTEMPT_TAG = "lakehouse/attempt"
RETRY_OF_TAG = "lakehouse/retry_of"
# Dagster's own run tags (values of dagster._core.storage.tags, which is private).
PARTITION_TAG = "dagster/partition"
WILL_RETRY_TAG = "dagster/will_retry"
COOLDOWN_GROWTH = 4
# Failed DataScan runs looked at per tick, and runs per hour when one of them is a candidate.
FAILED_RUNS_LOOKED_AT = 500
RUNS_PER_HOUR_LOOKED_AT = 20


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a failed hour is requested again."""

    retries: int = 3  # DataScan re-requests per file set, after the first attempt
    first_cooldown_seconds: float = 300.0

    def cooldown(self, attempt: int) -> float:
        """Pause after attempt ``attempt`` (1-based) failed: 5, 20, 80 min by default."""
        return self.first_cooldown_seconds * COOLDOWN_GROWTH ** (attempt - 1)


def hour_request(
    partition_key: str, digest: str, files: int, attempt: int = 1, retry_of: str | None = None
) -> dg.RunRequest:
    """The run request for an hour's file set: ``run_key = hour@digest`` (``#n`` on attempt n)."""
    tags = {
        TRIGGER_TAG: TRIGGER,
        FILE_SET_TAG: digest,
        FILES_TAG: str(files),
        ATTEMPT_TAG: str(attempt),
    }
    if retry_of:
        tags[RETRY_OF_TAG] = retry_of
    suffix = f"#{attempt}" if attempt > 1 else ""
    return dg.RunRequest(
        run_key=f"{partition_key}@{digest}{suffix}", partition_key=partition_key, tags=tags
    )


@dataclass(frozen=True)
class Retry:
    """One re-request, or why a failed hour is not requested (yet)."""

    partition_key: str
    request: dg.RunRequest | None
    note: str


def failed_hour_retries(
    instance: dg.DagsterInstance,
    job_name: str,
    hours: Mapping[str, str],
    policy: RetryPolicy,
    now: float,
) -> list[Retry]:
    """Re-requests for hours (partition key -> requested digest) whose latest run failed for good.

    One query for failed DataScan runs of these hours (normally none), and one per failed hour.
    """
    if not hours:
        return []
    failed = instance.get_run_records(
        dg.RunsFilter(
            job_name=job_name,
            statuses=[dg.DagsterRunStatus.FAILURE],
            tags={TRIGGER_TAG: TRIGGER, PARTITION_TAG: sorted(hours)},
        ),
        limit=FAILED_RUNS_LOOKED_AT,
    )
    runs = [record.dagster_run for record in failed]
    candidates = {
        run.tags[PARTITION_TAG]
        for run in runs
        if run.tags.get(FILE_SET_TAG) == hours[run.tags[PARTITION_TAG]]
    }
    return [
        retry
        for key in sorted(candidates)
        if (retry := _retry(instance, job_name, key, hours[key], policy, now)) is not None
    ]


def _retry(
    instance: dg.DagsterInstance,
    job_name: str,
    partition_key: str,
    digest: str,
    policy: RetryPolicy,
    now: float,
) -> Retry | None:
    records = instance.get_run_records(
        dg.RunsFilter(job_name=job_name, tags={PARTITION_TAG: partition_key}),
        limit=RUNS_PER_HOUR_LOOKED_AT,
    )
    if not records or any(not r.dagster_run.is_finished for r in records):
        return None  # a run for the hour is queued or in progress
    latest = records[0]
    run = latest.dagster_run
    if (
        run.status != dg.DagsterRunStatus.FAILURE
        or run.tags.get(TRIGGER_TAG) != TRIGGER
        or run.tags.get(FILE_SET_TAG) != digest
        or run.tags.get(WILL_RETRY_TAG) == "true"  # Dagster's run retries are not done yet
    ):
        return None
    attempt = int(run.tags.get(ATTEMPT_TAG, "1"))
    if attempt > policy.retries:
        return Retry(partition_key, None, f"failed {attempt} times with this file set; giving up")
    ended = latest.end_time or latest.update_timestamp.timestamp()
    due = ended + policy.cooldown(attempt)
    if now < due:
        return Retry(partition_key, None, f"attempt {attempt + 1} due in {due - now:.0f} s")
    files = int(run.tags.get(FILES_TAG, "0"))
    request = hour_request(partition_key, digest, files, attempt + 1, retry_of=run.run_id)
    return Retry(partition_key, request, f"run {run.run_id} failed; attempt {attempt + 1}")
