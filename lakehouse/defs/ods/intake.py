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

import posixpath
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.orc as orc
import pyarrow.parquet as pq

from lakehouse.defs.ods.footers import FileFault, FooterCheck, check_footer, check_footers, one_line
from lakehouse.partitions import HourPartition
from lakehouse.resources.zones import ObjectInfo, Zone
from lakehouse.rules import STRING_LIMITS
from lakehouse.tables import ODS_SCHEMA, ODS_TABLE

__all__ = [
    "FileFault",
    "FooterCheck",
    "RawFile",
    "RejectedFile",
    "RowCounts",
    "check_footer",
    "check_footers",
    "footer_bytes",
    "hour_dir",
    "junk_reason",
    "list_hour",
    "read_rows",
]

DATA_FORMATS = {".parquet": "parquet", ".orc": "orc"}
TEMP_UPLOAD_SUFFIXES = (".tmp", ".temp", ".part", ".inprogress", ".crdownload", ".filepart")
FOOTER_TAIL_BYTES = 256 * 1024
MAX_FOOTER_BYTES = 16 << 20
ROW_DROP_REASONS = ("invalid_utf8", "oversized_string")


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


def footer_bytes(zone: Zone, raw_file: RawFile) -> bytes:
    """The file's last bytes, enough to parse its footer, read without its data (discovery).

    Parquet says how long its footer is; ORC tails are read up to ``FOOTER_TAIL_BYTES``, which
    holds the footer of any ordinary upload (a longer one is reported unreadable by discovery,
    and judged on the whole file by the ODS run).
    """
    info = raw_file.info
    tail = zone.read_tail(info, min(FOOTER_TAIL_BYTES, info.size))
    if raw_file.format == "parquet" and len(tail) >= 8 and tail[-4:] == b"PAR1":
        needed = int.from_bytes(tail[-8:-4], "little") + 8
        if len(tail) < needed <= min(info.size, MAX_FOOTER_BYTES):
            tail = zone.read_tail(info, needed)
    return tail


def read_rows(
    local_path: str, fmt: str, check: FooterCheck, counts: RowCounts
) -> Iterator[pa.RecordBatch]:
    """Stream a local file's rows in the ODS schema, dropping (and counting) rows out of bounds.

    String columns the file stores as dictionaries stay dictionary-encoded (same values, ODS
    value type), so their distinct values are decoded and judged once. Raises
    :class:`FileFault` if the data cannot be decoded.
    """
    try:
        for batch in _decoded_batches(local_path, fmt, check):
            counts.read += batch.num_rows
            yield _within_bounds(_to_ods(batch), counts)
    except FileFault:
        raise
    except Exception as exc:  # a decode failure of local bytes is the file's own
        raise FileFault(f"unreadable data: {one_line(exc)}") from None


def _decoded_batches(local_path: str, fmt: str, check: FooterCheck) -> Iterator[pa.RecordBatch]:
    if fmt == "parquet":
        parquet = pq.ParquetFile(local_path, read_dictionary=list(check.dictionary_columns))
        present = _ods_columns(parquet.schema_arrow)
        yield from parquet.iter_batches(
            batch_size=check.batch_rows, columns=present, use_threads=True
        )
        return
    if not check.whole_stripes:  # a stripe too large to decode at once, or one not bounded
        scan = ds.dataset(local_path, format="orc")
        present = _ods_columns(scan.schema)
        yield from scan.to_batches(
            columns=present, batch_size=check.batch_rows, batch_readahead=0, use_threads=False
        )
        return
    reader = orc.ORCFile(local_path)  # each stripe at once: 30% faster than streaming it
    present = _ods_columns(reader.schema)
    for stripe in range(reader.nstripes):
        batch = reader.read_stripe(stripe, columns=present)
        for offset in range(0, batch.num_rows, check.batch_rows):
            yield batch.slice(offset, check.batch_rows)


