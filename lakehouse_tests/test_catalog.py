"""The analyst catalog: one view per table, hive columns as strings, no SQL injection."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from lakehouse.partitions import HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.sample_data import write_sample_data
from lakehouse.sql_text import quote_identifier
from lakehouse.tables import ADS_TABLE, DWD_TABLE, ODS_TABLE
from lakehouse.warehouse.catalog import ensure_view
from lakehouse.warehouse.catalog_file import read_manifest
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
    write_partition(
        warehouse, "important", HOUR, schema, [pa.record_batch([pa.array([1])], schema)]
    )
    assert ensure_view(catalog, warehouse, "important") == "created"
    assert ensure_view(catalog, warehouse, hostile) == "created"
    with catalog.connect_read_only() as conn:
        views = {r[0] for r in conn.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        assert {hostile, "important"} <= views
        assert conn.execute("SELECT keep FROM important").fetchall() == [(1,)]
        assert conn.execute(f"SELECT keep, hh FROM {quote_identifier(hostile)}").fetchall() == [
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


# Readers never block writers: a BI tool or `duckdb -readonly` may hold a catalog open forever.

READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute(sys.argv[2]).fetchall(), flush=True)
sys.stdin.readline()
print(con.execute(sys.argv[2]).fetchall(), flush=True)
"""


@contextmanager
def reader_holding(path: Path, query: str) -> Iterator[list[str]]:
    """A separate process holding a read-only connection to ``path`` until the block ends.

    Yields its answers to ``query``: one when it has connected, one more when released.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), query],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers = [proc.stdout.readline().strip()]
    try:
        assert answers[0], proc.stderr.read()
        yield answers
    finally:
        proc.stdin.write("\n")
        proc.stdin.flush()
        answers.append(proc.stdout.readline().strip())
        proc.wait(timeout=30)


def test_readers_holding_the_catalogs_open_never_block_a_run(local_storage, catalog):
    write_sample_data(local_storage.raw(), start=HOUR.start, hours=2, vehicles=6, interval_s=60)
    later = HourPartition.from_key("2025-09-18-00:00")
    assert materialize_hour(local_storage, catalog).success
    count = f"SELECT count(DISTINCT hh) FROM {ADS_TABLE}"
    with (
        reader_holding(catalog.resolved_path(), count) as analyst,
        reader_holding(catalog.role_path("thirdparty"), count) as thirdparty,
    ):
        started = time.monotonic()
        result = materialize_hour(local_storage, catalog, partition=later)
        elapsed = time.monotonic() - started
        assert result.success
        assert elapsed < 20, f"the run took {elapsed:.0f} s next to two readers"
    # The readers kept working throughout, and their views show the new hour.
    assert analyst == ["[(1,)]", "[(2,)]"]
    assert thirdparty == ["[(1,)]", "[(2,)]"]


def test_a_changed_definition_replaces_the_catalog_without_waiting_for_its_reader(
    local_storage, catalog
):
    warehouse = local_storage.warehouse()
    schema = pa.schema([("keep", pa.int64())])
    for table, value in (("first_table", 1), ("second_table", 2)):
        write_partition(
            warehouse, table, HOUR, schema, [pa.record_batch([pa.array([value])], schema)]
        )
    assert ensure_view(catalog, warehouse, "first_table") == "created"
    path = catalog.resolved_path()
    with reader_holding(path, "SELECT keep FROM first_table") as held:
        started = time.monotonic()
        assert ensure_view(catalog, warehouse, "second_table") == "created"
        assert time.monotonic() - started < 5
        with duckdb.connect(str(path), read_only=True) as fresh:
            assert fresh.execute("SELECT keep FROM second_table").fetchall() == [(2,)]
        assert ensure_view(catalog, warehouse, "second_table") == "unchanged"
    assert held == ["[(1,)]", "[(1,)]"]  # its snapshot kept working
    assert read_manifest(path).keys() == {"first_table", "second_table"}
    assert not Path(f"{path}.wal").exists()


def test_a_catalog_that_cannot_be_refreshed_does_not_fail_the_run(tmp_path, local_storage):
    write_sample_data(local_storage.raw(), start=HOUR.start, vehicles=4, interval_s=300)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # the catalog's folder cannot be created
    catalog = CatalogResource(path=str(blocker / "catalog.duckdb"))
    instance = dg.DagsterInstance.ephemeral()

    result = materialize_hour(local_storage, catalog, instance=instance)
    assert result.success
    assert materialization_metadata(result, ADS_TABLE)["catalog_view"].value.startswith("failed:")
    (share_meta,) = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["share", "thirdparty", ADS_TABLE])
    ]
    assert share_meta["role_catalog_refresh"].value.startswith("failed:")
    warnings = [
        e.user_message
        for e in instance.all_logs(result.run_id)
        if e.level == logging.WARNING and "not refreshed" in e.user_message
    ]
    assert any(ADS_TABLE in w for w in warnings) and any("thirdparty" in w for w in warnings)

    blocker.unlink()  # fixed: the next run creates what the last one could not
    again = materialize_hour(local_storage, catalog)
    assert materialization_metadata(again, ADS_TABLE)["catalog_view"].value == "created"
    with catalog.connect_read_only() as conn:
        assert conn.execute(f"SELECT count(*) FROM {ADS_TABLE}").fetchall() == [(4,)]
