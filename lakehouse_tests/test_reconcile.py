"""A policy change reaches data already shared: revoked grants, stronger masks, removed shares.

Each test shares real hours under the seed policy (a copy in force via LAKEHOUSE_POLICY_PATH),
changes the policy file, and applies it the way a deployment does: the code location's
``policy_reconciliation`` sensor (evaluated with ``build_sensor_context``, its run requests then
executed) or ``lakehouse policy apply`` in a subprocess.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from lakehouse.definitions import build_definitions
from lakehouse.defs.share.assets import PolicyGuard, share_key
from lakehouse.governance.policy import load_policy
from lakehouse.governance.reconcile import reconcile
from lakehouse.governance.role_catalog import connect_as_role
from lakehouse.governance.share_layout import MASKING_VERSION_KEY, recorded_labels, shared_relpath
from lakehouse.governance.state import pending_remasks, read_applied
from lakehouse.governance.versions import masking_version, policy_snapshot, role_version
from lakehouse.partitions import HourPartition
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, DWD_TABLE
from lakehouse_tests.conftest import (
    HOUR,
    edit_policy,
    lakehouse_resources,
    run_cli,
    subprocess_env,
)

ROLE = "thirdparty"
NEXT_HOUR = HourPartition.from_key("2025-09-18-00:00")
HOURS = (HOUR, NEXT_HOUR)


@pytest.fixture
def shared_hours(local_storage, catalog, policy_file, monkeypatch):
    """Two hours shared under the seed policy, which has been applied once.

    The deployment's settings are in the environment too, so runs launched from the code
    location's own job (as the daemon launches them) find the same storage and catalog.
    """
    monkeypatch.setenv("LAKEHOUSE_RAW_URL", local_storage.raw_url)
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URL", local_storage.warehouse_url)
    monkeypatch.setenv("LAKEHOUSE_CATALOG_PATH", str(catalog.resolved_path()))
    write_sample_data(
        local_storage.raw(), start=HOUR.start, hours=2, vehicles=12, interval_s=120, dirty=True
    )
    defs = build_definitions(load_policy())
    for hour in HOURS:
        result = defs.resolve_job_def("hourly_lakehouse_job").execute_in_process(
            partition_key=hour.key, resources=lakehouse_resources(local_storage, catalog)
        )
        assert result.success
    first = tick(defs, local_storage, catalog)
    assert first.run_requests == []  # nothing was stale: the first tick only records the policy
    assert read_applied(local_storage.warehouse()).roles == policy_snapshot(load_policy())
    return local_storage, catalog, policy_file


def tick(defs: dg.Definitions, storage, catalog, cursor: str | None = None) -> dg.SensorResult:
    """One evaluation of the real sensor of the code location ``defs``."""
    sensor = defs.resolve_sensor_def("policy_reconciliation")
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={"storage": storage, "catalog": catalog},
    )
    return sensor(context)


def run_requested(defs: dg.Definitions, request: dg.RunRequest) -> None:
    """Launch the request as the daemon would: the code location's job and resources."""
    result = defs.resolve_job_def("share_remask_job").execute_in_process(
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=request.tags,
    )
    assert result.success


def shared_vins(storage, table: str, hour: HourPartition) -> set[str]:
    path = storage.share().path(shared_relpath(ROLE, table, hour))
    return set(pq.read_table(path, columns=["vin"]).column("vin").to_pylist())


def cli_env(storage, catalog, policy_file) -> dict[str, str]:
    return subprocess_env(
        LAKEHOUSE_RAW_URL=storage.raw().root,
        LAKEHOUSE_WAREHOUSE_URL=storage.warehouse().root,
        LAKEHOUSE_CATALOG_PATH=str(catalog.resolved_path()),
        LAKEHOUSE_POLICY_PATH=str(policy_file),
    )


def test_cosmetic_edits_keep_the_policy_versions(policy_file):
    before = load_policy()
    text = policy_file.read_text()
    policy_file.write_text(
        "# reformatted\n"
        + text.replace(
            "[dwd_vehicle_gps, ads_vehicle_hourly_stat]",
            "[ads_vehicle_hourly_stat, dwd_vehicle_gps]",
        )
        .replace("masking_vin:", "vin_mask:")
        .replace("cleaned data and results", "results and cleaned data")
        .replace("args: {first: 1, last: 1}", "args: {last: 1, first: 1}")
    )
    after = load_policy()
    assert policy_snapshot(after) == policy_snapshot(before)
    edit_policy(policy_file, lambda p: p["masking_policies"]["vin_mask"]["args"].update(first=0))
    changed = load_policy()
    assert role_version(changed, ROLE) != role_version(before, ROLE)
    assert masking_version(changed, ROLE, DWD_TABLE) != masking_version(before, ROLE, DWD_TABLE)
    assert role_version(changed, "analyst") == role_version(before, "analyst")


