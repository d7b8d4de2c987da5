"""Judge a raw file by its footer alone, within a memory bound, before any data is decoded.

The footer says whether a file fits ODS (columns and types) and how many bytes each string
column declares; a column declaring more than its values can hold within the intake length
limits is a decompression bomb and is refused before it is decompressed.

Parquet footers are small and hold sizes, so they are read in process. ORC footers hold every
column's full min and max strings (a 100 MiB VIN is 100 MiB of footer once decompressed) and are
only parsed whole, so ORC footers are read in a short-lived child process with a capped data
segment: a hostile footer makes the child fail, not the run.

This module imports only pyarrow and the contract constants, so the child starts in a blink.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq

from lakehouse.rules import STRING_LIMITS
from lakehouse.tables import ODS_SCHEMA

# What a column chunk may declare beyond its values (length prefixes, page headers, levels).
PER_VALUE_OVERHEAD, PER_CHUNK_OVERHEAD = 16, 1 << 20
# A column chunk read as a dictionary: a dictionary page, and no more than this per value beyond
# the page (dictionary indices take 1-4 bytes; a chunk that fell back to plain values, which
# Arrow would have to hash into a dictionary again, takes more).
DICTIONARY_BYTES_PER_VALUE, DICTIONARY_PAGE_BYTES = 4, 1 << 20
MAX_BATCH_ROWS = 256 * 1024
TARGET_BATCH_BYTES = 64 << 20
# Memory an ORC footer may take to parse; legitimate footers need a few MB at most.
ORC_FOOTER_MEMORY = 512 << 20
ORC_CHECK_TIMEOUT_S = 120


class FileFault(Exception):
    """A raw file whose own bytes cannot be used; ``reason`` goes into the intake record."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FooterCheck:
    """What a file's footer promises: rows, and the batch size that keeps decoding bounded.

    ``dictionary_columns``: string columns the file stores dictionary-encoded throughout, which
    are read as dictionaries (their distinct values decoded and judged once, not every row's).
    """

    rows: int
    batch_rows: int
    dictionary_columns: tuple[str, ...] = ()


def schema_problems(schema: pa.Schema) -> list[str]:
    """Ways a file's schema does not fit ODS; extra columns are fine and ignored."""
    problems = []
    for expected in ODS_SCHEMA:
        index = schema.get_field_index(expected.name)
        if index < 0:
            problems.append(f"missing column {expected.name!r}")
            continue
        actual = schema.field(index).type
        if not _castable(actual, expected.type):
            problems.append(f"column {expected.name!r} is {actual}, expected {expected.type}")
    return problems


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_dictionary(actual):  # e.g. pandas categories: the values are what count
        actual = actual.value_type
    if pa.types.is_null(actual):
        return True
    if pa.types.is_string(expected):
        return (
            pa.types.is_string(actual)
            or pa.types.is_large_string(actual)
            or pa.types.is_string_view(actual)
        )
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual) or pa.types.is_integer(actual)
    return actual == expected


def check_footers(sources: Mapping[str, str | bytes], formats: Mapping[str, str]) -> dict:
    """Verdict per name: a :class:`FooterCheck` or a :class:`FileFault`.

    ``sources`` maps a name to a local path or to the file's last bytes; Parquet is judged in
    process, all ORC files together in one memory-capped child.
    """
    verdicts: dict[str, FooterCheck | FileFault] = {}
    orc_sources = {}
    for name, source in sources.items():
        if formats[name] == "parquet":
            verdicts[name] = _guarded("parquet", lambda s=source: _check_parquet(s))
        else:
            orc_sources[name] = source
    if orc_sources:
        verdicts.update(_check_orc_isolated(orc_sources))
    return verdicts


def check_footer(source: str | bytes, fmt: str) -> FooterCheck:
    """Judge one file; raise :class:`FileFault` with the reason if it is unusable."""
    verdict = check_footers({"file": source}, {"file": fmt})["file"]
    if isinstance(verdict, FileFault):
        raise verdict
    return verdict


def _guarded(fmt: str, check) -> FooterCheck | FileFault:
    try:
        return check()
    except FileFault as fault:
        return fault
    except Exception as exc:  # any parse failure of local bytes is the file's own
        return FileFault(f"unreadable {fmt} footer: {one_line(exc)}")


def _readable(source: str | bytes) -> str | pa.BufferReader:
    return pa.BufferReader(source) if isinstance(source, bytes) else source


def _check_parquet(source: str | bytes) -> FooterCheck:
    meta = pq.read_metadata(_readable(source))
    schema = meta.schema.to_arrow_schema()
    _raise_schema_problems(schema)
    widest_row = 1.0
    dictionary = {name for name in STRING_LIMITS if name in schema.names}
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        group_bytes = 0
        for chunk_index in range(row_group.num_columns):
            chunk = row_group.column(chunk_index)
            column = chunk.path_in_schema
            if column not in ODS_SCHEMA.names:
                continue
            group_bytes += chunk.total_uncompressed_size
            if column in STRING_LIMITS:
                _check_declared_size(
                    column, chunk.total_uncompressed_size, chunk.num_values, STRING_LIMITS[column]
                )
                if not _dictionary_encoded(chunk):
                    dictionary.discard(column)
        if row_group.num_rows:
            widest_row = max(widest_row, group_bytes / row_group.num_rows)
    columns = tuple(name for name in ODS_SCHEMA.names if name in dictionary)
    return FooterCheck(meta.num_rows, _batch_rows(widest_row), columns)


