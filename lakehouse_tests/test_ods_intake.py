"""Bad raw files: junk skipped, unreadable or mis-schemad files quarantined, the rest lands."""

from __future__ import annotations

import json
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.defs.checks import NO_QUARANTINED_FILES_CHECK
from lakehouse.defs.ods.footers import check_footer, schema_problems
from lakehouse.defs.ods.intake import RowCounts, junk_reason, read_rows
from lakehouse.tables import ADS_TABLE, ODS_SCHEMA, ODS_TABLE
from lakehouse.warehouse.partition_store import partition_relpath
from lakehouse_tests.conftest import (
    HOUR,
    materialization_metadata,
    materialize_hour,
    ods_table,
    write_raw,
)
from lakehouse_tests.reference import _valid_utf8

GOOD = [
    {"vin": "VIN001", "device_id": "D1", "report_time": "2025-09-17 23:00:00",
     "lng": 120.0, "lat": 30.0, "speed": 10.0, "raw_payload": "p"},
    {"vin": "VIN001", "device_id": "D1", "report_time": "2025-09-17 23:00:10",
     "lng": 120.01, "lat": 30.0, "speed": 20.0, "raw_payload": "p"},
]  # fmt: skip
MORE = [
    {"vin": "VIN002", "device_id": "D2", "report_time": "2025-09-17 23:00:00",
     "lng": 121.0, "lat": 31.0, "speed": 30.0, "raw_payload": "q"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "size", "reason"),
    [
        (".DS_Store", 6148, "hidden/system file"),
        ("_SUCCESS", 0, "marker/metadata file"),
        ("part-1.parquet.tmp", 100, "temporary upload name"),
        (".part-3.parquet.inprogress", 100, "hidden/system file"),
        ("upload.parquet.crdownload", 100, "temporary upload name"),
        ("notes.csv", 100, "unknown extension"),
        ("empty.parquet", 0, "zero-byte object"),
        ("data.PARQUET", 10, None),
        ("data.orc", 10, None),
    ],
)
def test_junk_is_recognised_by_name_and_size(name, size, reason):
    assert junk_reason(name, size) == reason


def test_schema_problems_name_every_mismatch():
    bad = pa.schema([("vin", pa.int64()), ("lng", pa.string()), ("lat", pa.float32())])
    problems = schema_problems(bad)
    assert "column 'vin' is int64, expected string" in problems
    assert "column 'lng' is string, expected double" in problems
    assert "missing column 'report_time'" in problems
    assert not any("'lat'" in p for p in problems)  # float32 widens to double
    assert schema_problems(ODS_SCHEMA.append(pa.field("extra", pa.int8()))) == []


