"""Every exit for the thirdparty role: no raw VIN leaves, and the numbers stay usable."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from lakehouse.governance.io_manager import ROLE_TAG, MaskedTableLoader, masked_table_loader
from lakehouse.governance.policy import AccessDenied
from lakehouse.governance.role_catalog import connect_as_role
from lakehouse.partitions import hourly_partitions
from lakehouse.resources.engine import compute_engine
from lakehouse.resources.storage import LakehouseStorage, storage_resource
from lakehouse.sample_data import write_sample_data
from lakehouse.sql_text import quote_identifier
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import HOUR, materialize_hour

ROLE = "thirdparty"


@pytest.fixture
def shared_hour(local_storage, catalog):
    """An hour with dirt, materialized with its shares; and every raw VIN in it."""
    report = write_sample_data(
        local_storage.raw(), start=HOUR.start, vehicles=25, interval_s=60, dirty=True
    )
    assert materialize_hour(local_storage, catalog).success
    raw_vins = set()
    for relative in report.files:
        path = local_storage.raw().path(relative)
        fmt = "orc" if relative.endswith(".orc") else "parquet"
        raw_vins |= {
            v for v in ds.dataset(path, format=fmt).to_table().column("vin").to_pylist() if v
        }
    assert len(raw_vins) == 25
    return local_storage, catalog, raw_vins


def _all_strings(table) -> set[str]:
    return {
        value
        for column in table.itercolumns()
        for value in column.to_pylist()
        if isinstance(value, str)
    }


def test_share_files_hold_only_masked_vins(shared_hour):
    storage, _, raw_vins = shared_hour
    share = storage.share()
    assert share.root.endswith("/warehouse/share")
    files = share.list_files(ROLE, recursive=True)
    assert sorted(f.path.split(f"{ROLE}/")[1] for f in files) == [
        partition_relpath(ADS_TABLE, HOUR),
        partition_relpath(DWD_TABLE, HOUR),
    ]
    for info in files:
        table = pq.read_table(info.path)
        assert not _all_strings(table) & raw_vins
        assert all(v[0] == "V" and set(v[1:-1]) == {"*"} for v in table.column("vin").to_pylist())
        with open(info.path, "rb") as handle:
            raw_bytes = handle.read()
        assert not any(vin.encode() in raw_bytes for vin in raw_vins)
        # Column statistics in the footer are computed from masked values too.
        stats = pq.ParquetFile(info.path).metadata.row_group(0).column(0).statistics
        assert stats.min not in raw_vins and stats.max not in raw_vins


def test_masked_ads_keeps_its_numbers(shared_hour):
    storage, _, _ = shared_hour
    warehouse_ads = pq.read_table(storage.warehouse().path(partition_relpath(ADS_TABLE, HOUR)))
    shared_ads = pq.read_table(storage.share().path(ROLE, partition_relpath(ADS_TABLE, HOUR)))
    numbers = ["total_distance", "total_distance_haversine", "avg_speed"]

    def rows(table):
        return sorted(zip(*(table.column(c).to_pylist() for c in numbers), strict=True))

    assert rows(shared_ads) == rows(warehouse_ads)


def test_role_catalog_is_masked_granted_only_and_sealed(shared_hour):
    storage, catalog, raw_vins = shared_hour
    raw_file = storage.raw().list_files(f"{ODS_TABLE}/{HOUR.hive_path}")[0].path
    warehouse_file = storage.warehouse().path(partition_relpath(DWD_TABLE, HOUR))
    climb_out = storage.share().path(ROLE, "..", "..")  # the warehouse, through the share
    with connect_as_role(catalog.role_path(ROLE), storage.share(), ROLE) as con:
        views = {r[0] for r in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
        assert {DWD_TABLE, ADS_TABLE, ODS_TABLE} <= views
        assert con.sql("SELECT table_name FROM duckdb_tables()").fetchall() == []  # no copies
        result = con.sql(f"SELECT * FROM {DWD_TABLE}").to_arrow_table()
        assert result.num_rows > 0
        assert not _all_strings(result) & raw_vins
        for query in (
            f"SELECT * FROM {ODS_TABLE}",
            f"SELECT count(*) FROM {ODS_TABLE} WHERE vin = 'x'",
        ):
            with pytest.raises(
                duckdb.Error, match=f"role '{ROLE}' has no grant on table '{ODS_TABLE}'"
            ):
                con.sql(query).fetchall()
        for escape in (
            f"SELECT * FROM read_parquet('{raw_file}')",
            f"SELECT * FROM read_parquet('{warehouse_file}')",
            f"SELECT * FROM read_parquet('{climb_out}/{DWD_TABLE}/**/*.parquet')",
            f"SELECT * FROM glob('{storage.warehouse().root}/*')",
            f"ATTACH '{catalog.resolved_path()}' AS main_catalog",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET enable_external_access = true",
            f"SET allowed_directories = ['{storage.warehouse().root}/']",
            "SET lock_configuration = false",
            "RESET lock_configuration",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(escape)
        # Still confined after all those attempts, and still serving its share.
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone() == (
            False,
        )
        assert con.execute(f"SELECT count(*) FROM {ADS_TABLE}").fetchone()[0] == 25


def test_table_loader_masks_for_the_role_in_config_or_run_tag(shared_hour):
    storage, _, raw_vins = shared_hour
    engine = compute_engine()

    def load(loader: MaskedTableLoader, table: str, tags: dict[str, str] | None = None):
        @dg.asset(
            partitions_def=dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00"),
            ins={"upstream": dg.AssetIn(table, input_manager_key="table_loader")},
        )
        def consumer(upstream) -> dg.MaterializeResult:
            return dg.MaterializeResult(metadata={"vins": sorted(set(upstream["vin"].to_pylist()))})

        upstream = dg.AssetSpec(table, partitions_def=consumer.partitions_def)
        result = dg.materialize(
            [upstream, consumer],
            selection=[consumer],
            partition_key=HOUR.key,
            resources={"table_loader": loader},
            tags=tags or {},
        )
        return set(result.asset_materializations_for_node("consumer")[0].metadata["vins"].value)

    by_setting = MaskedTableLoader(storage=storage, engine=engine, role=ROLE)
    trusted = MaskedTableLoader(storage=storage, engine=engine)
    assert not load(by_setting, ADS_TABLE) & raw_vins
    assert not load(trusted, DWD_TABLE, {ROLE_TAG: ROLE}) & raw_vins
    assert load(trusted, ADS_TABLE) == raw_vins
    with pytest.raises(AccessDenied, match="no grant on table 'ods_vehicle_gps_raw'"):
        load(by_setting, ODS_TABLE)
    with pytest.raises(AccessDenied, match="contradicts"):
        load(by_setting, ADS_TABLE, {ROLE_TAG: "analyst"})


def test_spark_reads_the_share_and_sees_only_masked_vins(shared_hour):
    """The third-party team's engine: Spark reads the hive-partitioned share directly."""
    storage, _, raw_vins = shared_hour
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # the dev extra installs pyspark; say so if it is missing
        pytest.fail(f"pyspark is not installed ({exc}); install the dev extra")
    if shutil.which("java") is None:
        pytest.fail("Spark needs a Java runtime (17+) on PATH; none was found")
    try:
        spark = (
            SparkSession.builder.master("local[1]")
            .appName("lakehouse-share-test")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .getOrCreate()
        )
    except Exception as exc:  # report why Spark could not start instead of passing
        pytest.fail(f"Spark could not start on this machine: {exc}")
    try:
        frame = spark.read.parquet(storage.share().path(ROLE, DWD_TABLE))
        assert {"dt", "hh"} <= set(frame.columns)
        rows = frame.select("vin", "dt", "hh").distinct().collect()
    finally:
        spark.stop()
    vins = {r["vin"] for r in rows}
    assert len(vins) >= 1
    assert not vins & raw_vins
    # Spark infers the hive partition columns' types (date, int): same hour.
    assert {(str(r["dt"]), int(r["hh"])) for r in rows} == {(HOUR.dt, int(HOUR.hh))}


