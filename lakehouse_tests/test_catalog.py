"""The analyst catalog: one view per table, hive columns as strings, no SQL injection."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lakehouse.partitions import HourPartition
from lakehouse.sample_data import write_sample_data
from lakehouse.sql_text import quote_identifier
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.catalog import ensure_view
from lakehouse.warehouse.partition_store import write_partition
from lakehouse_tests.conftest import HOUR, materialization_metadata, materialize_hour


def test_catalog_views_serve_every_layer_with_partition_columns(local_storage, catalog):
    write_sample_data(local_storage.raw(), start=HOUR.start, hours=2, vehicles=6, interval_s=60)
    later = HourPartition.from_key("2025-09-18-00:00")
    assert materialize_hour(local_storage, catalog).success

    with duckdb.connect(str(catalog.resolved_path()), read_only=True) as conn:
        views = {r[0] for r in conn.sql("SELECT view_name FROM duckdb_views()").fetchall()}
        assert {ODS_TABLE, DWD_TABLE, ADS_TABLE} <= views
        rows = conn.sql(
            f"SELECT dt, hh, count(*) FROM {ADS_TABLE} GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        assert rows == [("2025-09-17", "23", 6)]

    # A partition published later shows through the existing view, which stays unchanged.
    result = materialize_hour(local_storage, catalog, partition=later)
    meta = materialization_metadata(result, ADS_TABLE)
    assert meta["catalog_view"].value == "unchanged"
    with duckdb.connect(str(catalog.resolved_path()), read_only=True) as conn:
        hours = conn.sql(f"SELECT DISTINCT dt || ' ' || hh FROM {ADS_TABLE} ORDER BY 1").fetchall()
        assert hours == [("2025-09-17 23",), ("2025-09-18 00",)]


def test_hostile_table_names_stay_quoted(local_storage, catalog):
    hostile = "x\"; DROP TABLE important; --'"
    assert quote_identifier(hostile) == '"x""; DROP TABLE important; --\'"'
    warehouse = local_storage.warehouse()
    schema = pa.schema([("keep", pa.int64())])
    write_partition(warehouse, hostile, HOUR, schema, [pa.record_batch([pa.array([7])], schema)])
    with catalog.get_connection() as conn:
        conn.execute("CREATE TABLE important AS SELECT 1 AS keep")
    assert ensure_view(catalog, warehouse, hostile) == "created"
    with catalog.get_connection() as conn:
        assert conn.sql("SELECT keep FROM important").fetchall() == [(1,)]
        assert conn.sql(f"SELECT keep, hh FROM {quote_identifier(hostile)}").fetchall() == [
            (7, "23")
        ]


def test_paths_with_quotes_are_escaped(tmp_path, catalog):
    from lakehouse.resources.storage import LakehouseStorage

    storage = LakehouseStorage(
        raw_url=str(tmp_path / "r'aw"), warehouse_url=str(tmp_path / "wa'rehouse")
    )
    write_sample_data(storage.raw(create=True), start=HOUR.start, vehicles=4, interval_s=300)
    assert materialize_hour(storage, catalog).success
    with duckdb.connect(str(catalog.resolved_path()), read_only=True) as conn:
        assert conn.sql(f"SELECT count(*) FROM {ADS_TABLE}").fetchall() == [(4,)]