def test_shared_files_record_the_policy_they_were_masked_under(shared_hours):
    storage, _, _ = shared_hours
    policy = load_policy()
    labels = recorded_labels(storage.share(), shared_relpath(ROLE, DWD_TABLE, HOUR))
    assert labels == {
        "lakehouse.role": ROLE,
        "lakehouse.table": DWD_TABLE,
        "lakehouse.partition": HOUR.key,
        "lakehouse.policy_version": role_version(policy, ROLE),
        MASKING_VERSION_KEY: masking_version(policy, ROLE, DWD_TABLE),
    }


def test_a_strengthened_mask_withdraws_old_hours_and_re_masks_them(shared_hours, monkeypatch):
    storage, catalog, policy_file = shared_hours
    assert shared_vins(storage, DWD_TABLE, HOUR) >= {"V*******1"}
    edit_policy(policy_file, lambda p: p["masking_policies"]["masking_vin"]["args"].update(first=0))
    defs = build_definitions(load_policy())  # the reloaded code location
    monkeypatch.setenv("LAKEHOUSE_REMASK_RUNS_PER_TICK", "1")

    first = tick(defs, storage, catalog)
    # Withdrawn at once, every hour of every table the mask applies to...
    assert storage.share().list_files(ROLE, recursive=True) == []
    # ...and re-masking requested, one run per hour, bounded per tick.
    assert len(first.run_requests) == 1
    second = tick(defs, storage, catalog, cursor=first.cursor)
    assert len(second.run_requests) == 1
    requests = [*first.run_requests, *second.run_requests]
    assert {r.partition_key for r in requests} == {h.key for h in HOURS}
    for request in requests:
        assert set(request.asset_selection) == {
            share_key(ROLE, DWD_TABLE),
            share_key(ROLE, ADS_TABLE),
        }
        run_requested(defs, request)

    new_masking = masking_version(load_policy(), ROLE, DWD_TABLE)
    for hour in HOURS:
        for table in (DWD_TABLE, ADS_TABLE):
            vins = shared_vins(storage, table, hour)
            assert vins and all(v.startswith("********") for v in vins)
        labels = recorded_labels(storage.share(), shared_relpath(ROLE, DWD_TABLE, hour))
        assert labels[MASKING_VERSION_KEY] == new_masking
    assert pending_remasks(storage.warehouse()) == []
    assert tick(defs, storage, catalog, cursor=second.cursor).run_requests == []


def test_a_revoked_grant_is_withdrawn_by_policy_apply_and_refused_by_sql(shared_hours):
    storage, catalog, policy_file = shared_hours
    env = cli_env(storage, catalog, policy_file)
    edit_policy(policy_file, lambda p: p["roles"][ROLE]["tables"].remove(DWD_TABLE))

    applied = run_cli("policy", "apply", env=env)
    assert applied.returncode == 0, applied.stderr
    assert f"withdrew {ROLE}/{DWD_TABLE}: 2 shared hour(s), grant revoked" in applied.stdout
    assert not storage.share().exists(f"{ROLE}/{DWD_TABLE}")
    assert storage.share().exists(shared_relpath(ROLE, ADS_TABLE, HOUR))  # untouched

    denied = f"role '{ROLE}' has no grant on table '{DWD_TABLE}'"
    refused = run_cli("sql", "--role", ROLE, f"SELECT count(*) FROM {DWD_TABLE}", env=env)
    assert refused.returncode != 0 and denied in refused.stderr
    allowed = run_cli("sql", "--role", ROLE, f"SELECT count(*) FROM {ADS_TABLE}", env=env)
    assert allowed.returncode == 0, allowed.stderr
    with (
        connect_as_role(catalog.role_path(ROLE), storage.share(), ROLE) as con,
        pytest.raises(duckdb.Error, match=denied),
    ):
        con.execute(f"SELECT * FROM {DWD_TABLE}")
    again = run_cli("policy", "apply", env=env)
    assert "nothing to do" in again.stdout


def test_a_role_that_stops_sharing_loses_its_share_and_catalog(shared_hours):
    storage, catalog, policy_file = shared_hours
    assert catalog.role_path(ROLE).exists()
    edit_policy(policy_file, lambda p: p["roles"][ROLE].update(share=False))
    defs = build_definitions(load_policy())

    result = tick(defs, storage, catalog)
    assert result.run_requests == []
    assert not storage.share().exists(ROLE)
    assert not list(catalog.role_path(ROLE).parent.glob(f"{ROLE}.duckdb*"))  # nor its sidecars
    # The role itself still exists: its preview masks inline, from the warehouse.
    preview = run_cli(
        "sql",
        "--role",
        ROLE,
        f"SELECT DISTINCT vin FROM {ADS_TABLE}",
        env=cli_env(storage, catalog, policy_file),
    )
    assert preview.returncode == 0, preview.stderr
    assert "V*******1" in preview.stdout and "VIN000001" not in preview.stdout


