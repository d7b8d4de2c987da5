"""Enforce a pandera schema on data as it is written, one bounded chunk at a time.

Validation runs on each row group before it reaches storage, so a violation stops the write
and the previously published partition stays in place. Chunks are bounded (about a million
rows), which keeps memory flat for a large hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.errors
import pandera.pandas as pa
import pyarrow

MAX_FAILURE_CASES = 20


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
    _failures: list[pd.DataFrame] = field(default_factory=list, repr=False)

    def __call__(self, chunk: pyarrow.Table) -> None:
        frame = chunk.to_pandas()
        try:
            self.schema.validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            cases = exc.failure_cases
            raise SchemaViolation(
                self.table,
                cases.head(MAX_FAILURE_CASES)[
                    [c for c in ("column", "check", "failure_case", "index") if c in cases]
                ],
                len(cases),
            ) from None
        self.rows_validated += chunk.num_rows
        self.chunks_validated += 1
