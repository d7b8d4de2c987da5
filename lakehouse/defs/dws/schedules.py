"""The nightly batch (the DataWorks pattern): after midnight, build the day that just ended.

The schedule's cron and timezone are settings; the day it builds is always the most recent UTC
day that has ended by the tick (daily partitions are the UTC days of the arrival hours), so a
schedule in, say, Asia/Shanghai at 00:30 local time (16:30 UTC) builds the UTC day before.
Any past day can be run by hand from the CLI or the UI, as a backfill of the same job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from lakehouse.defs.dws.settings import nightly_cron, nightly_timezone
from lakehouse.partitions import daily_partitions

NIGHTLY_JOB = "nightly_lakehouse_job"
# The daily consumers join the nightly job by their group.
NIGHTLY_GROUPS = ("dws", "dashboard", "ml")

nightly_lakehouse_job = dg.define_asset_job(
    name=NIGHTLY_JOB,
    selection=dg.AssetSelection.groups(*NIGHTLY_GROUPS),
    executor_def=dg.in_process_executor,
    description="Build a day: DWS and the daily consumers (dashboard, ML training set, model).",
)


def day_ended_before(moment: datetime) -> str:
    """Key of the most recent UTC day that has ended at ``moment`` (any timezone)."""
    return ((moment.astimezone(UTC) - timedelta(days=1)).date()).isoformat()


@dg.schedule(
    name="nightly_batch",
    job=nightly_lakehouse_job,
    cron_schedule=nightly_cron(),
    execution_timezone=nightly_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Shortly after midnight: DWS and the daily consumers for the day that ended.",
)
def nightly_batch(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Request the nightly job for the day that ended before this tick."""
    day = day_ended_before(context.scheduled_execution_time)
    if not daily_partitions.has_partition_key(day):
        return dg.SkipReason(f"day {day} is before the first daily partition")
    return dg.RunRequest(
        run_key=f"nightly@{day}", partition_key=day, tags={"lakehouse/trigger": "nightly"}
    )