def _ods_columns(schema: pa.Schema) -> list[str]:
    """The ODS columns a file has, in ODS order: the only ones decoded."""
    return [name for name in ODS_SCHEMA.names if name in schema.names]


def _to_ods(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch's ODS columns in the ODS types; dictionaries of the ODS type stay encoded."""
    columns = []
    for expected in ODS_SCHEMA:
        index = batch.schema.get_field_index(expected.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, expected.type))
            continue
        column = batch.column(index)
        if pa.types.is_dictionary(column.type) and column.type.value_type != expected.type:
            column = column.dictionary_decode()
        if column.type != expected.type and not pa.types.is_dictionary(column.type):
            column = column.cast(expected.type)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=ODS_SCHEMA.names)


def _within_bounds(batch: pa.RecordBatch, counts: RowCounts) -> pa.RecordBatch:
    """Drop rows with a string that is not valid UTF-8 or longer than its column's limit."""
    bad_utf8 = too_long = None
    for name, limit in STRING_LIMITS.items():
        invalid, over = _string_faults(batch.column(name), limit)
        bad_utf8, too_long = _either(bad_utf8, invalid), _either(too_long, over)
    if bad_utf8 is None and too_long is None:
        return batch
    none = pa.array(np.zeros(batch.num_rows, dtype=bool))
    bad_utf8 = none if bad_utf8 is None else bad_utf8
    too_long = none if too_long is None else too_long
    oversized_only = pc.and_(too_long, pc.invert(bad_utf8))
    for reason, mask in (("invalid_utf8", bad_utf8), ("oversized_string", oversized_only)):
        if dropped := pc.sum(mask).as_py():
            counts.dropped[reason] += dropped
    return batch.filter(pc.invert(pc.or_(bad_utf8, too_long)))


def _string_faults(
    column: pa.Array, limit: int
) -> tuple[pa.BooleanArray | None, pa.BooleanArray | None]:
    """Per row: not valid UTF-8, longer than ``limit`` bytes; None where no row is.

    A dictionary column is judged on its distinct values, mapped to rows only if one fails.
    """
    if pa.types.is_dictionary(column.type):
        _require_indices_in_range(column)
        invalid, over = _string_faults(column.dictionary, limit)
        return _per_row(invalid, column.indices), _per_row(over, column.indices)
    over = pc.greater(pc.fill_null(pc.binary_length(column), 0), limit)
    return _invalid_utf8(column), (over if pc.any(over).as_py() else None)


def _require_indices_in_range(column: pa.DictionaryArray) -> None:
    """Refuse the file when a dictionary index points outside the dictionary: it is corrupt.

    pyarrow does not check indices when it reads a column as a dictionary, and nothing decodes
    these rows before DWD does (the values are judged once each), so the bounds are checked here.
    """
    bounds = pc.min_max(column.indices)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is not None and (low < 0 or high >= len(column.dictionary)):
        bad = low if low < 0 else high
        raise FileFault(
            f"corrupt data: a dictionary index ({bad}) outside its {len(column.dictionary)} values"
        )


def _per_row(value_mask: pa.BooleanArray | None, indices: pa.Array) -> pa.BooleanArray | None:
    if value_mask is None:
        return None
    return pc.fill_null(pc.take(value_mask, indices), False)


def _either(left: pa.BooleanArray | None, right: pa.BooleanArray | None) -> pa.BooleanArray | None:
    if left is None or right is None:
        return right if left is None else left
    return pc.or_(left, right)


def _invalid_utf8(column: pa.Array) -> pa.BooleanArray | None:
    """Values that are not valid UTF-8, or None when all are (the vectorised fast path)."""
    try:
        column.cast(pa.binary()).cast(pa.string())  # Arrow's vectorised UTF-8 validation
        return None
    except pa.ArrowInvalid:
        return pa.array([_is_bad_utf8(v) for v in column.cast(pa.binary()).to_pylist()])


def _is_bad_utf8(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
