"""The Spark engine computes the same hours as DuckDB, and readers cannot tell which one did.

One definition of the layers (DuckDB SQL) is compiled to Spark SQL by SQLGlot; these tests run
both on the same dirty hour (Parquet + ORC, every kind of dirt) and on hypothesis-made rows, and
compare what was published: DWD row for row, ADS and the KPIs within 1e-9, the same files,
schemas, row groups and writer, the same checks and metadata but for ``engine``. Spark runs in
local mode in this process, and as a real Spark Connect server (``sc://``) for a CLI run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse.definitions import defs
from lakehouse.defs.ads.fleet_kpi import fleet_kpi_sql
from lakehouse.defs.ads.transform import ads_sql
from lakehouse.defs.dwd.transform import DROP_REASONS, classified_sql, count_drops, dwd_sql
from lakehouse.engines.local_connect import local_connect_server
from lakehouse.engines.session import DuckDBLayers, LayerSession
from lakehouse.engines.spark import SparkLayers, spark_layers
from lakehouse.engines.spark_sql import UntranslatableSql, to_spark
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.engine import compute_engine
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.rules import BLANK_CHARACTERS
from lakehouse.tables import ADS_TABLE, DWD_TABLE, KPI_TABLE, ODS_SCHEMA
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    HOUR,
    LAKEHOUSE_CLI,
    MATERIALIZE_HOURLY,
    lakehouse_init,
    ods_table,
    open_instance,
    project_dir,
    subprocess_env,
    write_raw,
)
from lakehouse_tests.spark_support import (
    assert_rows_close,
    canonical_rows,
    parquet_shape,
    published_files,
)
from lakehouse_tests.test_properties import BAD_TIMES, GOOD_TIMES, rows_strategy

LAYERS = (DWD_TABLE, ADS_TABLE, KPI_TABLE)

# Dirt the generator does not make, in one extra file: every way a row can be dropped or flagged.
HOSTILE_ROWS = [
    {"vin": vin, "report_time": "2025-09-17 23:10:00", "lng": 120.0, "lat": 30.0, "speed": 10.0}
    for vin in (None, "", " ", "\t\n", "\u3000", "\u200b", "\ufeff", "\x00", "\u2028 ")
] + [
    {"vin": "VINX1", "report_time": t.decode(), "lng": 120.0, "lat": 30.0, "speed": 1.0}
    for t in (*BAD_TIMES, *GOOD_TIMES)
] + [
    {"vin": "VINX2", "report_time": f"2025-09-17 23:20:{i:02d}", "lng": lng, "lat": lat,
     "speed": speed}
    for i, (lng, lat, speed) in enumerate([
        (float("nan"), 30.0, 5.0), (120.0, float("nan"), 5.0), (float("inf"), 30.0, 5.0),
        (-0.0, 0.0, 0.0), (None, 30.0, 5.0), (120.0, None, 5.0), (69.9999, 30.0, 5.0),
        (140.0, 60.0, 500.0), (120.0, 30.0, 500.0000001), (120.0, 30.0, float("nan")),
        (120.0, 30.0, float("-inf")), (120.0, 30.0, -0.0), (120.0, 30.0, None),
        (1e308, -1e308, 5.0), (120.5, 30.5, 5e-324), (120.5, 30.5, 5e-324),  # a duplicate
    ])
]  # fmt: skip


@pytest.fixture(scope="module")
def dirty_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dirty hour (mixed Parquet/ORC, junk files) plus the hostile rows above."""
    raw = tmp_path_factory.mktemp("raw")
    done = subprocess.run(
        [LAKEHOUSE_CLI, "generate", "--raw-url", str(raw), "--vehicles", "12",
         "--interval", "20", "--dirty", "--start", "2025-09-17T23:00"],
        capture_output=True, text=True, timeout=120, env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    storage = LakehouseStorage(raw_url=str(raw), warehouse_url=str(raw.parent / "unused"))
    write_raw(storage.raw(), "hostile.parquet", ods_table(HOSTILE_ROWS))
    write_raw(storage.raw(), "hostile-copy.orc", ods_table(HOSTILE_ROWS[:12]))
    return raw


def _run_hour(raw: Path, root: Path, engine: str) -> tuple[Path, dict[str, dict]]:
    """The hourly job on ``engine``; the warehouse and each asset's metadata."""
    raw_copy = root / "raw"
    shutil.copytree(raw, raw_copy)
    storage = LakehouseStorage(raw_url=str(raw_copy), warehouse_url=str(root / "warehouse"))
    result = defs.resolve_job_def("hourly_lakehouse_job").execute_in_process(
        partition_key=HOUR.key,
        resources={
            "storage": storage,
            "engine": compute_engine(layers=engine),
            "catalog": CatalogResource(path=str(root / "catalog.duckdb")),
        },
    )
    assert result.success
    metadata = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }
    schema_checks = [
        c for c in result.get_asset_check_evaluations() if c.asset_key.path[-1] in LAYERS
    ]
    assert len(schema_checks) == len(LAYERS) and all(c.passed for c in schema_checks)
    return root / "warehouse", metadata


