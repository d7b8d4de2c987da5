"""Jobs: the hourly chain ODS -> DWD -> ADS (and the masked shares) for one arrival hour."""

import dagster as dg

# The hour's chain runs in one process: per-step subprocesses would cost seconds each for work
# that takes about as long, and the three steps run one after another anyway.
hourly_lakehouse_job = dg.define_asset_job(
    name="hourly_lakehouse_job",
    selection=dg.AssetSelection.groups("ods", "dwd", "ads", "share"),
    executor_def=dg.in_process_executor,
    description="Register an arrival hour's raw files (ODS), clean (DWD) and aggregate (ADS) "
    "them, and refresh the masked shares.",
)
