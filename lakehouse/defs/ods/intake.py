"""Which raw objects of an arrival hour are data, junk or unusable, and how the data is read.

Nothing here modifies the raw zone. Three verdicts, each with a reason:

- *skipped*: not a data file at all (hidden/system names, markers, temporary uploads, unknown
  extensions, zero bytes, objects in nested folders);
- *quarantined*: a Parquet/ORC file whose own bytes are unusable: unreadable footer or data,
  a schema that does not fit ODS, or string columns whose declared sizes cannot hold values
  within the intake bounds (a decompression bomb is refused before it is decompressed);
- *accepted*: streamed in the ODS schema; single rows that break the intake bounds (invalid
  UTF-8, a string longer than its limit) are dropped and counted, the rest of the file lands.

Files are judged on local bytes only (see ``Zone.fetch_local``): an error while fetching is the
store's (retried, then the step fails), an error while parsing is the file's.
"""

from __future__ import annotations

import io
import posixpath
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.orc as orc
import pyarrow.parquet as pq

from lakehouse.partitions import HourPartition
from lakehouse.resources.zones import ObjectInfo, Zone
from lakehouse.tables import ODS_SCHEMA, ODS_TABLE

DATA_FORMATS = {".parquet": "parquet", ".orc": "orc"}
TEMP_UPLOAD_SUFFIXES = (".tmp", ".temp", ".part", ".inprogress", ".crdownload", ".filepart")
# Longest value, in UTF-8 bytes, that intake accepts per string column. A VIN is 17 characters
# in ISO 3779; 64 bytes leaves room for fleet-specific ids and still is no VIN past it.
STRING_LIMITS: Mapping[str, int] = {
    "vin": 64,
    "device_id": 128,
    "report_time": 64,
    "raw_payload": 64 * 1024,
}
# What a column chunk may declare beyond its values (length prefixes, page headers, levels).
PER_VALUE_OVERHEAD, PER_CHUNK_OVERHEAD = 16, 1 << 20
MAX_BATCH_ROWS = 256 * 1024
TARGET_BATCH_BYTES = 64 << 20
FOOTER_TAIL_BYTES = 256 * 1024
MAX_ORC_TAIL_BYTES = 16 << 20
ROW_DROP_REASONS = ("invalid_utf8", "oversized_string")


class FileFault(Exception):
    """A raw file whose own bytes cannot be used; ``reason`` goes into the intake record."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RawFile:
    """A raw object that looks like data: a Parquet or ORC file with bytes in it."""

    info: ObjectInfo
    format: str

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def name(self) -> str:
        return posixpath.basename(self.info.key)


@dataclass(frozen=True)
class RejectedFile:
    """A raw object left out of the hour, and why."""

    key: str
    reason: str


@dataclass(frozen=True)
class FooterCheck:
    """What a file's footer promises: rows, and the reading plan that keeps memory bounded."""

    rows: int
    batch_rows: int


@dataclass
class RowCounts:
    """Rows read from one file and rows dropped there, per reason."""

    read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def kept(self) -> int:
        return self.read - sum(self.dropped.values())


def hour_dir(partition: HourPartition) -> str:
    """Raw-zone folder of an arrival hour."""
    return posixpath.join(ODS_TABLE, partition.hive_path)


def junk_reason(name: str, size: int | None) -> str | None:
    """Why an object is not a data file at all, or None if it may be one."""
    lowered = name.lower()
    if name.startswith("."):
        return "hidden/system file"
    if name.startswith("_"):
        return "marker/metadata file"
    if lowered.endswith(TEMP_UPLOAD_SUFFIXES) or lowered.startswith(("~", "#")):
        return "temporary upload name"
    if posixpath.splitext(lowered)[1] not in DATA_FORMATS:
        return "unknown extension"
    if not size:
        return "zero-byte object"
    return None


def layout_reason(relative: str) -> str | None:
    """Why a key below the hour folder is outside the ``<hour>/<file>`` layout, if it is."""
    if "/" in relative or "\\" in relative:
        return "in a nested folder: only files directly in the hour folder belong to the hour"
    return None


def list_hour(zone: Zone, partition: HourPartition) -> tuple[list[RawFile], list[RejectedFile]]:
    """Every object below the hour's folder: data candidates, and skipped objects with reasons."""
    folder = hour_dir(partition)
    candidates: list[RawFile] = []
    skipped: list[RejectedFile] = []
    for info in zone.list_objects(folder):
        relative = info.key[len(folder) + 1 :]
        reason = layout_reason(relative) or junk_reason(posixpath.basename(relative), info.size)
        if reason:
            skipped.append(RejectedFile(info.key, reason))
        else:
            extension = posixpath.splitext(relative.lower())[1]
            candidates.append(RawFile(info, DATA_FORMATS[extension]))
    return candidates, skipped


def _value_type(actual: pa.DataType) -> pa.DataType:
    return actual.value_type if pa.types.is_dictionary(actual) else actual


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    actual = _value_type(actual)
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


def check_footer(source: str | bytes, fmt: str) -> FooterCheck:
    """Judge a file by its footer alone; raise :class:`FileFault` with the reason if unusable.

    ``source`` is a local path, or the file's last bytes (enough for the footer).
    """
    try:
        if fmt == "parquet":
            return _check_parquet(pq.read_metadata(_readable(source)))
        return _check_orc(source)
    except FileFault:
        raise
    except Exception as exc:  # any parse failure of local bytes is the file's own
        raise FileFault(f"unreadable {fmt} footer: {_one_line(exc)}") from None


