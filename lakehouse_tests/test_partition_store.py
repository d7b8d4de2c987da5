"""Partitions are replaced atomically: idempotent re-runs, failures leave the old data intact."""

from __future__ import annotations

import errno
import os
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.partitions import HourPartition
from lakehouse.resources.superseded import wait_released
from lakehouse.tables import (
    ADS_TABLE,
    DICTIONARY_COLUMNS,
    DWD_TABLE,
    ODS_TABLE,
    TABLE_SCHEMAS,
)
from lakehouse.warehouse.partition_store import (
    STAGING_DIR,
    MissingPartition,
    partition_relpath,
    read_partition,
    write_partition,
)
from lakehouse_tests.conftest import HOUR, materialize_hour

SCHEMA = pa.schema([("x", pa.int64())])


def _batches(*chunks):
    for chunk in chunks:
        if isinstance(chunk, Exception):
            raise chunk
        yield pa.record_batch([pa.array(chunk, pa.int64())], schema=SCHEMA)


def _published(zone, partition=HOUR):
    return pq.read_table(zone.path(partition_relpath("t", partition))).column("x").to_pylist()


def test_rewrite_replaces_the_whole_partition(local_storage):
    zone = local_storage.warehouse()
    write_partition(zone, "t", HOUR, SCHEMA, _batches([1, 2, 3]))
    written = write_partition(zone, "t", HOUR, SCHEMA, _batches([4], [5]))
    assert _published(zone) == [4, 5]
    assert written.rows == 2
    assert zone.list_files("t", recursive=True)[0].path.endswith("hh=23/part-0.parquet")
    assert len(zone.list_files("t", recursive=True)) == 1


def test_failure_mid_write_keeps_previous_partition(local_storage):
    zone = local_storage.warehouse()
    write_partition(zone, "t", HOUR, SCHEMA, _batches([1, 2, 3]))
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_partition(
            zone, "t", HOUR, SCHEMA, _batches([7] * 10, RuntimeError("disk on fire")),
            rows_per_row_group=4,
        )  # fmt: skip
    assert _published(zone) == [1, 2, 3]
    assert zone.list_files(STAGING_DIR, recursive=True) == []


def test_validator_rejection_keeps_previous_partition(local_storage):
    zone = local_storage.warehouse()
    write_partition(zone, "t", HOUR, SCHEMA, _batches([1]))

    def reject_negative(chunk: pa.Table) -> None:
        if min(chunk.column("x").to_pylist()) < 0:
            raise ValueError("negative x")

    with pytest.raises(ValueError, match="negative x"):
        write_partition(zone, "t", HOUR, SCHEMA, _batches([5], [-1]), validate=reject_negative,
                        rows_per_row_group=1)  # fmt: skip
    assert _published(zone) == [1]


