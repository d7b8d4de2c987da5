"""When a day's DWS is (re)built without anyone asking: complete days, late hours, closed days.

Dagster's ``eager()`` only looks at the latest time partition, so a late hour for yesterday
would never rebuild yesterday. This condition looks back a few days instead (bounded, so an
evaluation never walks the whole history) and builds a day partition when

- all of its hours have landed (every ADS and DWD hour exists) and one of them was updated since
  the day was last handled: a complete day is built as soon as its last hour lands, and a late or
  re-run hour rebuilds its day; or
- the day is still missing, has some data, and its grace period after closing has passed (a
  daily cron tick at ``grace`` past midnight UTC): a day some hours never reached is built
  anyway, its missing hours recorded; the nightly schedule normally builds it earlier.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

LOOKBACK_DAYS = 3


def daily_rollup_condition(grace_hours: int, lookback_days: int = LOOKBACK_DAYS):
    """The DWS automation condition (see the module docstring)."""
    recent = dg.AutomationCondition.in_latest_time_window(timedelta(days=lookback_days))
    complete_and_updated = (
        (
            dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
        ).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
    ).with_label("complete, and an hour landed")
    closed_past_grace = (
        dg.AutomationCondition.missing()
        & dg.AutomationCondition.cron_tick_passed(f"0 {grace_hours} * * *").since_last_handled()
        & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing())
    ).with_label(f"closed {grace_hours} h ago with some data")
    return (
        recent
        & (complete_and_updated | closed_past_grace)
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("daily rollup")
