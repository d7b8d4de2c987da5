"""Parquet and ORC uploads of the same hour give the same layers as all-Parquet uploads."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.sample_data import write_sample_data
from lakehouse.tables import ADS_TABLE, DWD_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import HOUR, materialize_hour


def _in_row_order(table: pa.Table) -> pa.Table:
    """The table sorted by every column: DWD is published unordered, so only its rows compare."""
    return table.sort_by([(name, "ascending") for name in table.column_names])


def _layers(storage, catalog, file_format):
    write_sample_data(
        storage.raw(create=True), start=HOUR.start, vehicles=12, interval_s=30,
        file_format=file_format,
        dirty=True, seed=7,
    )  # fmt: skip
    assert materialize_hour(storage, catalog).success
    warehouse = storage.warehouse()
    return {
        t: pq.read_table(warehouse.path(partition_relpath(t, HOUR))) for t in (DWD_TABLE, ADS_TABLE)
    }


def test_mixed_parquet_and_orc_equals_all_parquet(tmp_path):
    from lakehouse.resources.catalog import CatalogResource
    from lakehouse.resources.storage import LakehouseStorage

    results = {}
    for fmt in ("parquet", "mixed", "orc"):
        storage = LakehouseStorage(
            raw_url=str(tmp_path / fmt / "raw"), warehouse_url=str(tmp_path / fmt / "wh")
        )
        catalog = CatalogResource(path=str(tmp_path / fmt / "catalog.duckdb"))
        results[fmt] = _layers(storage, catalog, fmt)
    raw_files = list((tmp_path / "mixed" / "raw").rglob("*.orc"))
    assert raw_files, "the mixed run must really contain ORC files"
    assert results["parquet"][DWD_TABLE].num_rows > 300
    for table in (DWD_TABLE, ADS_TABLE):
        expected = _in_row_order(results["parquet"][table])
        assert _in_row_order(results["mixed"][table]).equals(expected)
        assert _in_row_order(results["orc"][table]).equals(expected)
