"""Keyset pagination on DuckDB: identical rows, NULLs, NaN and both directions, page by page.

The page SQL and the cursors are the service's own (``lakehouse.service.query`` and
``pagination``), run against a real Parquet partition read by DuckDB as the server reads it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.service.engine import LOCAL_SCAN, open_confined
from lakehouse.service.pagination import BadCursor, decode, encode, next_cursor
from lakehouse.service.query import page_sql, sort_keys
from lakehouse.tables import ADS_SCHEMA, ADS_TABLE, DWD_SCHEMA, DWD_TABLE

NAN = float("nan")


@pytest.fixture
def masked_dwd(tmp_path: Path) -> list[str]:
    """DWD-shaped rows as a masked share holds them: many identical rows, NaN coordinates."""
    rows = []
    for i in range(23):
        vin = "V*******1" if i % 3 else "V*******2"
        rows += [
            {"vin": vin, "event_time": pa.scalar(1_700_000_000_000_000 + i % 4, pa.timestamp("us")),
             "lng": NAN if i % 5 == 0 else 120.0, "lat": None if i % 7 == 0 else 30.0,
             "speed": float(i % 2), "loc_valid": i % 5 != 0},
        ] * (1 + i % 4)  # fmt: skip
    table = pa.Table.from_pylist(
        [{**r, "event_time": r["event_time"].as_py()} for r in rows], schema=DWD_SCHEMA
    )
    files = []
    for hh in ("00", "01"):
        folder = tmp_path / DWD_TABLE / "dt=2025-09-17" / f"hh={hh}"
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "part-0.parquet", row_group_size=7)
        files.append(str(folder / "part-0.parquet"))
    return files


def _all_pages(con, files, table, order, limit, filters=None):
    keys = sort_keys(table, order)
    columns = [f.name for f in pq.read_schema(files[0])] + ["dt", "hh"]
    served, cursor = [], None
    for _ in range(10_000):
        sql, params = page_sql(
            LOCAL_SCAN[True], columns, keys, {c: f"f_{c}" for c in filters or {}}, cursor, limit
        )
        params.update({"files": files, **{f"f_{c}": v for c, v in (filters or {}).items()}})
        rows = con.execute(sql, params).fetchall()
        served += [r[: len(columns)] for r in rows[:limit]]
        text = next_cursor([r[len(columns) :] for r in rows], limit, cursor, "q")
        if text is None:
            return served
        cursor = decode(text, "q", [k.sql_type for k in keys])
    raise AssertionError("pagination does not end")


def _norm(rows):
    def value(v):
        return "NaN" if isinstance(v, float) and math.isnan(v) else str(v)

    return Counter(tuple(value(v) for v in row) for row in rows)


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 1000])
@pytest.mark.parametrize("order", [None, ("vin", True), ("lng", False), ("lat", True)])
def test_pages_return_every_row_once_even_with_identical_rows(masked_dwd, limit, order):
    con = open_confined([str(Path(masked_dwd[0]).parents[2])])
    everything = con.execute(f"SELECT * FROM {LOCAL_SCAN[True]}", {"files": masked_dwd}).fetchall()
    served = _all_pages(con, masked_dwd, DWD_TABLE, order, limit)
    assert _norm(served) == _norm(everything)
    if order is not None:
        position = [f.name for f in DWD_SCHEMA].index(order[0])
        values = [row[position] for row in served]
        present = [v for v in values if v is not None]
        assert values[len(present) :] == [None] * (len(values) - len(present))  # NULLs last
        assert present == sorted(present, key=_engine_order, reverse=order[1])


def _engine_order(value):
    """DuckDB's order of non-NULL values: NaN after every number."""
    if isinstance(value, float) and math.isnan(value):
        return (1, 0.0)
    return (0, value)


def test_a_filter_and_pages_agree(masked_dwd):
    con = open_confined([str(Path(masked_dwd[0]).parents[2])])
    served = _all_pages(con, masked_dwd, DWD_TABLE, None, 4, {"vin": "V*******2"})
    assert served and {row[0] for row in served} == {"V*******2"}
    assert not _all_pages(con, masked_dwd, DWD_TABLE, None, 4, {"vin": "VIN000002"})


def test_duckdb_alone_trusts_statistics_that_leave_nan_out(masked_dwd, tmp_path):
    """Why the service's databases do not prune by statistics (see engine.TRUST_NO_STATISTICS):
    if this starts failing, DuckDB reads pyarrow's NaN-free min/max correctly now."""
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"x": [120.0, NAN, 121.0]}), path)
    query = f"SELECT count(*) FROM '{path}' WHERE isnan(x) OR x > 121"
    assert duckdb.connect().execute(query).fetchall() == [(0,)]  # wrong, and silent
    assert open_confined([str(tmp_path)]).execute(query).fetchall() == [(1,)]


def test_cursors_are_checked_before_use():
    keys = sort_keys(ADS_TABLE)
    types = [k.sql_type for k in keys]
    good = encode(["2025-09-17", "23", "V*1", "2025-09-17 23", 1.0, NAN, 2.0], 3, "q")
    cursor = decode(good, "q", types)
    assert cursor.skip == 3 and math.isnan(cursor.values[5])
    with pytest.raises(BadCursor, match="another query"):
        decode(good, "other", types)
    for bad in (
        "",
        "%%%",
        "x" * 5000,
        encode(["2025-09-17"], 0, "q"),  # wrong arity
        encode(["2025-09-17", "23", 5, "2025-09-17 23", 1.0, 1.0, 2.0], 0, "q"),  # wrong type
        encode(["2025-09-17", "23", "v", "h", 1.0, 1.0, 2.0], -1, "q"),  # negative skip
    ):
        with pytest.raises(BadCursor):
            decode(bad, "q", types)
    assert len(ADS_SCHEMA) + 2 == len(keys)


def test_the_page_sql_binds_every_value():
    keys = sort_keys(ADS_TABLE, ("vin", True))
    hostile = "x'); DROP TABLE t; --"
    cursor = decode(
        encode([hostile, "d", "h", hostile, "s", 1.0, 2.0, 3.0], 0, "q"),
        "q",
        [k.sql_type for k in keys],
    )
    sql, params = page_sql("src", ["vin"], keys, {"vin": "f_vin"}, cursor, 10)
    assert hostile not in sql and "DROP" not in sql
    assert hostile in json.dumps(list(params.values()), default=str)
