"""The daily ML job: a day's training set and the speed model, selectable as group ``ml``."""

import dagster as dg

# Daily partitions, inferred from the assets. One process, like the hourly job: two steps that
# run one after the other anyway.
daily_ml_job = dg.define_asset_job(
    name="daily_ml_job",
    selection=dg.AssetSelection.groups("ml"),
    executor_def=dg.in_process_executor,
    description="Build a day's GPS training set from its DWD hours and train the speed model.",
)
