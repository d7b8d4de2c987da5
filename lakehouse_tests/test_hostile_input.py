"""One hostile row or file never blocks an hour: it is dropped and counted, or quarantined.

Each test puts one kind of hostile input beside good rows, runs the real hourly job, and checks
that the hour published, that the hostile part went where it should (with its reason), and that
the good rows are all there.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_SCHEMA, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    HOUR,
    MATERIALIZE_HOURLY,
    materialization_metadata,
    materialize_hour,
    ods_table,
    project_dir,
    subprocess_env,
    write_raw,
)

T0 = "2025-09-17 23:00:00"
GOOD = {"vin": "VIN001", "device_id": "D1", "report_time": T0, "lng": 120.0, "lat": 30.0,
        "speed": 10.0, "raw_payload": "p"}  # fmt: skip


def _row(**overrides) -> dict:
    return {**GOOD, **overrides}


def _read(storage, table: str) -> list[dict]:
    """The published hour's rows; DWD (written unordered) in its natural key order."""
    rows = pq.read_table(storage.warehouse().path(partition_relpath(table, HOUR))).to_pylist()
    if table == DWD_TABLE:
        rows.sort(key=lambda r: (r["vin"], r["event_time"]))
    return rows


def _run(storage, catalog):
    result = materialize_hour(storage, catalog, raise_on_error=False)
    assert result.success, "one hostile row must not fail the hour"
    return result


def test_nan_and_infinite_coordinates_are_never_valid_locations(local_storage, catalog):
    """DuckDB once proved BETWEEN true from min/max statistics that leave NaN out."""
    rows = [
        _row(report_time="2025-09-17 23:00:00", lng=120.0, lat=30.0),
        _row(report_time="2025-09-17 23:00:10", lng=math.nan, lat=30.0),
        _row(report_time="2025-09-17 23:00:20", lng=121.0, lat=math.nan),
        _row(report_time="2025-09-17 23:00:30", lng=math.inf, lat=30.0),
        _row(report_time="2025-09-17 23:00:40", lng=120.5, lat=-math.inf),
        _row(report_time="2025-09-17 23:00:50", lng=120.1, lat=30.1),
    ]
    write_raw(local_storage.raw(), "nan.parquet", ods_table(rows))
    _run(local_storage, catalog)
    flags = [(r["lng"], r["lat"], r["loc_valid"]) for r in _read(local_storage, DWD_TABLE)]
    assert [f[2] for f in flags] == [True, False, False, False, False, True]
    (ads,) = _read(local_storage, ADS_TABLE)
    # Only the two finite points count: one leg between them.
    assert ads["total_distance"] == pytest.approx(math.hypot(0.1 * 111, 0.1 * 111), rel=1e-9)
    assert ads["avg_speed"] == 10.0


@pytest.mark.parametrize("blank", ["", " ", "   ", "\t", "\n", "\u3000", "\u00a0\u200b", "\x00"])
def test_blank_vins_are_dropped_and_counted(local_storage, catalog, blank):
    write_raw(local_storage.raw(), "blank.parquet", ods_table([GOOD, _row(vin=blank)]))
    result = _run(local_storage, catalog)
    assert [r["vin"] for r in _read(local_storage, DWD_TABLE)] == ["VIN001"]
    assert [r["vin"] for r in _read(local_storage, ADS_TABLE)] == ["VIN001"]
    assert materialization_metadata(result, DWD_TABLE)["dropped_missing_vin"].value == 1


@pytest.mark.parametrize("speed", [1e30, -1e-9, 500.000001, math.inf, -math.inf, math.nan])
def test_implausible_speeds_are_invalid_and_no_double_crashes_an_aggregate(
    local_storage, catalog, speed
):
    rows = [GOOD, _row(report_time="2025-09-17 23:00:10", speed=speed, lng=120.2)]
    rows.append(_row(report_time="2025-09-17 23:00:20", speed=500.0, lng=120.3))  # the bound
    write_raw(local_storage.raw(), "speed.parquet", ods_table(rows))
    result = _run(local_storage, catalog)
    assert materialization_metadata(result, DWD_TABLE)["dropped_invalid_speed"].value == 1
    (ads,) = _read(local_storage, ADS_TABLE)
    assert ads["avg_speed"] == pytest.approx((10.0 + 500.0) / 2)


def test_extreme_finite_coordinates_do_not_break_ads(local_storage, catalog):
    rows = [GOOD, _row(report_time="2025-09-17 23:00:10", lng=1e308, lat=-1e308),
            _row(report_time="2025-09-17 23:00:20", lng=-1.7976931348623157e308)]  # fmt: skip
    write_raw(local_storage.raw(), "far.parquet", ods_table(rows))
    _run(local_storage, catalog)
    assert [r["loc_valid"] for r in _read(local_storage, DWD_TABLE)] == [True, False, False]
    assert _read(local_storage, ADS_TABLE)[0]["total_distance"] == 0.0


