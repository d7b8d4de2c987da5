"""When the fleet dashboard is redrawn without anyone asking: after new hours or days land.

``eager()`` never fires for it: the dashboard is unpartitioned and its inputs are hourly, so by
default it depends on every hour since the partitions start, some of which are always missing,
and ``any_deps_missing`` stays true. This condition instead requests it when

- a fleet-KPI hour or a DWS day was materialized since the dashboard was last requested or
  built (DWD comes with the KPI hour, so it adds nothing); a new hour requests it once, and it
  is not requested again until another hour or day lands; and
- no KPI hour or DWS day is in progress (queued or running, alone or in a backfill): a burst of
  hours, such as a backfill or a DataScan catch-up, is drawn once it has settled, not once per
  hour; and the dashboard itself is not already being drawn.

The nightly job redraws it as well, once the day's DWS is built.
"""

from __future__ import annotations

import dagster as dg

from lakehouse.tables import DWS_TABLE, KPI_TABLE

# What the dashboard summarises; DWD (the sampled positions) always lands with its KPI hour.
DASHBOARD_INPUTS = dg.AssetSelection.assets(KPI_TABLE, DWS_TABLE)


def dashboard_refresh_condition() -> dg.AutomationCondition:
    """The dashboard's automation condition (see the module docstring)."""
    landed = (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
        .allow(DASHBOARD_INPUTS)
        .with_label("a KPI hour or DWS day landed")
    )
    settling = (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.in_progress())
        .allow(DASHBOARD_INPUTS)
        .with_label("KPI hours or DWS days in progress")
    )
    return (
        landed.since_last_handled() & ~settling & ~dg.AutomationCondition.in_progress()
    ).with_label("redraw after new data")
