"""Joining Parquet files without re-encoding: the rows of the parts, in order, readable by all."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.warehouse.parquet_concat import ConcatRefused, Layout, concat_parquet, joinable

SCHEMA = pa.schema([("vin", pa.string()), ("speed", pa.float64()), ("n", pa.int64())])

values = st.fixed_dictionaries({
    "vin": st.one_of(st.none(), st.text(max_size=12)),
    "speed": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    "n": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
})  # fmt: skip
part_options = st.fixed_dictionaries({
    "compression": st.sampled_from(["zstd", "snappy", "none", "gzip"]),
    "row_group_size": st.integers(1, 50),
    "write_page_index": st.booleans(),
    "use_dictionary": st.booleans(),
    "write_statistics": st.booleans(),
})  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(st.tuples(st.lists(values, max_size=60), part_options), min_size=1,
                      max_size=5))  # fmt: skip
def test_joined_file_holds_every_part_row_in_order(tmp_path, parts):
    paths, tables = [], []
    for i, (rows, options) in enumerate(parts):
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        path = str(tmp_path / f"part-{i}.parquet")
        pq.write_table(table, path, **options)
        paths.append(path)
        tables.append(table)
    out = str(tmp_path / "joined.parquet")
    expected = pa.concat_tables(tables)

    assert concat_parquet(paths, out) == expected.num_rows
    want = [_canonical(tuple(row.values())) for row in expected.to_pylist()]
    joined = pq.read_table(out)
    assert joined.schema.equals(SCHEMA)
    assert [_canonical(tuple(row.values())) for row in joined.to_pylist()] == want
    # An independent reader agrees, row for row and in order (floats compared by repr: NaN).
    got = duckdb.sql(f"SELECT vin, speed, n FROM read_parquet('{out}')").fetchall()
    assert [_canonical(row) for row in got] == want


def _canonical(row: tuple) -> tuple:
    return tuple(repr(v) if isinstance(v, float) else v for v in row)


def test_filters_by_statistics_and_page_index_still_find_every_row(tmp_path):
    first = pa.table({"n": list(range(0, 1000))})
    second = pa.table({"n": list(range(1000, 2000))})
    for name, table in (("a", first), ("b", second)):
        pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=100,
                       write_page_index=True, data_page_size=64)  # fmt: skip
    out = str(tmp_path / "joined.parquet")
    concat_parquet([str(tmp_path / "b.parquet"), str(tmp_path / "a.parquet")], out)
    for low, high in ((5, 17), (995, 1005), (1990, 2100)):
        duck = duckdb.sql(f"SELECT n FROM '{out}' WHERE n BETWEEN {low} AND {high} ORDER BY n")
        arrow = pq.read_table(out, filters=[("n", ">=", low), ("n", "<=", high)])
        wanted = list(range(low, min(high, 1999) + 1))
        assert [r[0] for r in duck.fetchall()] == wanted
        assert sorted(arrow.column("n").to_pylist()) == wanted


def _rewrite_footer(source: str, target: str, change) -> None:
    """A copy of ``source`` whose footer ``change`` edited."""
    from lakehouse.warehouse.parquet_concat import _footer

    footer, data_end = _footer(source)
    change(footer)
    encoded = bytes(footer.to_bytes())
    with open(source, "rb") as src, open(target, "wb") as out:
        out.write(src.read(data_end))
        out.write(encoded + struct.pack("<i", len(encoded)) + b"PAR1")


def test_parts_that_cannot_join_are_refused_with_the_reason(tmp_path):
    good = str(tmp_path / "good.parquet")
    pq.write_table(pa.table({"vin": ["V1"], "speed": [1.0]}), good)
    other_type = str(tmp_path / "other_type.parquet")
    pq.write_table(pa.table({"vin": ["V1"], "speed": [1]}), other_type)
    dictionary = str(tmp_path / "dictionary.parquet")
    pq.write_table(pa.table({"vin": pa.array(["V1"]).dictionary_encode(), "speed": [1.0]}),
                   dictionary)  # fmt: skip
    foreign = str(tmp_path / "foreign.parquet")
    _rewrite_footer(good, foreign, lambda f: setattr(f, "created_by", "parquet-mr version 1.6.0"))
    pointing_out = str(tmp_path / "pointing_out.parquet")  # a chunk's pages after the data
    _rewrite_footer(
        good, pointing_out, lambda f: setattr(f.row_groups[0].columns[1].meta_data,
                                              "data_page_offset", 10_000)
    )  # fmt: skip
    not_parquet = tmp_path / "not.parquet"
    not_parquet.write_bytes(b"PAR1" + b"\0" * 20)

    like = Layout.of(good)
    assert joinable(good, like) is None
    assert "Parquet schema" in joinable(other_type, like)
    assert "Arrow types" in joinable(dictionary, like)
    assert "not parquet-cpp-arrow" in joinable(foreign, like)
    assert "outside the file's data" in joinable(pointing_out, like)
    for bad in (other_type, dictionary, foreign, pointing_out):
        with pytest.raises(ConcatRefused):
            concat_parquet([good, bad], str(tmp_path / "out.parquet"))
    with pytest.raises(Exception, match=r"Parquet|footer"):
        concat_parquet([good, str(not_parquet)], str(tmp_path / "out.parquet"))
    with pytest.raises(ConcatRefused):
        concat_parquet([], str(tmp_path / "out.parquet"))


def test_without_an_in_kernel_copy_the_join_writes_the_same_bytes(tmp_path, monkeypatch):
    parts = []
    for i in range(3):
        parts.append(str(tmp_path / f"part-{i}.parquet"))
        pq.write_table(pa.table({"n": list(range(i * 5000, (i + 1) * 5000))}), parts[-1],
                       row_group_size=1000)  # fmt: skip
    in_kernel = str(tmp_path / "in_kernel.parquet")
    concat_parquet(parts, in_kernel)

    def refuse(*args, **kwargs):  # another OS, or the files on two filesystems
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    copied = str(tmp_path / "copied.parquet")
    concat_parquet(parts, copied)
    assert Path(copied).read_bytes() == Path(in_kernel).read_bytes()
    assert pq.read_table(copied).column("n").to_pylist() == list(range(15000))
