"""Running the layers on both engines and comparing what they published."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq

TOLERANCE = 1e-9


def canonical_rows(rows: list[dict]) -> list[tuple]:
    """Rows as sortable tuples of each value's repr: NaN equals NaN, -0.0 is not 0.0."""
    return sorted(tuple(repr(v) for v in row.values()) for row in rows)


def assert_rows_close(left: list[dict], right: list[dict], what: str) -> None:
    """Same rows in the same order; floats within ``TOLERANCE`` (relative or absolute)."""
    assert len(left) == len(right), f"{what}: {len(left)} rows vs {len(right)}"
    for index, (a, b) in enumerate(zip(left, right, strict=True)):
        assert a.keys() == b.keys(), what
        for column, x in a.items():
            y = b[column]
            if isinstance(x, float) and isinstance(y, float):
                same = (math.isnan(x) and math.isnan(y)) or math.isclose(
                    x, y, rel_tol=TOLERANCE, abs_tol=TOLERANCE
                )
                assert same, f"{what} row {index} {column}: {x!r} vs {y!r}"
            else:
                assert x == y, f"{what} row {index} {column}: {x!r} vs {y!r}"


def published_files(warehouse: Path) -> dict[str, Path]:
    """Every published file under the warehouse, by its path relative to it."""
    return {
        str(p.relative_to(warehouse)): p
        for p in sorted(warehouse.rglob("*"))
        if p.is_file() and "_staging" not in p.parts
    }


def parquet_shape(path: Path) -> tuple:
    """What a reader sees of a file besides its values: schema, row groups, writer."""
    meta = pq.read_metadata(path)
    return (pq.read_schema(path), meta.num_rows, meta.num_row_groups, meta.created_by)
