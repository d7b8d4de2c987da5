"""Jobs: the hourly chain ODS -> DWD -> ADS (and the masked shares) for one arrival hour."""

import dagster as dg

# The groups of an arrival hour's layers, and the same as a CLI selection for
# `dagster asset materialize --select`: `*` would also select the daily layers, and one run
# cannot mix hourly and daily partitions.
HOURLY_GROUPS = ("ods", "dwd", "ads", "share")
HOURLY_SELECTION = " or ".join(f"group:{group}" for group in HOURLY_GROUPS)

# The hour's chain runs in one process: per-step subprocesses would cost seconds each for work
# that takes about as long, and the three steps run one after another anyway.
hourly_lakehouse_job = dg.define_asset_job(
    name="hourly_lakehouse_job",
    selection=dg.AssetSelection.groups(*HOURLY_GROUPS),
    executor_def=dg.in_process_executor,
    description="Register an arrival hour's raw files (ODS), clean (DWD) and aggregate (ADS) "
    "them, and refresh the masked shares.",
)
