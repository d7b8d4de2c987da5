"""Which raw files of an arrival hour are data, junk, or unusable, and how to stream the data.

Nothing here modifies the raw zone: junk is skipped, unusable files are quarantined (listed
with a reason), and the accepted files are streamed in the ODS schema, Parquet and ORC alike.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.orc as orc
import pyarrow.parquet as pq

from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import Zone
from lakehouse.tables import ODS_SCHEMA, ODS_TABLE

DATA_FORMATS = {".parquet": "parquet", ".orc": "orc"}
TEMP_UPLOAD_SUFFIXES = (".tmp", ".temp", ".part", ".inprogress", ".crdownload", ".filepart")
SCAN_BATCH_ROWS = 256 * 1024


@dataclass(frozen=True)
class RawFile:
    """A raw object that looks like data: a Parquet or ORC file with bytes in it."""

    path: str
    size: int
    format: str

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@dataclass(frozen=True)
class RejectedFile:
    """A raw object left out of the hour, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class HourIntake:
    """The verdict on every object of one arrival hour."""

    accepted: tuple[RawFile, ...]
    skipped: tuple[RejectedFile, ...]
    quarantined: tuple[RejectedFile, ...]
    rows_in_footers: int


class RawFileReadError(RuntimeError):
    """A raw file whose footer looked fine but whose data could not be read."""

    def __init__(self, raw_file: RawFile, cause: BaseException):
        super().__init__(f"{raw_file.name}: {type(cause).__name__}: {cause}")
        self.raw_file = raw_file
        self.reason = f"unreadable data: {type(cause).__name__}: {cause}"


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


def classify(infos: Sequence[pafs.FileInfo]) -> tuple[list[RawFile], list[RejectedFile]]:
    """Split an hour's listing into data candidates and skipped junk."""
    candidates: list[RawFile] = []
    skipped: list[RejectedFile] = []
    for info in infos:
        reason = junk_reason(info.base_name, info.size)
        if reason:
            skipped.append(RejectedFile(info.path, reason))
        else:
            fmt = DATA_FORMATS[posixpath.splitext(info.base_name.lower())[1]]
            candidates.append(RawFile(info.path, info.size or 0, fmt))
    return candidates, skipped


def schema_problems(schema: pa.Schema) -> list[str]:
    """Ways a file's schema does not fit ODS; extra columns are fine and ignored."""
    problems = []
    for field in ODS_SCHEMA:
        index = schema.get_field_index(field.name)
        if index < 0:
            problems.append(f"missing column {field.name!r}")
            continue
        actual = schema.field(index).type
        if not _castable(actual, field.type):
            problems.append(f"column {field.name!r} is {actual}, expected {field.type}")
    return problems


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_string(expected):
        return (
            pa.types.is_string(actual)
            or pa.types.is_large_string(actual)
            or pa.types.is_string_view(actual)
            or pa.types.is_null(actual)
        )
    if pa.types.is_floating(expected):
        return (
            pa.types.is_floating(actual) or pa.types.is_integer(actual) or pa.types.is_null(actual)
        )
    return actual == expected


def read_footer(zone: Zone, raw_file: RawFile) -> tuple[pa.Schema, int]:
    """Schema and row count from the file's footer, without reading its data."""
    with zone.filesystem.open_input_file(raw_file.path) as handle:
        if raw_file.format == "parquet":
            meta = pq.ParquetFile(handle).metadata
            return meta.schema.to_arrow_schema(), meta.num_rows
        reader = orc.ORCFile(handle)
        return reader.schema, reader.nrows


def inspect_hour(zone: Zone, partition: HourPartition) -> HourIntake:
    """List the hour's objects and judge each one by name, size and footer."""
    candidates, skipped = classify(zone.list_files(hour_dir(partition)))
    accepted: list[RawFile] = []
    quarantined: list[RejectedFile] = []
    rows = 0
    for raw_file in candidates:
        try:
            schema, num_rows = read_footer(zone, raw_file)
        except Exception as exc:  # any unreadable footer is the file's fault, not the hour's
            quarantined.append(
                RejectedFile(raw_file.path, f"unreadable {raw_file.format} footer: {exc}")
            )
            continue
        problems = schema_problems(schema)
        if problems:
            quarantined.append(
                RejectedFile(raw_file.path, "schema mismatch: " + "; ".join(problems))
            )
            continue
        accepted.append(raw_file)
        rows += num_rows
    return HourIntake(tuple(accepted), tuple(skipped), tuple(quarantined), rows)


def scan_files(zone: Zone, files: Sequence[RawFile]) -> Iterator[pa.RecordBatch]:
    """Stream the files' rows in the ODS schema, one file after another.

    A failure while reading a file's data is raised as :class:`RawFileReadError` naming the
    file, so the caller can quarantine it and retry the hour without it.
    """
    projection = {field.name: pc.field(field.name).cast(field.type) for field in ODS_SCHEMA}
    for raw_file in files:
        try:
            dataset = ds.dataset(raw_file.path, format=raw_file.format, filesystem=zone.filesystem)
            scanner = dataset.scanner(columns=projection, batch_size=SCAN_BATCH_ROWS)
            yield from scanner.to_batches()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise RawFileReadError(raw_file, exc) from exc