def _corrupt_data_pages(table: pa.Table) -> bytes:
    """A Parquet file whose footer is intact but whose column data is garbage."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    payload = bytearray(sink.getvalue().to_pybytes())
    footer_start = len(payload) - 8 - int.from_bytes(payload[-8:-4], "little")
    for i in range(4, footer_start):
        payload[i] = 0xA5
    return bytes(payload)


def test_bad_files_are_quarantined_and_good_files_land(local_storage, catalog):
    raw = local_storage.raw()
    write_raw(raw, "good.parquet", ods_table(GOOD))
    write_raw(raw, "good.orc", ods_table(MORE))
    hour_dir = f"{ODS_TABLE}/{HOUR.hive_path}"
    raw.write_bytes(f"{hour_dir}/.DS_Store", b"\x00\x00\x00\x01Bud1")
    raw.write_bytes(f"{hour_dir}/_SUCCESS", b"")
    raw.write_bytes(f"{hour_dir}/empty.parquet", b"")
    raw.write_bytes(f"{hour_dir}/upload.parquet.tmp", b"PAR1 partial")
    raw.write_bytes(f"{hour_dir}/corrupt.parquet", b"PAR1" + bytes(range(256)) * 4 + b"PAR1")
    raw.write_bytes(f"{hour_dir}/corrupt.orc", b"ORC" + b"\x07" * 300)
    raw.write_bytes(f"{hour_dir}/bad_pages.parquet", _corrupt_data_pages(ods_table(MORE * 50)))
    write_raw(raw, "wrong_schema.parquet", pa.table({"vin": ["X"], "latitude": [1.0]}))
    write_raw(raw, "wrong_schema.orc", pa.table({"vin": ["X"], "speed": ["fast"]}))

    result = materialize_hour(local_storage, catalog)
    assert result.success

    ods = materialization_metadata(result, ODS_TABLE)
    assert ods["rows_out"].value == 3
    assert ods["files_read"].value == 2
    assert ods["files_skipped"].value == 4
    assert ods["files_quarantined"].value == 5
    reasons = {q["file"].rsplit("/", 1)[1]: q["reason"] for q in ods["quarantined"].value}
    assert set(reasons) == {"corrupt.parquet", "corrupt.orc", "bad_pages.parquet",
                            "wrong_schema.parquet", "wrong_schema.orc"}  # fmt: skip
    assert reasons["wrong_schema.parquet"].startswith("schema mismatch: missing column")
    assert reasons["wrong_schema.orc"].startswith("schema mismatch: missing column 'device_id'")
    assert "column 'speed' is string, expected double" in reasons["wrong_schema.orc"]
    assert "footer" in reasons["corrupt.parquet"]
    assert reasons["bad_pages.parquet"].startswith("unreadable data")
    skipped = {s["file"].rsplit("/", 1)[1]: s["reason"] for s in ods["skipped"].value}
    assert skipped["empty.parquet"] == "zero-byte object"
    assert skipped["upload.parquet.tmp"] == "temporary upload name"

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks[NO_QUARANTINED_FILES_CHECK].passed

    warehouse = local_storage.warehouse()
    record = json.loads(warehouse.read_bytes(f"_intake/{ODS_TABLE}/{HOUR.hive_path}/intake.json"))
    accepted = sorted(a["file"].rsplit("/", 1)[1] for a in record["accepted"])
    assert accepted == ["good.orc", "good.parquet"]
    assert len(record["quarantined"]) == 5

    ads = pq.read_table(warehouse.path(partition_relpath(ADS_TABLE, HOUR))).to_pylist()
    assert [r["vin"] for r in ads] == ["VIN001", "VIN002"]
    # Raw files are never modified or removed.
    assert raw.exists(f"{hour_dir}/corrupt.parquet") and raw.exists(f"{hour_dir}/.DS_Store")


def _dictionary_index_past_the_end() -> bytes:
    """A Parquet file whose vin column is dictionary-encoded (3 values) and whose data page has
    an index of 3: the footer and every value are intact, only an index points nowhere."""
    rows = [{**GOOD[0], "vin": f"VIN{i % 3:03d}"} for i in range(4096)]
    sink = pa.BufferOutputStream()
    pq.write_table(ods_table(rows), sink, compression="none", write_statistics=False)
    clean = sink.getvalue().to_pybytes()
    vin = pq.read_metadata(pa.BufferReader(clean)).row_group(0).column(0)
    # One byte of 2-bit indices set to 0xff is four indices of 3. Which byte is packed indices,
    # not a run header, is found by trying: the file must read, with an index past the end.
    for offset in range(vin.data_page_offset + 64, vin.data_page_offset + 1024):
        payload = bytearray(clean)
        payload[offset] = 0xFF
        try:
            column = pq.read_table(pa.BufferReader(bytes(payload)), read_dictionary=["vin"])["vin"]
        except OSError:
            continue
        if max(pc.max(chunk.indices).as_py() for chunk in column.chunks) >= 3:
            return bytes(payload)
    raise AssertionError("no byte of the vin data page gave an index past the dictionary")


def test_a_dictionary_index_past_its_dictionary_quarantines_the_file(local_storage, catalog):
    """Dictionary-encoded strings are judged once per value and never decoded by the intake,
    so their indices are checked; a file with one out of range must not reach ODS."""
    raw = local_storage.raw()
    write_raw(raw, "good.parquet", ods_table(GOOD))
    raw.write_bytes(
        f"{ODS_TABLE}/{HOUR.hive_path}/bad_index.parquet", _dictionary_index_past_the_end()
    )

    result = materialize_hour(local_storage, catalog)
    assert result.success
    ods = materialization_metadata(result, ODS_TABLE)
    reasons = {q["file"].rsplit("/", 1)[1]: q["reason"] for q in ods["quarantined"].value}
    assert list(reasons) == ["bad_index.parquet"]
    assert "dictionary index (3) outside its 3 values" in reasons["bad_index.parquet"]
    assert ods["rows_out"].value == len(GOOD)
    published = pq.read_table(local_storage.warehouse().path(partition_relpath(ODS_TABLE, HOUR)))
    assert published.num_rows == len(GOOD)


def test_compatible_types_are_widened(local_storage, catalog):
    table = (
        ods_table(GOOD)
        .set_column(5, "speed", pa.array([10, 20], pa.int32()))
        .append_column("firmware", pa.array(["1.2", "1.2"]))
    )
    write_raw(local_storage.raw(), "ints.parquet", table)
    result = materialize_hour(local_storage, catalog)
    assert result.success
    ods = pq.read_table(local_storage.warehouse().path(partition_relpath(ODS_TABLE, HOUR)))
    assert ods.schema.equals(ODS_SCHEMA)
    assert ods.column("speed").to_pylist() == [10.0, 20.0]


def test_an_hour_without_files_publishes_empty_layers(local_storage, catalog):
    result = materialize_hour(local_storage, catalog)
    assert result.success
    ods = materialization_metadata(result, ODS_TABLE)
    assert (ods["rows_out"].value, ods["files_read"].value) == (0, 0)
    ads = pq.read_table(local_storage.warehouse().path(partition_relpath(ADS_TABLE, HOUR)))
    assert ads.num_rows == 0


def test_raw_parquet_in_the_ods_schema_joins_byte_for_byte_the_rest_is_converted(
    local_storage, catalog
):
    raw = local_storage.raw()
    oversized = {**MORE[0], "vin": "VIN003", "device_id": "D" * 500}  # dropped at intake
    dictionary_vin = pa.schema(
        [pa.field("vin", pa.dictionary(pa.int32(), pa.string())), *list(ODS_SCHEMA)[1:]]
    )
    files = {
        "a_plain.parquet": ods_table(GOOD),
        "b_orc.orc": ods_table(MORE),
        "c_dropped_row.parquet": ods_table([*MORE, oversized]),
        "d_dictionary.parquet": ods_table(GOOD).cast(dictionary_vin),
        "e_plain.parquet": ods_table(MORE),
    }
    for name, table in files.items():
        write_raw(raw, name, table)

    result = materialize_hour(local_storage, catalog)
    assert result.success
    ods = materialization_metadata(result, ODS_TABLE)
    assert (ods["files_verbatim"].value, ods["files_converted"].value) == (2, 3)
    assert ods["dropped_oversized_string"].value == 1
    record = json.loads(
        local_storage.warehouse().read_bytes(f"_intake/{ODS_TABLE}/{HOUR.hive_path}/intake.json")
    )
    stored = {entry["key"].rsplit("/", 1)[1]: entry["stored"] for entry in record["accepted"]}
    assert stored == {"a_plain.parquet": "verbatim", "b_orc.orc": "converted",
                      "c_dropped_row.parquet": "converted", "d_dictionary.parquet": "converted",
                      "e_plain.parquet": "verbatim"}  # fmt: skip

    published = local_storage.warehouse().path(partition_relpath(ODS_TABLE, HOUR))
    table = pq.read_table(published)
    assert table.schema.equals(ODS_SCHEMA)
    # Every accepted row, in the raw files' order, nothing else.
    assert table.to_pylist() == [*ods_table(GOOD).to_pylist(), *ods_table(MORE).to_pylist(),
                                 *ods_table(MORE).to_pylist(), *ods_table(GOOD).to_pylist(),
                                 *ods_table(MORE).to_pylist()]  # fmt: skip
    # The verbatim files' column chunks are in the partition as uploaded.
    with open(published, "rb") as joined:
        partition_bytes = joined.read()
    for name in ("a_plain.parquet", "e_plain.parquet"):
        uploaded = raw.read_bytes(f"{ODS_TABLE}/{HOUR.hive_path}/{name}")
        footer_start = len(uploaded) - 8 - int.from_bytes(uploaded[-8:-4], "little")
        assert uploaded[4:footer_start] in partition_bytes


# Strings a raw file may hold: short and valid, over the vin limit, invalid UTF-8, missing.
RAW_STRINGS = st.one_of(
    st.none(),
    st.sampled_from([b"VIN1", b"VIN2", b"V" * 64, b"V" * 65, b"VIN\xff", b"\xc3\x28", b""]),
    st.binary(max_size=6),
)


def _judged(path: str, batch_rows: int) -> tuple[list[dict], dict[str, int], tuple[str, ...]]:
    check = check_footer(path, "parquet")
    counts = RowCounts()
    rows = []
    for batch in read_rows(path, "parquet", replace(check, batch_rows=batch_rows), counts):
        rows += pa.Table.from_batches([batch]).cast(ODS_SCHEMA).to_pylist()
    return rows, dict(counts.dropped), check.dictionary_columns


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(vins=st.lists(RAW_STRINGS, min_size=1, max_size=30), batch_rows=st.integers(1, 7))
def test_dictionary_encoded_strings_are_judged_like_plain_ones(tmp_path, vins, batch_rows):
    """A dictionary's values are judged once and mapped to rows; a batch may hold values of its
    dictionary that none of its rows use (row groups of 4, batches of 1-7 rows)."""
    strings = pa.array(vins, pa.binary()).view(pa.string())
    table = ods_table([{**GOOD[0], "speed": float(i)} for i in range(len(vins))])
    table = table.set_column(0, "vin", strings).set_column(1, "device_id", strings)
    judged = {}
    for encoded in (True, False):
        path = str(tmp_path / f"dictionary_{encoded}.parquet")
        pq.write_table(table, path, use_dictionary=encoded, row_group_size=4)
        judged[encoded] = _judged(path, batch_rows)
    (dict_rows, dict_drops, dict_columns), (plain_rows, plain_drops, plain_columns) = (
        judged[True],
        judged[False],
    )
    assert {"vin", "device_id"} <= set(dict_columns) and plain_columns == ()
    assert (dict_rows, dict_drops) == (plain_rows, plain_drops)
    # Independent reference: a row stays if its vin is missing or valid UTF-8 of <= 64 bytes.
    kept = [v for v in vins if v is None or (_valid_utf8(v) and len(v) <= 64)]
    assert [row["vin"] for row in dict_rows] == [None if v is None else v.decode() for v in kept]
    bad = sum(1 for v in vins if v is not None and not _valid_utf8(v))
    over = sum(1 for v in vins if v is not None and _valid_utf8(v) and len(v) > 64)
    assert dict_drops == {k: n for k, n in (("invalid_utf8", bad), ("oversized_string", over)) if n}


def test_a_column_that_fell_back_to_plain_values_is_not_read_as_a_dictionary(tmp_path):
    """Arrow would hash every plain value into a dictionary again: slower than reading them."""
    rows = [{**GOOD[0], "raw_payload": f"payload-{i:07d}"} for i in range(300_000)]
    path = str(tmp_path / "unique_payloads.parquet")
    pq.write_table(ods_table(rows), path, dictionary_pagesize_limit=64 << 10)
    columns = check_footer(path, "parquet").dictionary_columns
    assert "raw_payload" not in columns and "vin" in columns