@pytest.fixture(scope="module")
def both_engines(dirty_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        engine: _run_hour(dirty_raw, tmp_path_factory.mktemp(engine), engine)
        for engine in ("duckdb", "spark")
    }


def _rows(warehouse: Path, table: str) -> list[dict]:
    return pq.read_table(warehouse / partition_relpath(table, HOUR)).to_pylist()


def test_dwd_from_spark_equals_dwd_from_duckdb_row_for_row(both_engines):
    (duck, _), (spark, _) = both_engines["duckdb"], both_engines["spark"]
    duck_dwd, spark_dwd = _rows(duck, DWD_TABLE), _rows(spark, DWD_TABLE)
    assert len(duck_dwd) > 1000, "the hour must hold real data"
    assert not all(r["loc_valid"] for r in duck_dwd), "the dirt must reach DWD's flag"
    assert canonical_rows(spark_dwd) == canonical_rows(duck_dwd)


def test_ads_and_kpis_agree_within_1e_9_in_the_same_order(both_engines):
    (duck, _), (spark, _) = both_engines["duckdb"], both_engines["spark"]
    for table in (ADS_TABLE, KPI_TABLE):
        assert_rows_close(_rows(spark, table), _rows(duck, table), table)
    assert len(_rows(duck, ADS_TABLE)) >= 12


def test_readers_cannot_tell_which_engine_wrote_the_hour(both_engines):
    (duck, duck_meta), (spark, spark_meta) = both_engines["duckdb"], both_engines["spark"]
    duck_files, spark_files = published_files(duck), published_files(spark)
    assert spark_files.keys() == duck_files.keys()  # same hive paths, one file per partition
    for relative, path in duck_files.items():
        if relative.endswith(".parquet"):
            assert parquet_shape(spark_files[relative]) == parquet_shape(path), relative
    # Downstream of the layers, the masked share of DWD is the same bytes (of ADS, the same
    # file but for the last bits of the distances: libm and Java round sin/cos differently).
    shared = [r for r in duck_files if r.startswith("share/") and DWD_TABLE in r]
    assert shared
    for relative in shared:
        assert spark_files[relative].read_bytes() == duck_files[relative].read_bytes(), relative

    for table in LAYERS:
        assert duck_meta[table]["engine"] == "duckdb" and spark_meta[table]["engine"] == "spark"
        assert duck_meta[table].keys() == spark_meta[table].keys()
        for key in ("rows_out", "rows_in", "row_groups", "dagster/row_count"):
            assert duck_meta[table].get(key) == spark_meta[table].get(key), (table, key)
    drops = [k for k in duck_meta[DWD_TABLE] if k.startswith("dropped_")]
    assert {k: spark_meta[DWD_TABLE][k] for k in drops} == {
        k: duck_meta[DWD_TABLE][k] for k in drops
    }
    assert all(duck_meta[DWD_TABLE][f"dropped_{r}"] > 0 for r in ("missing_vin", "invalid_speed"))


