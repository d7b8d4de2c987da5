"""Enforce a pandera schema on data as it is written, one bounded chunk at a time.

Validation runs on each row group before it reaches storage, so a violation stops the write
and the previously published partition stays in place. Chunks are Arrow tables of about a
million rows, validated by pandera's pyarrow backend without a pandas copy, which keeps memory
flat and validation a small share of an hour's work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import pandera.errors
import pandera.pyarrow as pa
import pyarrow

MAX_FAILURE_CASES = 20
HEAD_ROWS = 5
FAILURE_COLUMNS = ("column", "check", "failure_case")


class SchemaViolation(ValueError):
    """Rows that break a layer schema; ``failure_cases`` shows the first offenders."""

    def __init__(self, table: str, failure_cases: pd.DataFrame, total_failures: int):
        self.table = table
        self.failure_cases = failure_cases
        self.total_failures = total_failures
        checks = sorted({str(c) for c in failure_cases.get("check", [])})
        super().__init__(
            f"{table}: {total_failures} schema failure(s) ({', '.join(checks)}); "
            f"first cases:\n{failure_cases.to_string(index=False)}"
        )


@dataclass
class ChunkedSchemaValidator:
    """Callable chunk validator for the partition writer; remembers how much it checked."""

    table: str
    schema: type[pa.DataFrameModel]
    rows_validated: int = 0
    chunks_validated: int = 0
    seconds: float = 0.0
    head: pyarrow.Table | None = None  # the first rows seen, kept for the run's preview

    def __call__(self, chunk: pyarrow.Table) -> None:
        started = time.perf_counter()
        try:
            self.schema.validate(chunk, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            cases = failure_cases_table(exc.failure_cases)
            shown = cases.select([c for c in FAILURE_COLUMNS if c in cases.column_names])
            raise SchemaViolation(
                self.table, shown.slice(0, MAX_FAILURE_CASES).to_pandas(), cases.num_rows
            ) from None
        finally:
            self.seconds += time.perf_counter() - started
        self.rows_validated += chunk.num_rows
        self.chunks_validated += 1
        if self.head is None:
            self.head = chunk.slice(0, HEAD_ROWS)


def combined(validators: list[ChunkedSchemaValidator]) -> ChunkedSchemaValidator:
    """One account of validators that checked parts of a partition (in the parts' order)."""
    first = validators[0]
    total = ChunkedSchemaValidator(first.table, first.schema)
    for part in validators:
        total.rows_validated += part.rows_validated
        total.chunks_validated += part.chunks_validated
        total.seconds += part.seconds
        if total.head is None:
            total.head = part.head
    return total


def failure_cases_table(cases: object) -> pyarrow.Table:
    """pandera's failure cases as Arrow: its pyarrow backend returns them as a pyarrow, polars
    (when polars is installed) or pandas frame."""
    if isinstance(cases, pyarrow.Table):
        return cases
    if hasattr(cases, "to_arrow"):  # polars
        return cases.to_arrow()
    return pyarrow.Table.from_pandas(pd.DataFrame(cases), preserve_index=False)
