"""Masking functions, the policy file, and the rule that no masked role ever sees a raw value."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pyarrow as pa
import pytest

from lakehouse.governance.masking import MaskingConfigError, bind_salt, mask_expression
from lakehouse.governance.policy import AccessDenied, PolicyError, load_policy
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse_tests.conftest import subprocess_env

SEED_POLICY = load_policy()


def mask(function: str, values: list[str | None], **args: int) -> list[str | None]:
    with duckdb.connect() as con:
        con.register("t", pa.table({"vin": pa.array(values, pa.string())}))
        if function == "hash":
            bind_salt(con)
        return [
            r[0]
            for r in con.sql(f"SELECT {mask_expression(function, 'vin', args)} FROM t").fetchall()
        ]


def test_the_seed_example():
    assert mask("keep_first_last", ["VIN001"], first=1, last=1) == ["V****1"]


@pytest.mark.parametrize(
    ("function", "args", "values", "expected"),
    [
        ("keep_first_last", {"first": 1, "last": 1}, ["AB", "A", "", None], ["**", "*", "", None]),
        ("keep_first_last", {"first": 2, "last": 3}, ["京A12345"], ["京A**345"]),
        ("keep_first", {"first": 3}, ["VIN001", "VIN", "京A1"], ["VIN***", "***", "***"]),
        ("keep_last", {"last": 2}, ["VIN001", "ab", None], ["****01", "**", None]),
        ("nullify", {}, ["VIN001", None], [None, None]),
    ],
)
def test_each_function_on_short_unicode_and_null_values(function, args, values, expected):
    assert mask(function, values, **args) == expected


def test_hash_is_salted_stable_and_keeps_nulls(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_MASKING_SALT", "pepper-1")
    first = mask("hash", ["VIN001", "VIN002", None, "VIN001"])
    assert first[0] == first[3] != first[1]
    assert first[2] is None
    assert len(first[0]) == 64 and "VIN001" not in first[0]
    assert mask("hash", ["VIN001"]) == [first[0]]  # stable across calls (and partitions)
    monkeypatch.setenv("LAKEHOUSE_MASKING_SALT", "pepper-2")
    assert mask("hash", ["VIN001"]) != [first[0]]


def test_hash_without_a_salt_is_refused(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_MASKING_SALT", raising=False)
    with pytest.raises(MaskingConfigError, match="LAKEHOUSE_MASKING_SALT"):
        mask("hash", ["VIN001"])


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (
            "masking_policies:\n  m: {column: colour, function: nullify, roles: [r]}",
            "unknown column",
        ),
        (
            "masking_policies:\n  m: {column: vin, function: nullify, roles: [ghost]}",
            "unknown role",
        ),
        ("masking_policies:\n  m: {column: vin, function: rot13, roles: [r]}", "unknown masking"),
        (
            "masking_policies:\n  m: {column: vin, function: keep_first, roles: [r]}",
            "takes arguments",
        ),
        (
            "masking_policies:\n  m: {column: speed, function: keep_first, args: {first: 1}, "
            "roles: [r]}",
            "needs a text column",
        ),
    ],
)
def test_policies_naming_what_does_not_exist_are_refused(tmp_path, snippet, message):
    path = tmp_path / "policy.yaml"
    path.write_text(f"roles:\n  r: {{tables: [{ADS_TABLE}]}}\n{snippet}\n")
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


@pytest.mark.parametrize(
    "roles",
    [
        "roles:\n  'x\"; DROP TABLE t; --': {tables: [ads_vehicle_hourly_stat]}",
        "roles:\n  r: {tables: ['ads; DROP TABLE t']}",
    ],
)
def test_hostile_names_in_the_policy_are_refused(tmp_path, roles):
    path = tmp_path / "policy.yaml"
    path.write_text(roles + "\n")
    with pytest.raises(PolicyError):
        load_policy(path)


def test_hostile_names_at_query_time_never_reach_sql():
    for role, table in [('x"; DROP TABLE t; --', ADS_TABLE), ("thirdparty", "ads'; DROP --")]:
        with pytest.raises(AccessDenied):
            SEED_POLICY.select_sql(role, table, "src")


def test_ungranted_table_is_a_clear_error():
    with pytest.raises(AccessDenied, match="role 'thirdparty' has no grant on table"):
        SEED_POLICY.select_sql("thirdparty", ODS_TABLE, "src")


def test_masking_binds_to_the_column_in_every_table():
    for table in (ODS_TABLE, DWD_TABLE, ADS_TABLE):
        assert "vin" in SEED_POLICY.masks_for("thirdparty", table)
    assert SEED_POLICY.masks_for("analyst", DWD_TABLE) == {}


def test_definitions_fail_to_load_with_a_bad_policy(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "roles:\n  r: {tables: [ads_vehicle_hourly_stat]}\n"
        "masking_policies:\n  m: {column: chassis_no, function: nullify, roles: [r]}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import lakehouse.definitions"],
        env=subprocess_env(LAKEHOUSE_POLICY_PATH=str(path)),
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "masking policy 'm' names unknown column 'chassis_no'" in done.stderr