def footer_bytes(zone: Zone, raw_file: RawFile) -> bytes:
    """The file's last bytes, enough to parse its footer, read without its data (discovery)."""
    info = raw_file.info
    tail = zone.read_tail(info, min(FOOTER_TAIL_BYTES, info.size))
    if raw_file.format == "parquet" and len(tail) >= 8 and tail[-4:] == b"PAR1":
        needed = int.from_bytes(tail[-8:-4], "little") + 8
        if len(tail) < needed <= info.size:
            tail = zone.read_tail(info, needed)
    elif raw_file.format == "orc" and len(tail) < info.size:
        try:
            orc.ORCFile(pa.BufferReader(tail))
        except Exception:  # a tail longer than the first guess: take up to MAX_ORC_TAIL
            tail = zone.read_tail(info, min(info.size, MAX_ORC_TAIL_BYTES))
    return tail


def _readable(source: str | bytes) -> str | pa.BufferReader:
    return pa.BufferReader(source) if isinstance(source, bytes) else source


def _check_parquet(meta: pq.FileMetaData) -> FooterCheck:
    schema = meta.schema.to_arrow_schema()
    _raise_schema_problems(schema)
    names = {name: schema.get_field_index(name) for name in ODS_SCHEMA.names}
    widest_row = 1.0
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        group_bytes = 0
        for chunk_index in range(row_group.num_columns):
            chunk = row_group.column(chunk_index)
            column = chunk.path_in_schema
            if column not in names:
                continue
            group_bytes += chunk.total_uncompressed_size
            limit = STRING_LIMITS.get(column)
            if limit is not None:
                _check_declared_size(column, chunk.total_uncompressed_size, chunk.num_values, limit)
        if row_group.num_rows:
            widest_row = max(widest_row, group_bytes / row_group.num_rows)
    return FooterCheck(meta.num_rows, _batch_rows(widest_row))


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
            rows = 0
            string_bytes = 0
            for name, column_id in columns.items():
                stats = stripe[column_id].statistics
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


def read_rows(
    local_path: str, fmt: str, check: FooterCheck, counts: RowCounts
) -> Iterator[pa.RecordBatch]:
    """Stream a local file's rows in the ODS schema, dropping (and counting) rows out of bounds.

    Raises :class:`FileFault` if the data cannot be decoded.
    """
    try:
        for batch in _decoded_batches(local_path, fmt, check.batch_rows):
            counts.read += batch.num_rows
            yield _within_bounds(_to_ods(batch), counts)
    except FileFault:
        raise
    except Exception as exc:  # a decode failure of local bytes is the file's own
        raise FileFault(f"unreadable data: {_one_line(exc)}") from None


def _decoded_batches(local_path: str, fmt: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if fmt == "parquet":
        parquet = pq.ParquetFile(local_path)
        present = [n for n in ODS_SCHEMA.names if n in parquet.schema_arrow.names]
        yield from parquet.iter_batches(batch_size=batch_rows, columns=present, use_threads=True)
        return
    reader = orc.ORCFile(local_path)
    present = [n for n in ODS_SCHEMA.names if n in reader.schema.names]
    for stripe in range(reader.nstripes):
        batch = reader.read_stripe(stripe, columns=present)
        for offset in range(0, batch.num_rows, batch_rows):
            yield batch.slice(offset, batch_rows)


def _to_ods(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch's ODS columns, decoded from dictionaries and widened to the ODS types."""
    columns = []
    for expected in ODS_SCHEMA:
        index = batch.schema.get_field_index(expected.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, expected.type))
            continue
        column = batch.column(index)
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        columns.append(column if column.type == expected.type else column.cast(expected.type))
    return pa.RecordBatch.from_arrays(columns, schema=ODS_SCHEMA)


def _within_bounds(batch: pa.RecordBatch, counts: RowCounts) -> pa.RecordBatch:
    """Drop rows with a string that is not valid UTF-8 or longer than its column's limit."""
    bad_utf8 = _invalid_utf8_rows(batch)
    too_long = None
    for name, limit in STRING_LIMITS.items():
        over = pc.greater(pc.fill_null(pc.binary_length(batch.column(name)), 0), limit)
        too_long = over if too_long is None else pc.or_(too_long, over)
    if bad_utf8 is None and not pc.any(too_long).as_py():
        return batch
    bad_utf8 = bad_utf8 if bad_utf8 is not None else pa.array([False] * batch.num_rows)
    counts.dropped["invalid_utf8"] += pc.sum(bad_utf8).as_py() or 0
    oversized_only = pc.and_(too_long, pc.invert(bad_utf8))
    counts.dropped["oversized_string"] += pc.sum(oversized_only).as_py() or 0
    return batch.filter(pc.invert(pc.or_(bad_utf8, too_long)))


def _invalid_utf8_rows(batch: pa.RecordBatch) -> pa.BooleanArray | None:
    """Rows holding invalid UTF-8 in any string column, or None when all are valid (fast path)."""
    bad = None
    for name in STRING_LIMITS:
        column = batch.column(name)
        try:
            column.cast(pa.binary()).cast(pa.string())  # Arrow's vectorised UTF-8 validation
            continue
        except pa.ArrowInvalid:
            pass
        mask = pa.array([_is_bad_utf8(v) for v in column.cast(pa.binary()).to_pylist()])
        bad = mask if bad is None else pc.or_(bad, mask)
    return bad


def _is_bad_utf8(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
