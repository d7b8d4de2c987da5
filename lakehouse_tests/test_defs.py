"""The whole code location loads, so a broken definition fails CI first."""

from __future__ import annotations

import dagster as dg

from lakehouse.definitions import defs
from lakehouse.tables import (
    ADS_TABLE,
    DWD_TABLE,
    DWS_TABLE,
    KPI_TABLE,
    ML_TRAINING_TABLE,
    ODS_TABLE,
)


def test_definitions_load_with_the_layers_grouped():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    expected = {
        ODS_TABLE: "ods",
        DWD_TABLE: "dwd",
        ADS_TABLE: "ads",
        KPI_TABLE: "ads",
        DWS_TABLE: "dws",
        f"share/thirdparty/{DWD_TABLE}": "share",
        f"share/thirdparty/{ADS_TABLE}": "share",
        ML_TRAINING_TABLE: "ml",
        "speed_model": "ml",
    }
    assert {k: v for k, v in groups.items() if k in expected} == expected
    assert graph.get(dg.AssetKey(ADS_TABLE)).parent_keys == {dg.AssetKey(DWD_TABLE)}
    assert graph.get(dg.AssetKey(ML_TRAINING_TABLE)).parent_keys == {dg.AssetKey(DWD_TABLE)}
    assert graph.get(dg.AssetKey("speed_model")).parent_keys == {dg.AssetKey(ML_TRAINING_TABLE)}
    assert graph.get(dg.AssetKey(DWD_TABLE)).parent_keys == {dg.AssetKey(ODS_TABLE)}
    assert graph.get(dg.AssetKey(KPI_TABLE)).parent_keys == {
        dg.AssetKey(ADS_TABLE),
        dg.AssetKey(DWD_TABLE),
    }
    assert graph.get(dg.AssetKey(DWS_TABLE)).parent_keys == {
        dg.AssetKey(ADS_TABLE),
        dg.AssetKey(DWD_TABLE),
    }


def test_hourly_job_runs_in_process_over_hourly_partitions():
    job = defs.resolve_job_def("hourly_lakehouse_job")
    assert job.executor_def is dg.in_process_executor
    assert job.partitions_def is not None
    assert "2025-09-17-23:00" in job.partitions_def.get_partition_keys()


def test_every_layer_declares_a_blocking_schema_check():
    specs = list(defs.resolve_asset_graph().asset_check_keys)
    names = {(k.asset_key.to_user_string(), k.name) for k in specs}
    for table in (ODS_TABLE, DWD_TABLE, ADS_TABLE, ML_TRAINING_TABLE):
        assert (table, "pandera_schema") in names
    assert ("speed_model", "beats_mean_baseline") in names


def test_daily_ml_job_selects_the_ml_group_over_days():
    job = defs.resolve_job_def("daily_ml_job")
    assert job.executor_def is dg.in_process_executor
    assert "2025-09-17" in job.partitions_def.get_partition_keys()
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {ML_TRAINING_TABLE, "speed_model"}


def test_the_policy_sensor_is_on_by_default_and_re_masks_only_shares():
    sensor = defs.resolve_sensor_def("policy_reconciliation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    job = defs.resolve_job_def("share_remask_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {f"share/thirdparty/{DWD_TABLE}", f"share/thirdparty/{ADS_TABLE}"}
