"""The code location: every asset, check, job, sensor and resource of the lakehouse.

The access policy (``policy.yaml``) is read here, so a policy naming a role, table or column
that does not exist stops the code location from loading; a changed policy arrives with a reload
and is applied to the shares by the ``policy_reconciliation`` sensor. Loading it also makes the
process's new files private (umask 077, see ``lakehouse.deployment.privacy``): every CLI run,
code server and run worker loads this module before it writes any data. Its first import loads
the long-lived libraries and freezes them out of cyclic garbage collection
(``lakehouse.deployment.long_lived``): they live as long as the process, and walking them again
and again (or once more at exit) is time a run does not need.
"""

import dagster as dg

import lakehouse.deployment.long_lived  # noqa: F401  (first: loads and freezes the libraries)

# isort: split
from lakehouse.defs.automation import lakehouse_automation
from lakehouse.defs.dashboard.assets import fleet_dashboard
from lakehouse.defs.dws.assets import dws_vehicle_daily_stat
from lakehouse.defs.dws.schedules import nightly_batch, nightly_lakehouse_job
from lakehouse.defs.hourly.assets import hourly_layers
from lakehouse.defs.jobs import hourly_lakehouse_job
from lakehouse.defs.ml.assets import ml_gps_training_set, speed_model
from lakehouse.defs.ml.jobs import daily_ml_job
from lakehouse.defs.ods.assets import ods_vehicle_gps_raw
from lakehouse.defs.ods.sensors import ods_datascan
from lakehouse.defs.share.assets import build_share_assets
from lakehouse.defs.share.sensors import build_policy_sensor, share_remask_job
from lakehouse.deployment.privacy import keep_files_private
from lakehouse.governance.io_manager import masked_table_loader
from lakehouse.governance.policy import AccessPolicy, load_policy
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.engine import compute_engine
from lakehouse.resources.storage import LakehouseStorage, storage_resource
from lakehouse.tables import TABLE_SCHEMAS

keep_files_private()
ACCESS_POLICY = load_policy()


def with_masking_visible(policy: AccessPolicy, spec: dg.AssetSpec) -> dg.AssetSpec:
    """Show on each layer asset which columns are masked, for which roles, by which policy."""
    table = spec.key.path[-1]
    if table not in TABLE_SCHEMAS:
        return spec
    masked = policy.masked_roles_by_column(table)
    columns = [
        dg.TableColumn(
            f.name,
            str(f.type),
            description=("masked for " + "; ".join(masked[f.name])) if f.name in masked else None,
            tags={"masked": "true"} if f.name in masked else {},
        )
        for f in TABLE_SCHEMAS[table]
    ]
    readers = sorted(r.name for r in policy.roles.values() if table in r.tables)
    return spec.merge_attributes(
        metadata={
            "dagster/column_schema": dg.TableSchema(columns=columns),
            "granted_roles": ", ".join(readers),
        }
    )


def build_definitions(policy: AccessPolicy) -> dg.Definitions:
    """The code location for ``policy`` (tests build one per policy version they apply)."""
    storage = LakehouseStorage()
    engine = compute_engine()
    return dg.Definitions(
        assets=dg.map_asset_specs(
            lambda spec: with_masking_visible(policy, spec),
            [
                ods_vehicle_gps_raw,
                hourly_layers,
                dws_vehicle_daily_stat,
                fleet_dashboard,
                *build_share_assets(policy),
                ml_gps_training_set,
                speed_model,
            ],
        ),
        jobs=[hourly_lakehouse_job, nightly_lakehouse_job, share_remask_job, daily_ml_job],
        schedules=[nightly_batch],
        sensors=[ods_datascan, build_policy_sensor(policy), lakehouse_automation],
        resources={
            "storage": storage_resource(storage),
            "engine": engine,
            "catalog": CatalogResource(),
            "table_loader": masked_table_loader,
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions(ACCESS_POLICY)