def _dictionary_encoded(chunk: pq.ColumnChunkMetaData) -> bool:
    """Whether a column chunk is stored as a dictionary page and indices into it."""
    allowed = chunk.num_values * DICTIONARY_BYTES_PER_VALUE + DICTIONARY_PAGE_BYTES
    return chunk.has_dictionary_page and chunk.total_uncompressed_size <= allowed


def _check_orc(source: str | bytes) -> FooterCheck:
    import pyorc  # ORC stripe statistics (declared string sizes); pyarrow does not expose them

    reader = orc.ORCFile(_readable(source))
    _raise_schema_problems(reader.schema)
    handle = open(source, "rb") if isinstance(source, str) else io.BytesIO(source)  # noqa: SIM115
    with handle:
        stats_reader = pyorc.Reader(handle)
        columns = {
            name: stats_reader.schema.find_column_id(name)
            for name in STRING_LIMITS
            if name in reader.schema.names
        }
        widest_row = 1.0
        for stripe_index in range(stats_reader.num_of_stripes):
            stripe = stats_reader.read_stripe(stripe_index)
            rows = string_bytes = 0
            for name, column_id in columns.items():
                try:
                    stats = stripe[column_id].statistics
                except UnicodeDecodeError:
                    # This stripe's min or max of the column is not UTF-8, so its declared size
                    # cannot be read, and an unbounded stripe is never decoded.
                    raise FileFault(
                        f"ORC statistics of column {name!r} are not valid UTF-8: its size "
                        "cannot be bounded before decoding"
                    ) from None
                values, declared = stats.get("number_of_values", 0), stats.get("total_length", 0)
                rows = max(rows, values)
                string_bytes += declared
                _check_declared_size(name, declared, values, STRING_LIMITS[name])
            if rows:
                widest_row = max(widest_row, string_bytes / rows + 8 * 3)
    return FooterCheck(reader.nrows, _batch_rows(widest_row))


def _raise_schema_problems(schema: pa.Schema) -> None:
    problems = schema_problems(schema)
    if problems:
        raise FileFault("schema mismatch: " + "; ".join(problems))


def _check_declared_size(column: str, declared: int, values: int, limit: int) -> None:
    """Refuse a column whose declared bytes cannot all be values within the length limit."""
    allowed = values * (limit + PER_VALUE_OVERHEAD) + PER_CHUNK_OVERHEAD
    if declared > allowed:
        raise FileFault(
            f"column {column!r} declares {declared:,} bytes for {values:,} values, more than "
            f"values of at most {limit:,} bytes can take: refused before decompressing"
        )


def _batch_rows(bytes_per_row: float) -> int:
    return int(max(1024, min(MAX_BATCH_ROWS, TARGET_BATCH_BYTES // max(bytes_per_row, 1.0))))


def _check_orc_isolated(sources: Mapping[str, str | bytes]) -> dict[str, FooterCheck | FileFault]:
    """Run :func:`_check_orc` on every source in one child process with capped memory."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lakehouse-orc-") as folder:
        paths = {}
        for index, (name, source) in enumerate(sources.items()):
            if isinstance(source, bytes):
                path = os.path.join(folder, f"{index}.orc")
                with open(path, "wb") as out:
                    out.write(source)
                paths[name] = path
            else:
                paths[name] = source
        try:
            done = subprocess.run(
                [sys.executable, "-m", __name__, *paths.values()],
                capture_output=True,
                text=True,
                timeout=ORC_CHECK_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return {name: FileFault("ORC footer took too long to read") for name in sources}
    if done.returncode != 0:
        raise RuntimeError(f"the ORC footer checker failed: {done.stderr.strip()[-2000:]}")
    answers = json.loads(done.stdout)
    verdicts: dict[str, FooterCheck | FileFault] = {}
    for name, answer in zip(paths, answers, strict=True):
        if "fault" in answer:
            verdicts[name] = FileFault(answer["fault"])
        else:
            verdicts[name] = FooterCheck(answer["rows"], answer["batch_rows"])
    return verdicts


def _child(paths: Sequence[str]) -> list[dict]:
    """In the child: judge each ORC footer under the memory cap; never crash on one file."""
    resource.setrlimit(resource.RLIMIT_DATA, (ORC_FOOTER_MEMORY, ORC_FOOTER_MEMORY))
    answers = []
    for path in paths:
        try:
            check = _check_orc(path)
            answers.append({"rows": check.rows, "batch_rows": check.batch_rows})
        except FileFault as fault:
            answers.append({"fault": fault.reason})
        except MemoryError:
            answers.append({"fault": _too_big()})
        except Exception as exc:
            text = one_line(exc)
            memory = "memory" in text.lower() or "bad_alloc" in text
            answers.append({"fault": _too_big() if memory else f"unreadable orc footer: {text}"})
    return answers


def _too_big() -> str:
    return (
        f"its ORC footer needs more than {ORC_FOOTER_MEMORY >> 20} MiB to read (statistics of "
        "oversized strings): refused before decompressing its data"
    )


def one_line(exc: BaseException) -> str:
    """A short, single-line description of a parse error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1:])))
