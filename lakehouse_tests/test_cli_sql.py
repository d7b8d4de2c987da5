"""``lakehouse sql`` as users run it: a separate process, from wherever they happen to be."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse_tests.conftest import HOUR, edit_policy, materialize_hour, run_cli, subprocess_env

VEHICLES = 8


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project home with the embedded default layout (data/...) and one shared hour."""
    home = tmp_path / "project"
    storage = LakehouseStorage(
        raw_url=str(home / "data/raw"), warehouse_url=str(home / "data/warehouse")
    )
    catalog = CatalogResource(path=str(home / "data/catalog.duckdb"))
    write_sample_data(
        storage.raw(create=True), start=HOUR.start, vehicles=VEHICLES, interval_s=300, dirty=True
    )
    assert materialize_hour(storage, catalog).success
    return home


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory that is not the project (nor the repository) root."""
    path = tmp_path / "somewhere" / "else"
    path.mkdir(parents=True)
    return path


def sql(project: Path, cwd: Path, *args: str, **env: str):
    return run_cli("sql", *args, env=subprocess_env(DAGSTER_HOME=str(project), **env), cwd=cwd)


def test_sql_errors_are_one_clean_line(project, elsewhere):
    for args in (
        ["SELECT * FROM no_such_table"],
        ["SELECT vin FROM ads_vehicle_hourly_stat WHERE"],
        ["--role", "nobody", "SELECT 1"],
        ["--catalog", "missing.duckdb", "SELECT 1"],
    ):
        done = sql(project, elsewhere, *args)
        assert done.returncode != 0, args
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("Error: ")


def test_sql_works_outside_the_repository_root(project, elsewhere):
    analyst = sql(project, elsewhere, f"SELECT 'vehicles=' || count(*) AS n FROM {ADS_TABLE}")
    assert analyst.returncode == 0, analyst.stderr
    assert f"vehicles={VEHICLES}" in analyst.stdout
    thirdparty = sql(
        project, elsewhere, "--role", "thirdparty", f"SELECT DISTINCT vin FROM {ADS_TABLE}"
    )
    assert thirdparty.returncode == 0, thirdparty.stderr
    assert "V*******1" in thirdparty.stdout and "VIN000001" not in thirdparty.stdout
    # An explicit --catalog is the user's path, relative to where they are.
    relative = Path("../../project/data/catalog.duckdb")
    assert (elsewhere / relative).exists()
    explicit = sql(
        project, elsewhere, "--catalog", str(relative), f"SELECT count(*) FROM {DWD_TABLE}"
    )
    assert explicit.returncode == 0, explicit.stderr


def test_a_role_without_a_share_gets_a_confined_preview(project, elsewhere):
    raw_file = next((project / "data/raw").rglob("*.parquet"))
    done = sql(project, elsewhere, "--role", "analyst", f"SELECT DISTINCT vin FROM {ODS_TABLE}")
    assert done.returncode == 0, done.stderr
    assert "VIN000001" in done.stdout  # analysts are not masked in the seed policy
    for escape in (
        f"SELECT * FROM read_parquet('{raw_file}')",
        f"SELECT * FROM read_parquet('{project}/data/warehouse/{DWD_TABLE}/**/*.parquet')",
        f"ATTACH '{project}/data/catalog.duckdb' AS c",
        "SET enable_external_access = true",
    ):
        refused = sql(project, elsewhere, "--role", "analyst", escape)
        assert refused.returncode != 0 and "Error" in refused.stderr, escape


def test_a_masked_role_without_a_share_sees_masked_values_only(project, elsewhere, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text((Path(__file__).resolve().parents[1] / "policy.yaml").read_text())
    edit_policy(
        policy,
        lambda p: p["masking_policies"]["masking_vin"]["roles"].append("analyst"),
    )
    env = {"LAKEHOUSE_POLICY_PATH": str(policy)}
    query = (
        f"SELECT DISTINCT vin FROM {DWD_TABLE} "
        f"UNION ALL SELECT vin FROM {DWD_TABLE} WHERE vin = 'VIN000001'"  # matches masked only
    )
    done = sql(project, elsewhere, "--role", "analyst", query, **env)
    assert done.returncode == 0, done.stderr
    assert "V*******1" in done.stdout and "VIN0000" not in done.stdout


def test_an_ungranted_table_gives_the_access_error(project, elsewhere, tmp_path):
    done = sql(project, elsewhere, "--role", "thirdparty", f"SELECT count(*) FROM {ODS_TABLE}")
    assert done.returncode != 0
    assert f"role 'thirdparty' has no grant on table '{ODS_TABLE}'" in done.stderr
    # The same for a role without a share, previewed in memory.
    policy = tmp_path / "policy.yaml"
    policy.write_text((Path(__file__).resolve().parents[1] / "policy.yaml").read_text())
    edit_policy(policy, lambda p: p["roles"]["analyst"]["tables"].remove(ADS_TABLE))
    done = sql(
        project,
        elsewhere,
        "--role",
        "analyst",
        f"SELECT vin FROM {ADS_TABLE} WHERE vin = 'x'",
        LAKEHOUSE_POLICY_PATH=str(policy),
    )
    assert done.returncode != 0
    assert f"role 'analyst' has no grant on table '{ADS_TABLE}'" in done.stderr
