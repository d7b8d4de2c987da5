"""What the intake's string limits allow a file to declare, before any of its data is decoded.

Plain arithmetic on footer figures, shared by the Parquet check (in process) and the ORC check
(in a child process that must start fast, so this module imports no pyarrow).
"""

from __future__ import annotations

# What a column chunk may declare beyond its values (length prefixes, page headers, levels).
PER_VALUE_OVERHEAD, PER_CHUNK_OVERHEAD = 16, 1 << 20
MAX_BATCH_ROWS = 256 * 1024
TARGET_BATCH_BYTES = 64 << 20


class FileFault(Exception):
    """A raw file whose own bytes cannot be used; ``reason`` goes into the intake record."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_declared_size(column: str, declared: int, values: int, limit: int) -> None:
    """Refuse a column whose declared bytes cannot all be values within the length limit."""
    allowed = values * (limit + PER_VALUE_OVERHEAD) + PER_CHUNK_OVERHEAD
    if declared > allowed:
        raise FileFault(
            f"column {column!r} declares {declared:,} bytes for {values:,} values, more than "
            f"values of at most {limit:,} bytes can take: refused before decompressing"
        )


def batch_rows(bytes_per_row: float) -> int:
    """Rows per decoded batch that keep a batch near ``TARGET_BATCH_BYTES``."""
    return int(max(1024, min(MAX_BATCH_ROWS, TARGET_BATCH_BYTES // max(bytes_per_row, 1.0))))


def one_line(exc: BaseException) -> str:
    """A short, single-line description of a parse error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
