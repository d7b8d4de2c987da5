"""The code location: every asset, check, job and resource of the lakehouse."""

import dagster as dg

from lakehouse.defs.ads.assets import ads_vehicle_hourly_stat
from lakehouse.defs.dwd.assets import dwd_vehicle_gps
from lakehouse.defs.jobs import hourly_lakehouse_job
from lakehouse.defs.ods.assets import ods_vehicle_gps_raw
from lakehouse.resources.catalog import CatalogResource, compute_engine
from lakehouse.resources.storage import LakehouseStorage

defs = dg.Definitions(
    assets=[ods_vehicle_gps_raw, dwd_vehicle_gps, ads_vehicle_hourly_stat],
    jobs=[hourly_lakehouse_job],
    resources={
        "storage": LakehouseStorage(),
        "engine": compute_engine(),
        "catalog": CatalogResource(),
    },
    executor=dg.in_process_executor,
)