@pytest.mark.parametrize(
    "report_time",
    [" 2025-09-17 23:00:10", "2025-09-17 23:00:10 ", "2025-9-17 23:00:10", "2025-09-17 3:00:10",
     "2025-09-17T23:00:10", "2025-02-29 23:00:10", "2025-09-17 23:00:60", "0000-01-01 00:00:00",
     "\uff12\uff10\uff12\uff15-09-17 23:00:10"],
)  # fmt: skip
def test_report_time_must_be_exactly_the_contract_format(local_storage, catalog, report_time):
    write_raw(local_storage.raw(), "t.parquet", ods_table([GOOD, _row(report_time=report_time)]))
    result = _run(local_storage, catalog)
    meta = materialization_metadata(result, DWD_TABLE)
    assert meta["dropped_unparseable_report_time"].value == 1
    assert meta["rows_out"].value == 1


def _with_invalid_utf8(table: pa.Table, column: str, row: int, payload: bytes) -> pa.Table:
    """The table with one value replaced by raw bytes that are not UTF-8 (no validation)."""
    values = [v.encode() if v is not None else None for v in table.column(column).to_pylist()]
    values[row] = payload
    broken = pa.array(values, pa.binary()).view(pa.string())
    return table.set_column(table.schema.get_field_index(column), column, broken)


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
@pytest.mark.parametrize("column", ["vin", "raw_payload"])
def test_invalid_utf8_rows_are_dropped_at_intake_and_the_rest_lands(
    local_storage, catalog, fmt, column
):
    rows = [_row(report_time=f"2025-09-17 23:00:{s:02d}", lng=120 + s / 100) for s in range(5)]
    # Valid values below and above the bad one keep it off ORC's min/max statistics.
    rows[3][column], rows[4][column] = "A1", "V\U0010fffd"
    table = _with_invalid_utf8(ods_table(rows), column, 2, b"VIN\x80\xc3\x28")
    write_raw(local_storage.raw(), f"bad_utf8.{fmt}", table)
    result = _run(local_storage, catalog)
    ods = materialization_metadata(result, ODS_TABLE)
    assert ods["dropped_invalid_utf8"].value == 1
    assert ods["rows_out"].value == 4
    assert ods["files_quarantined"].value == 0
    record = json.loads(
        local_storage.warehouse().read_bytes(f"_intake/{ODS_TABLE}/{HOUR.hive_path}/intake.json")
    )
    assert record["accepted"][0]["rows_dropped"] == {"invalid_utf8": 1}
    assert len(_read(local_storage, DWD_TABLE)) == 4
    # Unfiltered analyst queries over the ODS view work (DuckDB refuses invalid UTF-8).
    with duckdb.connect(str(catalog.resolved_path()), read_only=True) as con:
        assert con.sql(f"SELECT count(*), count(DISTINCT {column}) FROM {ODS_TABLE}").fetchall()


def test_orc_whose_statistics_hold_invalid_utf8_is_quarantined_not_fatal(local_storage, catalog):
    """ORC keeps a column's min and max in its footer; an invalid max cannot be bounded."""
    table = _with_invalid_utf8(ods_table([GOOD, _row(vin="VIN002")]), "vin", 1, b"VIN\xff")
    write_raw(local_storage.raw(), "bad_stats.orc", table)
    write_raw(local_storage.raw(), "good.parquet", ods_table([_row(vin="VIN003")]))
    result = _run(local_storage, catalog)
    (quarantined,) = materialization_metadata(result, ODS_TABLE)["quarantined"].value
    assert quarantined["file"].endswith("bad_stats.orc")
    assert "not valid UTF-8" in quarantined["reason"]
    assert [r["vin"] for r in _read(local_storage, ADS_TABLE)] == ["VIN003"]


def test_overlong_strings_are_dropped_and_counted(local_storage, catalog):
    rows = [GOOD, _row(vin="V" * 65, report_time="2025-09-17 23:00:10"),
            _row(raw_payload="x" * 70_000, report_time="2025-09-17 23:00:20"),
            _row(vin="V" * 64, report_time="2025-09-17 23:00:30")]  # fmt: skip
    write_raw(local_storage.raw(), "long.parquet", ods_table(rows))
    result = _run(local_storage, catalog)
    ods = materialization_metadata(result, ODS_TABLE)
    assert ods["dropped_oversized_string"].value == 2
    kept = sorted(r["vin"] for r in _read(local_storage, DWD_TABLE))
    assert kept == sorted(["V" * 64, "VIN001"])