# --- the compiled SQL, function by function ----------------------------------------------------


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkLayers]:
    with spark_layers("local[2]", None, {}, Path(tempfile.mkdtemp())) as layers:
        yield layers


def _both(spark: SparkLayers, table: pa.Table, sql: str) -> tuple[list[tuple], list[tuple]]:
    """``sql`` over ``table`` (as view ``t``) on DuckDB and on Spark, rows in order."""
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/t.parquet"
        pq.write_table(table, path)
        duck = DuckDBLayers(duckdb.connect())
        results = []
        for layers in (duck, spark):
            layers.register("t", path)
            results.append(layers.rows(sql))
        return results[0], results[1]


def test_the_dialect_keeps_duckdb_semantics_for_nulls_nan_blanks_and_times(spark):
    values = [None, float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1e308, 5e-324, 7.5]
    strings = [None, "", " ", "\t", "\u3000x", "x\n", "\n", "\u200b\ufeff", "VIN", "\u2028"]
    times = [None, *(t.decode() for t in BAD_TIMES + GOOD_TIMES), "2024-02-29 00:00:00",
             "2023-02-29 00:00:00", "9999-12-31 23:59:59", "0001-01-01 00:00:00"]  # fmt: skip
    n = len(values) * len(strings) * 3  # co-prime cycles: every pairing turns up
    table = pa.table({
        "i": list(range(n)),
        "vin": [strings[i % len(strings)] for i in range(n)],
        "report_time": [times[i % len(times)] for i in range(n)],
        "lng": [values[i % len(values)] for i in range(n)],
        "lat": [values[(i // 2) % len(values)] for i in range(n)],
        "speed": [values[(i // 3) % len(values)] for i in range(n)],
    })  # fmt: skip
    functions = f"""SELECT i, isfinite(lng), regexp_full_match(vin, '{BLANK_CHARACTERS}*')
                    FROM t ORDER BY i"""
    duck, spark_rows = _both(spark, table, functions)
    assert spark_rows == duck
    assert {row[1] for row in duck} == {None, True, False}
    assert {row[2] for row in duck} == {None, True, False}
    # Spark's parser accepts what DuckDB's refuses (a leading space); the round trip through
    # strftime makes the drop reason the same, and the reason is what the layers use.
    reasons = f"""SELECT vin, reason, isfinite(speed),
                         CASE WHEN reason IS NULL THEN strftime(event_time, '%Y-%m-%d %H:%M:%S')
                         END
                  FROM ({classified_sql("t")})"""
    duck, spark_rows = _both(spark, table, reasons)
    assert sorted(map(repr, spark_rows)) == sorted(map(repr, duck))
    assert {row[1] for row in duck} == {None, *DROP_REASONS}


def test_a_duckdb_function_without_a_translation_is_refused_when_compiling():
    with pytest.raises(UntranslatableSql, match="lakehouse_magic"):
        to_spark("SELECT lakehouse_magic(vin) FROM dwd")
    # The layers' own SQL compiles: a change Spark could not follow fails here first.
    for sql in (
        classified_sql("ods"),
        dwd_sql("classified"),
        ads_sql("dwd", HOUR.stat_hour),
        fleet_kpi_sql("ads", "dwd", HOUR.stat_hour),
    ):
        assert "SELECT" in to_spark(sql)


def _layers_of(layers: LayerSession, ods_path: str, con: duckdb.DuckDBPyConnection) -> dict:
    """The hour's drop counts, DWD, ADS and KPI rows as ``hourly_layers`` computes them."""
    layers.register("ods", ods_path)
    layers.define("classified", classified_sql("ods"))
    drops = count_drops(layers, "classified")
    out = {"drops": drops}
    with tempfile.TemporaryDirectory() as folder:
        for table, sql, view in (
            (DWD_TABLE, dwd_sql("classified"), "dwd"),
            (ADS_TABLE, ads_sql("dwd", HOUR.stat_hour), "ads"),
            (KPI_TABLE, fleet_kpi_sql("ads", "dwd", HOUR.stat_hour), None),
        ):
            rows = con.sql(layers.result(sql)).to_arrow_table()
            out[table] = rows.to_pylist()
            if view:
                pq.write_table(rows, f"{folder}/{view}.parquet")
                layers.register(view, f"{folder}/{view}.parquet")
    layers.drop("classified")
    return out


def _ods_file(rows: list[dict], folder: str) -> str:
    """Hypothesis rows as an ODS hour (intake only admits valid UTF-8: invalid bytes replaced)."""
    columns = {}
    for field in ODS_SCHEMA:
        values = [row[field.name] for row in rows]
        if pa.types.is_string(field.type):
            values = [v.decode("utf-8", "replace") if v is not None else None for v in values]
        columns[field.name] = pa.array(values, field.type)
    path = f"{folder}/ods.parquet"
    pq.write_table(pa.table(columns, schema=ODS_SCHEMA), path)
    return path


@settings(max_examples=25)
@given(rows=rows_strategy, hour_without_valid_points=st.booleans())
def test_any_rows_give_the_same_layers_on_both_engines(spark, rows, hour_without_valid_points):
    if hour_without_valid_points:  # the KPIs' divisions by zero: NULL on both engines
        rows = [{**row, "lng": float("nan")} for row in rows]
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as folder:
        ods = _ods_file(rows, folder)
        duck = _layers_of(DuckDBLayers(con), ods, con)
        spark_out = _layers_of(spark, ods, con)
    assert spark_out["drops"] == duck["drops"]
    assert canonical_rows(spark_out[DWD_TABLE]) == canonical_rows(duck[DWD_TABLE])
    for table in (ADS_TABLE, KPI_TABLE):
        assert_rows_close(spark_out[table], duck[table], table)


# --- choosing the engine -----------------------------------------------------------------------


def test_an_unknown_engine_is_refused_by_name(local_storage, catalog):
    write_raw(local_storage.raw(), "a.parquet", ods_table(HOSTILE_ROWS[:3]))
    result = defs.resolve_job_def("hourly_lakehouse_job").execute_in_process(
        partition_key=HOUR.key,
        resources={
            "storage": local_storage,
            "engine": compute_engine(layers="flink"),
            "catalog": catalog,
        },
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.to_string()
    assert "unknown layer engine 'flink'" in message and "duckdb, spark" in message
    assert not (Path(local_storage.warehouse_url) / DWD_TABLE).exists()


def test_one_setting_runs_the_cli_on_a_spark_connect_server(tmp_path, dirty_raw, monkeypatch):
    """LAKEHOUSE_ENGINE=spark and SPARK_REMOTE=sc://...: a real server, a separate process."""
    work = project_dir(tmp_path)
    shutil.copytree(dirty_raw, work / "raw")
    env = subprocess_env(
        DAGSTER_HOME=str(work),
        LAKEHOUSE_RAW_URL=str(work / "raw"),
        LAKEHOUSE_WAREHOUSE_URL=str(work / "warehouse"),
    )
    lakehouse_init(work, env)
    with local_connect_server(tmp_path / "spark-connect.log") as url:
        done = subprocess.run(
            [*MATERIALIZE_HOURLY, "--partition", HOUR.key],
            cwd=work, capture_output=True, text=True, timeout=600,
            env={**env, "LAKEHOUSE_ENGINE": "spark", "SPARK_REMOTE": url},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    log = (tmp_path / "spark-connect.log").read_text()
    assert "SessionHolder: Session with userId" in log, "the run never reached the server"
    monkeypatch.chdir(work)
    instance = open_instance(work)
    for table in LAYERS:
        event = instance.get_latest_materialization_event(dg.AssetKey(table))
        assert event.asset_materialization.metadata["engine"].value == "spark", table

    reference_root = tmp_path / "duckdb"
    reference_root.mkdir()
    duck, _ = _run_hour(dirty_raw, reference_root, "duckdb")
    assert canonical_rows(_rows(work / "warehouse", DWD_TABLE)) == canonical_rows(
        _rows(duck, DWD_TABLE)
    )
    assert_rows_close(_rows(work / "warehouse", ADS_TABLE), _rows(duck, ADS_TABLE), ADS_TABLE)
