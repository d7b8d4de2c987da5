"""The code location: every asset, check, job and resource of the lakehouse."""

import dagster as dg

from lakehouse.defs.dwd_ads.assets import dwd_and_ads_hour
from lakehouse.defs.jobs import hourly_lakehouse_job
from lakehouse.defs.ods.assets import ods_vehicle_gps_raw
from lakehouse.defs.ods.sensors import ods_datascan
from lakehouse.resources.catalog import CatalogResource, compute_engine
from lakehouse.resources.storage import LakehouseStorage

defs = dg.Definitions(
    assets=[ods_vehicle_gps_raw, dwd_and_ads_hour],
    jobs=[hourly_lakehouse_job],
    sensors=[ods_datascan],
    resources={
        "storage": LakehouseStorage(),
        "engine": compute_engine(),
        "catalog": CatalogResource(),
    },
    executor=dg.in_process_executor,
)