def test_a_share_run_under_the_old_policy_cannot_publish_after_the_change(shared_hours):
    storage, catalog, policy_file = shared_hours
    old_defs = build_definitions(load_policy())  # a run that loaded the policy before the change
    edit_policy(
        policy_file, lambda p: p["masking_policies"]["masking_vin"].update(function="hash", args={})
    )
    new_policy = load_policy()
    reconcile(new_policy, storage, catalog)  # the deployment applied the change
    assert not storage.share().exists(shared_relpath(ROLE, DWD_TABLE, HOUR))

    late = old_defs.resolve_job_def("share_remask_job").execute_in_process(
        partition_key=HOUR.key, raise_on_error=False
    )
    assert not late.success
    failure = late.get_step_failure_events()[0].step_failure_data.error.message
    assert "changed while this run was masking" in failure
    assert not storage.share().exists(shared_relpath(ROLE, DWD_TABLE, HOUR))
    assert (ROLE, DWD_TABLE, HOUR) in {
        (r.role, r.table, r.partition) for r in pending_remasks(storage.warehouse())
    }


def test_a_publish_that_lands_after_the_withdrawal_is_withdrawn_by_its_own_run(shared_hours):
    """The interleaving the pre-publish check cannot see: the old run checked, the policy was
    applied and the share listed, and only then did the old run's file land."""
    storage, catalog, policy_file = shared_hours
    share, relative = storage.share(), shared_relpath(ROLE, DWD_TABLE, HOUR)
    state = policy_snapshot(load_policy())[ROLE]
    guard = PolicyGuard(state, ROLE, storage.warehouse(), share, HOUR)
    guard.before_publishing(DWD_TABLE)  # passes: the old policy is still the applied one
    old_file = share.read_bytes(relative)

    edit_policy(policy_file, lambda p: p["masking_policies"]["masking_vin"]["args"].update(last=0))
    reconcile(load_policy(), storage, catalog)
    assert not share.exists(relative)
    share.write_bytes(relative, old_file)  # the old run's rename lands now

    with pytest.raises(dg.Failure, match="changed while this run was masking"):
        guard.after_publishing(DWD_TABLE)
    assert not share.exists(relative)
    requests = {(r.role, r.table, r.partition) for r in pending_remasks(storage.warehouse())}
    assert (ROLE, DWD_TABLE, HOUR) in requests


def test_a_code_location_not_yet_reloaded_never_undoes_a_newer_policy(shared_hours):
    storage, catalog, policy_file = shared_hours
    old_defs = build_definitions(load_policy())
    edit_policy(policy_file, lambda p: p["roles"][ROLE]["tables"].remove(ADS_TABLE))
    newer = load_policy()
    reconcile(newer, storage, catalog)  # `lakehouse policy apply` after editing the file

    stale = tick(old_defs, storage, catalog)  # the daemon still runs the old code
    assert stale.run_requests == []
    assert read_applied(storage.warehouse()).roles == policy_snapshot(newer)
    assert not storage.share().exists(f"{ROLE}/{ADS_TABLE}")
    assert storage.share().exists(shared_relpath(ROLE, DWD_TABLE, HOUR))


def test_a_policy_change_reaches_a_share_on_an_s3_server(s3_storage, s3_env, catalog, policy_file):
    write_sample_data(s3_storage.raw(), start=HOUR.start, vehicles=6, interval_s=300)
    resources = lakehouse_resources(s3_storage, catalog)
    before = build_definitions(load_policy())
    assert (
        before.resolve_job_def("hourly_lakehouse_job")
        .execute_in_process(partition_key=HOUR.key, resources=resources)
        .success
    )
    edit_policy(policy_file, lambda p: p["masking_policies"]["masking_vin"]["args"].update(first=0))
    report = reconcile(load_policy(), s3_storage, catalog)  # first one: reads recorded versions

    assert {(w.table, w.hours, w.remask_requested) for w in report.withdrawals} == {
        (DWD_TABLE, 1, 1),
        (ADS_TABLE, 1, 1),
    }
    assert s3_storage.share().list_files(ROLE, recursive=True) == []
    after = build_definitions(load_policy())
    assert (
        after.resolve_job_def("share_remask_job")
        .execute_in_process(partition_key=HOUR.key, resources=resources)
        .success
    )
    assert pending_remasks(s3_storage.warehouse()) == []
    env = subprocess_env(
        **s3_env,
        LAKEHOUSE_RAW_URL=s3_storage.raw_url,
        LAKEHOUSE_WAREHOUSE_URL=s3_storage.warehouse_url,
        LAKEHOUSE_CATALOG_PATH=str(catalog.resolved_path()),
        LAKEHOUSE_POLICY_PATH=str(policy_file),
    )
    preview = run_cli("sql", "--role", ROLE, f"SELECT DISTINCT vin FROM {ADS_TABLE}", env=env)
    assert preview.returncode == 0, preview.stderr
    assert "********1" in preview.stdout and "VIN000001" not in preview.stdout