def test_two_partitions_written_concurrently_both_land(local_storage):
    zone = local_storage.warehouse()
    other = HourPartition.from_key("2025-09-17-22:00")
    errors = []

    def write(partition, values):
        try:
            for _ in range(5):
                write_partition(zone, "t", partition, SCHEMA, _batches(values))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(HOUR, list(range(1000)))),
        threading.Thread(target=write, args=(other, list(range(5)))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _published(zone) == list(range(1000))
    assert _published(zone, other) == list(range(5))


def test_reading_a_missing_partition_says_what_to_do(local_storage):
    with pytest.raises(MissingPartition, match="materialize the upstream asset"):
        read_partition(local_storage.warehouse(), DWD_TABLE, HOUR)


def test_rematerializing_an_hour_is_idempotent(local_storage, catalog):
    from lakehouse.sample_data import write_sample_data

    write_sample_data(local_storage.raw(), start=HOUR.start, vehicles=8, interval_s=60, dirty=True)
    assert materialize_hour(local_storage, catalog).success
    zone = local_storage.warehouse()

    def published() -> dict:
        # ODS and ADS are written in order: the same bytes. DWD is written unordered (a sort
        # would cost more than the rest of DWD): the same rows, in whatever order.
        state = {t: zone.read_bytes(partition_relpath(t, HOUR)) for t in (ODS_TABLE, ADS_TABLE)}
        dwd = pq.read_table(zone.path(partition_relpath(DWD_TABLE, HOUR))).to_pylist()
        state[DWD_TABLE] = sorted(tuple(row.values()) for row in dwd)
        return state

    first = published()
    assert materialize_hour(local_storage, catalog).success
    assert published() == first


def test_failed_rematerialization_leaves_published_layers(local_storage, catalog, monkeypatch):
    from lakehouse.defs.hourly import assets as hourly_assets
    from lakehouse.sample_data import write_sample_data

    write_sample_data(local_storage.raw(), start=HOUR.start, vehicles=5, interval_s=60)
    assert materialize_hour(local_storage, catalog).success
    zone = local_storage.warehouse()
    # New raw rows, so a new DWD hour would differ from the published one.
    write_sample_data(
        local_storage.raw(), start=HOUR.start, vehicles=7, interval_s=60, seed=9, overwrite=True
    )
    before = {t: zone.read_bytes(partition_relpath(t, HOUR)) for t in (DWD_TABLE, ADS_TABLE)}

    def broken_query(source, stat_hour):
        return f"SELECT vin, error('engine died') AS stat_hour FROM {source}"

    monkeypatch.setattr(hourly_assets, "ads_sql", broken_query)
    result = materialize_hour(local_storage, catalog, raise_on_error=False)
    assert not result.success
    # DWD and ADS publish together: ADS failing leaves DWD as it was, so they still agree.
    assert {t: zone.read_bytes(partition_relpath(t, HOUR)) for t in before} == before
    assert zone.list_files(STAGING_DIR, recursive=True) == []


def test_only_the_repeating_columns_of_a_layer_are_dictionary_encoded(local_storage, catalog):
    from lakehouse.sample_data import write_sample_data

    write_sample_data(local_storage.raw(), start=HOUR.start, vehicles=8, interval_s=60, dirty=True)
    assert materialize_hour(local_storage, catalog).success
    zone = local_storage.warehouse()
    for table, repeating in DICTIONARY_COLUMNS.items():
        assert set(repeating) <= set(TABLE_SCHEMAS[table].names), table  # no typo goes unseen
        # (booleans are never dictionary-encoded: Parquet packs them as bits)
        if table not in (DWD_TABLE, ADS_TABLE):
            continue
        chunks = pq.read_metadata(zone.path(partition_relpath(table, HOUR))).row_group(0)
        for i in range(chunks.num_columns):
            column = chunks.column(i)
            dictionary = any("DICTIONARY" in e for e in column.encodings)
            assert dictionary == (column.path_in_schema in repeating), (table, column)


def test_a_replaced_partition_is_freed_after_the_swap_and_open_readers_keep_it(local_storage):
    """The swap keeps the old bytes alive under a second name, freed in the background."""
    zone = local_storage.warehouse()
    write_partition(zone, "t", HOUR, SCHEMA, _batches([1, 2, 3]))
    with open(zone.path(partition_relpath("t", HOUR)), "rb") as reader:
        old_inode = os.fstat(reader.fileno()).st_ino
        write_partition(zone, "t", HOUR, SCHEMA, _batches([4]))
        wait_released()
        assert _published(zone) == [4]
        # An open reader still reads the whole old file; nothing else names it any more.
        assert pq.read_table(reader).column("x").to_pylist() == [1, 2, 3]
        assert os.fstat(reader.fileno()).st_nlink == 0
    staging = zone.path(STAGING_DIR, "t")
    assert os.listdir(staging) == []
    assert os.stat(zone.path(partition_relpath("t", HOUR))).st_ino != old_inode


def test_a_partition_is_replaced_where_no_second_name_can_be_made(local_storage, monkeypatch):
    def no_links(*_args, **_kwargs):
        raise OSError(errno.EPERM, "links not supported")

    zone = local_storage.warehouse()
    write_partition(zone, "t", HOUR, SCHEMA, _batches([1]))
    monkeypatch.setattr(os, "link", no_links)
    write_partition(zone, "t", HOUR, SCHEMA, _batches([2]))
    wait_released()
    assert _published(zone) == [2]
    assert os.listdir(zone.path(STAGING_DIR, "t")) == []