# Row order: the warehouse stores DWD/ADS sorted by raw vin, and the sample fleet's ids are
# sequential (VIN000001, VIN000002, ...), so masked rows kept in stored order would give every
# vehicle's raw id away by position.


def assert_in_masked_order(table: pa.Table) -> None:
    """The rows are stored exactly in the order their own (masked) values sort to."""
    assert table.num_rows > 0
    positioned = table.append_column("_pos", pa.array(range(table.num_rows), pa.int64()))
    columns = ", ".join(quote_identifier(c) for c in table.column_names)
    with duckdb.connect() as con:
        con.register("t", positioned)
        (positions,) = con.execute(f"SELECT list(_pos ORDER BY {columns}, _pos) FROM t").fetchone()
    assert positions == list(range(table.num_rows))


def raw_vins_in_stored_order(storage, shared: pa.Table) -> list[str]:
    """Each shared DWD row's raw vin, found by its other (unmasked) values in the warehouse."""
    warehouse = pq.read_table(storage.warehouse().path(partition_relpath(DWD_TABLE, HOUR)))
    key = ["event_time", "lng", "lat", "speed", "loc_valid"]
    with duckdb.connect() as con:
        con.register("w", warehouse)
        con.register("s", shared.append_column("_pos", pa.array(range(shared.num_rows))))
        on = " AND ".join(f"s.{c} IS NOT DISTINCT FROM w.{c}" for c in key)
        rows = con.execute(
            f"SELECT s._pos, min(w.vin) FROM s JOIN w ON {on} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert len(rows) == shared.num_rows
    return [vin for _, vin in rows]


def test_every_exit_stores_masked_rows_in_masked_order_with_masked_statistics(shared_hour):
    storage, catalog, raw_vins = shared_hour
    for table in (DWD_TABLE, ADS_TABLE):
        shared_file = storage.share().path(ROLE, partition_relpath(table, HOUR))
        assert_in_masked_order(pq.read_table(shared_file))
        assert_no_raw_value_in_file(shared_file, raw_vins)
        with connect_as_role(catalog.role_path(ROLE), storage.share(), ROLE) as con:
            assert_in_masked_order(con.sql(f"SELECT * FROM {table}").to_arrow_table())

    loaded = []

    @dg.asset(
        partitions_def=dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00"),
        ins={"upstream": dg.AssetIn(DWD_TABLE, input_manager_key="table_loader")},
    )
    def consumer(upstream) -> None:
        loaded.append(upstream)

    loader = MaskedTableLoader(storage=storage, engine=compute_engine(), role=ROLE)
    upstream = dg.AssetSpec(DWD_TABLE, partitions_def=consumer.partitions_def)
    assert dg.materialize(
        [upstream, consumer],
        selection=[consumer],
        partition_key=HOUR.key,
        resources={"table_loader": loader},
    ).success
    assert_in_masked_order(loaded[0])


def test_shared_row_order_does_not_follow_raw_vin_rank(shared_hour):
    """The leak itself: on the old code the raw vins behind the shared rows came out sorted."""
    storage, _, _ = shared_hour
    shared = pq.read_table(storage.share().path(ROLE, partition_relpath(DWD_TABLE, HOUR)))
    vins = raw_vins_in_stored_order(storage, shared)
    assert vins != sorted(vins)
    ranks = np.array([sorted(set(vins)).index(v) for v in vins], dtype=float)
    correlation = np.corrcoef(np.arange(len(vins)), ranks)[0, 1]
    assert abs(correlation) < 0.5, f"row position correlates with raw vin rank ({correlation:.2f})"


def assert_no_raw_value_in_file(path: str, raw_values: set[str]) -> None:
    """No statistic (any row group, any column), dictionary page or byte holds a raw value."""
    parquet = pq.ParquetFile(path)
    strings = [f.name for f in parquet.schema_arrow if pa.types.is_string(f.type)]
    dictionary_encoded = pq.ParquetFile(path, read_dictionary=strings)
    for group in range(parquet.metadata.num_row_groups):
        for index in range(parquet.metadata.num_columns):
            stats = parquet.metadata.row_group(group).column(index).statistics
            if stats is not None and stats.has_min_max:
                assert {stats.min, stats.max}.isdisjoint(raw_values)
        encoded = dictionary_encoded.read_row_group(group)
        for name in strings:
            for chunk in encoded.column(name).chunks:
                assert set(chunk.dictionary.to_pylist()).isdisjoint(raw_values)
    payload = Path(path).read_bytes()  # footers, page indexes, dictionaries, pages
    assert not any(value.encode() in payload for value in raw_values)


def test_the_code_locations_loader_reads_the_storage_given_in_run_config(shared_hour):
    """The loader is bound to the ``storage`` resource by key: run config for it applies."""
    storage, _, raw_vins = shared_hour

    @dg.asset(
        partitions_def=hourly_partitions,
        ins={"upstream": dg.AssetIn(ADS_TABLE, input_manager_key="table_loader")},
    )
    def consumer(upstream) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"vins": sorted(set(upstream["vin"].to_pylist()))})

    resources = {
        "storage": storage_resource(LakehouseStorage()),  # defaults point elsewhere
        "engine": compute_engine(),
        "table_loader": masked_table_loader,
    }
    config = {"resources": {"storage": {"config": {"warehouse_url": storage.warehouse_url}}}}
    result = dg.materialize(
        [dg.AssetSpec(ADS_TABLE, partitions_def=hourly_partitions), consumer],
        selection=[consumer],
        partition_key=HOUR.key,
        resources=resources,
        run_config=config,
    )
    vins = set(result.asset_materializations_for_node("consumer")[0].metadata["vins"].value)
    assert vins == raw_vins
