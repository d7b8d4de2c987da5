"""Enforce a pandera schema on data as it is written, one bounded chunk at a time.

Validation runs on each row group before it reaches storage, so a violation stops the write
and the previously published partition stays in place. Chunks are Arrow tables of about a
million rows, validated by pandera's pyarrow backend without a pandas copy, which keeps memory
flat and validation a small share of an hour's work.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import pandas as pd
import pandera.errors
import pandera.pyarrow as pa
import pyarrow

from lakehouse.warehouse.partition_store import conformed

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
    # Arrow schemas of batches already validated by ``account`` (see there)
    _accounted: set[pyarrow.Schema] = field(default_factory=set, repr=False)

    def account(self, batch: pyarrow.RecordBatch, schema: pyarrow.Schema) -> None:
        """Validate ``batch`` as rows of the table's Arrow ``schema``, for data not written.

        When the pandera schema has no rule about values (:func:`rules_values`) and the batch's
        columns are the table's types, or dictionaries of them, pandera's verdict depends on the
        Arrow schema alone: the first batch of each Arrow schema is validated as its first rows
        (which also serve the preview), and later ones are only counted. Nothing is decoded or
        regrouped for a check that would not look at the values. Otherwise the batch is
        validated whole.
        """
        if batch.num_rows == 0:
            return  # as the partition writer skips them: nothing to validate or preview
        if not _schema_decides(self.schema, batch.schema, schema):
            self(conformed([batch], schema))
            return
        if batch.schema in self._accounted:
            self.rows_validated += batch.num_rows
            return
        sample = batch.slice(0, HEAD_ROWS)
        self(conformed([sample], schema))
        self.rows_validated += batch.num_rows - sample.num_rows
        self._accounted.add(batch.schema)

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


@functools.cache
def rules_values(schema: type[pa.DataFrameModel]) -> bool:
    """Whether validating with ``schema`` looks at values, not only at columns and types.

    A schema rules values through checks, parsers, uniqueness, coercion, defaults or a
    non-nullable column; one without any of these (ODS: every column typed and nullable)
    accepts or rejects a table by its Arrow schema.
    """
    frame = schema.to_schema()
    if frame.checks or frame.parsers or frame.unique or frame.coerce or frame.drop_invalid_rows:
        return True
    return any(
        column.checks
        or column.parsers
        or column.unique
        or column.coerce
        or column.default is not None
        or not column.nullable
        for column in frame.columns.values()
    )


def _schema_decides(
    model: type[pa.DataFrameModel], batch: pyarrow.Schema, table: pyarrow.Schema
) -> bool:
    """Whether every batch of Arrow schema ``batch`` gets the same verdict as a sample of it."""
    if rules_values(model) or any(not f.nullable for f in table):
        return False
    for expected in table:
        index = batch.get_field_index(expected.name)
        if index < 0:
            continue  # missing: the sample fails as the whole batch would
        actual = batch.field(index).type
        if actual != expected.type and not (
            pyarrow.types.is_dictionary(actual) and actual.value_type == expected.type
        ):
            return False  # a cast whose success may depend on values
    return True


def failure_cases_table(cases: object) -> pyarrow.Table:
    """pandera's failure cases as Arrow: its pyarrow backend returns them as a pyarrow, polars
    (when polars is installed) or pandas frame."""
    if isinstance(cases, pyarrow.Table):
        return cases
    if hasattr(cases, "to_arrow"):  # polars
        return cases.to_arrow()
    return pyarrow.Table.from_pandas(pd.DataFrame(cases), preserve_index=False)
