"""The ``policy_reconciliation`` sensor: a policy change reaches data already shared.

A policy change arrives with a code location reload. On its next tick the sensor sees that the
policy it was loaded with is not the applied one, applies it (``reconcile``: records it,
withdraws revoked tables and hours masked under the old policy, rewrites role catalogs) and
requests runs that re-mask the withdrawn hours from the warehouse, a bounded number per tick.
Every tick also turns outstanding re-mask requests (from ``lakehouse policy apply`` or from
share runs that lost a race with a policy change) into runs. When nothing changed a tick costs
a read of the policy file, one small read and one listing of the (empty) request folder.

The sensor applies only the policy its code location loaded, and only while that is still the
policy file's content: an edited file whose reload is pending is never undone by the old code.
"""

import json
import os

import dagster as dg

from lakehouse.defs.share.assets import share_key
from lakehouse.governance.policy import AccessPolicy, PolicyError, load_policy
from lakehouse.governance.reconcile import reconcile
from lakehouse.governance.state import RemaskRequest, clear_remask, pending_remasks
from lakehouse.governance.versions import policy_snapshot
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage

DEFAULT_INTERVAL_SECONDS = 30
DEFAULT_RUNS_PER_TICK = 8
RUNS_PER_TICK_ENV = "LAKEHOUSE_REMASK_RUNS_PER_TICK"
TRIGGER_TAG = "lakehouse/trigger"
VERSION_TAG = "lakehouse/policy_version"

share_remask_job = dg.define_asset_job(
    name="share_remask_job",
    selection=dg.AssetSelection.groups("share"),
    executor_def=dg.in_process_executor,
    description="Mask shared hours again from the warehouse after the access policy changed.",
)


def build_policy_sensor(policy: AccessPolicy) -> dg.SensorDefinition:
    """The reconciliation sensor for the policy this code location was loaded with."""
    snapshot = policy_snapshot(policy)

    @dg.sensor(
        name="policy_reconciliation",
        job=share_remask_job,
        minimum_interval_seconds=DEFAULT_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Apply a changed access policy to the shares: withdraw what a role may no "
        "longer read or what was masked under an older policy, and re-mask it.",
    )
    def policy_reconciliation(
        context: dg.SensorEvaluationContext,
        storage: LakehouseStorage,
        catalog: CatalogResource,
    ) -> dg.SensorResult:
        try:
            on_disk = policy_snapshot(load_policy())
        except PolicyError as exc:
            on_disk, problem = None, str(exc)
        if on_disk != snapshot:
            # Applying a policy the deployment has already replaced would undo the newer one
            # (and re-mask what it masked): wait for the code location to load the file.
            context.log.warning(
                "the policy file differs from the policy this code location loaded"
                + (f" ({problem})" if on_disk is None else "")
                + "; reload the code location to apply it"
            )
            return dg.SensorResult(run_requests=[], cursor=context.cursor)
        report = reconcile(policy, storage, catalog)
        for line in report.lines():
            context.log.info(line)

        warehouse = storage.warehouse()
        requested = set(json.loads(context.cursor or "[]"))
        outstanding: dict[tuple[str, str], list[RemaskRequest]] = {}
        for request in pending_remasks(warehouse):
            role = snapshot.get(request.role)
            if role is None or not role.share or request.table not in role.tables:
                # Asked for under an older policy that granted it; nothing to re-mask now.
                clear_remask(warehouse, request.role, request.table, request.partition)
                continue
            outstanding.setdefault((request.role, request.partition.key), []).append(request)

        limit = int(os.environ.get(RUNS_PER_TICK_ENV, DEFAULT_RUNS_PER_TICK))
        run_requests, waiting = [], set()
        for (role, key), requests in outstanding.items():  # one run per role and hour
            run_key = f"remask:{role}:{key}:" + "-".join(sorted(i for r in requests for i in r.ids))
            waiting.add(run_key)
            if run_key in requested or len(run_requests) >= limit:
                continue
            run_requests.append(
                dg.RunRequest(
                    run_key=run_key,
                    partition_key=key,
                    asset_selection=[share_key(role, r.table) for r in requests],
                    tags={TRIGGER_TAG: "policy", VERSION_TAG: snapshot[role].version},
                )
            )
        cursor = sorted((requested & waiting) | {r.run_key for r in run_requests})
        if waiting:
            context.log.info(
                f"{len(run_requests)} re-mask run(s) requested, {len(waiting) - len(cursor)} "
                "left for later ticks"
            )
        return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(cursor))

    return policy_reconciliation