# A small file whose vin column decompresses to 3 x 100 MiB; argv: path, format.
BOMB_WRITER = """
import sys
import pyarrow as pa, pyarrow.orc as orc, pyarrow.parquet as pq
from lakehouse_tests.conftest import ods_table
path, fmt = sys.argv[1], sys.argv[2]
table = ods_table([{"report_time": "2025-09-17 23:00:00", "speed": 1.0}] * 3)
table = table.set_column(0, "vin", pa.array(["V" * (100 << 20)] * 3, pa.string()))
(orc if fmt == "orc" else pq).write_table(table, path, compression="zstd")
"""
# Runs a command from a small, fresh interpreter and prints the command's own peak RSS (KiB):
# a child forked from pytest itself would count pytest's pages in its peak.
PEAK_RSS_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=sys.stderr, stderr=sys.stderr)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
def test_a_decompression_bomb_is_refused_before_it_takes_memory(tmp_path, fmt):
    """A few KB of raw file holding 3 x 100 MiB VINs once took 5.5 GB and failed DWD.

    Run as users run it (the CLI, its own process) and measure that process's peak memory.
    """
    work = project_dir(tmp_path)
    hour_dir = work / "data" / "raw" / ODS_TABLE / HOUR.hive_path
    hour_dir.mkdir(parents=True)
    bomb = hour_dir / f"bomb.{fmt}"
    # Built in its own process, so this test process stays small.
    subprocess.run([sys.executable, "-c", BOMB_WRITER, str(bomb), fmt], check=True, timeout=120)
    assert bomb.stat().st_size < 1 << 20  # yet 300 MiB of VINs inside
    pq.write_table(ods_table([GOOD]), hour_dir / "good.parquet")
    command = [*MATERIALIZE_HOURLY,
               "--partition", HOUR.key]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_LAUNCHER, *command],
        cwd=work, env=subprocess_env(DAGSTER_HOME=str(work)),
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    peak_mib = int(done.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 1024, f"peak RSS {peak_mib:.0f} MiB"
    intake = work / "data" / "warehouse" / "_intake" / ODS_TABLE / HOUR.hive_path / "intake.json"
    (quarantined,) = json.loads(intake.read_text())["quarantined"]
    assert quarantined["file"].endswith(f"bomb.{fmt}")
    assert "refused before decompressing" in quarantined["reason"]
    ads = pq.read_table(work / "data" / "warehouse" / partition_relpath(ADS_TABLE, HOUR))
    assert ads.column("vin").to_pylist() == ["VIN001"]


def test_dictionary_encoded_columns_are_data_not_quarantine(local_storage, catalog):
    frame = pd.DataFrame([GOOD, _row(vin="VIN002", device_id="D2")])
    for column in ("vin", "device_id", "raw_payload"):
        frame[column] = frame[column].astype("category")
    write_raw(local_storage.raw(), "category.parquet", pa.Table.from_pandas(frame))
    result = _run(local_storage, catalog)
    ods = materialization_metadata(result, ODS_TABLE)
    assert ods["files_quarantined"].value == 0
    assert sorted(r["vin"] for r in _read(local_storage, ADS_TABLE)) == ["VIN001", "VIN002"]


def test_files_in_nested_folders_are_recorded_as_skipped(local_storage, catalog):
    raw = local_storage.raw()
    write_raw(raw, "good.parquet", ods_table([GOOD]))
    write_raw(raw, "nested/hidden.parquet", ods_table([_row(vin="VIN009")]))
    write_raw(raw, "a/b/deeper.orc", ods_table([_row(vin="VIN008")]))
    result = _run(local_storage, catalog)
    skipped = {s["file"].split(HOUR.hive_path + "/")[1]: s["reason"]
               for s in materialization_metadata(result, ODS_TABLE)["skipped"].value}  # fmt: skip
    assert set(skipped) == {"nested/hidden.parquet", "a/b/deeper.orc"}
    assert all("nested folder" in reason for reason in skipped.values())
    assert [r["vin"] for r in _read(local_storage, ADS_TABLE)] == ["VIN001"]


def test_odd_keys_on_s3_appear_in_the_intake_record(s3_storage, catalog):
    """Keys with '..' segments or nested folders are listed as they are, and skipped."""
    raw = s3_storage.raw()
    write_raw(raw, "good.parquet", ods_table([GOOD]))
    sink = pa.BufferOutputStream()
    pq.write_table(ods_table([_row(vin="VIN666")]), sink)
    odd = f"{ODS_TABLE}/{HOUR.hive_path}/../{HOUR.hh}/evil.parquet"
    raw.write_bytes(odd, sink.getvalue().to_pybytes())
    assert odd in {i.key for i in raw.list_objects(ODS_TABLE)}, "the store keeps the key as is"
    result = _run(s3_storage, catalog)
    ods = materialization_metadata(result, ODS_TABLE)
    skipped = [s["file"] for s in ods["skipped"].value]
    assert any(f.endswith("/../23/evil.parquet") for f in skipped), skipped
    assert ods["rows_out"].value == 1


def test_empty_and_all_null_files_are_harmless(local_storage, catalog):
    raw = local_storage.raw()
    write_raw(raw, "good.parquet", ods_table([GOOD]))
    write_raw(raw, "no_rows.parquet", ODS_SCHEMA.empty_table())
    write_raw(raw, "all_null.parquet", ods_table([{}, {}]))
    result = _run(local_storage, catalog)
    ods = materialization_metadata(result, ODS_TABLE)
    assert (ods["files_read"].value, ods["rows_out"].value) == (3, 3)
    assert [r["vin"] for r in _read(local_storage, ADS_TABLE)] == ["VIN001"]
