"""Stage an arrival hour's ODS partition from its raw files, and decide whether it may replace
the published one.

The hour's data files are fetched first (on S3: downloaded, pinned to the listed ETag), then
judged and read from local bytes, so only the files' own faults become quarantine verdicts.
Every file is read whole, in the ODS schema, within the intake bounds and through the ODS
pandera schema, two files at a time; a file whose data breaks mid-read is quarantined and costs
nothing else. Then the partition is assembled without encoding what need not be:

- *verbatim*: a Parquet file already in the ODS schema, as Arrow writes it, with no row out of
  bounds, joins the partition byte for byte (``parquet_concat``);
- *converted*: anything else (ORC, other types or writers, rows dropped at intake) is written
  in the ODS schema first, each file on its own, and joins the same way.

The partition keeps the raw files' order and rows; only its row groups are theirs.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.defs.ods.intake import (
    FileFault,
    FooterCheck,
    RawFile,
    RejectedFile,
    RowCounts,
    check_footers,
    list_hour,
    read_rows,
)
from lakehouse.defs.publishing import StagedPartition, failing_on_violation, stage_batches
from lakehouse.partitions import HourPartition
from lakehouse.quality.enforcement import ChunkedSchemaValidator, combined
from lakehouse.quality.schemas import LAYER_SCHEMAS
from lakehouse.resources.zones import Zone
from lakehouse.tables import ODS_SCHEMA, ODS_TABLE
from lakehouse.warehouse.parquet_concat import Layout, concat_parquet, joinable
from lakehouse.warehouse.partition_store import StagedFile

INTAKE_DIR = "_intake"
# Converted files are written once and read once per hour (by DWD): favour write speed (snappy
# encodes an hour of a 30k fleet ~0.6 s faster than zstd, for ~25% more bytes).
ODS_COMPRESSION = "snappy"
# Files judged at once: each read is mostly native code that releases the GIL.
READERS = 2
VERBATIM, CONVERTED = "verbatim", "converted"


class ReplacementRefused(Exception):
    """Re-materialising would publish less than the hour holds, without being asked to."""


@dataclass
class AcceptedFile:
    file: RawFile
    check: FooterCheck
    local_path: str
    counts: RowCounts = field(default_factory=RowCounts)
    stored: str = ""  # VERBATIM or CONVERTED, once judged


@dataclass
class StagedHour:
    """The hour's ODS partition in a staged file, and the verdict on every raw object."""

    staged: StagedPartition
    accepted: list[AcceptedFile]
    skipped: list[RejectedFile]
    quarantined: list[RejectedFile]

    @property
    def rows_dropped(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for accepted in self.accepted:
            for reason, count in accepted.counts.dropped.items():
                total[reason] = total.get(reason, 0) + count
        return total


def intake_record_key(partition: HourPartition) -> str:
    return posixpath.join(INTAKE_DIR, ODS_TABLE, partition.hive_path, "intake.json")


def require_raw_dataset(raw: Zone) -> None:
    """A raw zone without the ODS dataset folder is a configuration error, never an empty hour."""
    from lakehouse.resources.faults import StorageConfigError

    if not raw.has_any(ODS_TABLE + "/"):
        raise StorageConfigError(
            f"the raw zone {raw.url} holds no {ODS_TABLE}/ folder: is LAKEHOUSE_RAW_URL (or the "
            "storage resource's raw_url) right? The pipeline never creates the raw zone."
        )


@contextlib.contextmanager
def staged_hour(raw: Zone, warehouse: Zone, partition: HourPartition) -> Iterator[StagedHour]:
    """Judge and stage the hour; the staged file is discarded when the block exits."""
    candidates, skipped = list_hour(raw, partition)
    converted: list[StagedPartition] = []  # parts written aside, gone once the hour is assembled
    with contextlib.ExitStack() as fetched:
        local = {f.key: fetched.enter_context(raw.fetch_local(f.info)) for f in candidates}
        verdicts = check_footers(local, {f.key: f.format for f in candidates})
        accepted, quarantined = [], []
        for raw_file in candidates:
            verdict = verdicts[raw_file.key]
            if isinstance(verdict, FileFault):
                quarantined.append(RejectedFile(raw_file.key, verdict.reason))
            else:
                accepted.append(AcceptedFile(raw_file, verdict, local[raw_file.key]))
        try:
            with (
                failing_on_violation(ODS_TABLE, partition.key),
                ThreadPoolExecutor(READERS, thread_name_prefix="ods-intake") as pool,
            ):
                judged = list(
                    pool.map(lambda item: _judge(warehouse, partition, item, converted), accepted)
                )
            kept = []
            for item, (outcome, validator) in zip(accepted, judged, strict=True):
                if isinstance(outcome, FileFault):
                    quarantined.append(RejectedFile(item.file.key, outcome.reason))
                else:
                    kept.append((item, outcome, validator))
            staged = _assemble(warehouse, partition, kept)
        finally:
            for part in converted:
                part.discard()
            # Hand the readers' buffers back to the OS before the layers' engine needs memory.
            pa.default_memory_pool().release_unused()
        # Leaving ``fetched`` re-checks that no local raw file changed while it was read.
    try:
        yield StagedHour(staged, [item for item, _, _ in kept], skipped, quarantined)
    finally:
        staged.discard()


# A converted file, a raw file joined as is, or a fault
Outcome = StagedPartition | str | FileFault


def _judge(
    warehouse: Zone, partition: HourPartition, item: AcceptedFile, converted: list[StagedPartition]
) -> tuple[Outcome, ChunkedSchemaValidator]:
    """Read the file whole; keep it as it is if it may be, else write its ODS rows aside."""
    if item.file.format == "parquet" and _joins_as_is(item.local_path):
        validator = _validator()
        try:
            # Nothing is written from these rows: they are validated as they are read.
            for batch in read_rows(item.local_path, item.file.format, item.check, item.counts):
                validator.account(batch, ODS_SCHEMA)
        except FileFault as fault:
            return fault, validator
        if not item.counts.dropped:
            item.stored = VERBATIM
            return item.local_path, validator
        item.counts = RowCounts()  # counted again as the rows are converted
    return _convert(warehouse, partition, item, converted)


def _joins_as_is(local_path: str) -> bool:
    """Whether the raw Parquet file may join the partition byte for byte."""
    try:
        return joinable(local_path, ODS_LAYOUT) is None
    except Exception:  # a footer only pyarrow can parse: converting it is always correct
        return False


def _convert(
    warehouse: Zone, partition: HourPartition, item: AcceptedFile, converted: list[StagedPartition]
) -> tuple[Outcome, ChunkedSchemaValidator]:
    """The file's ODS rows staged on their own (validated, in the ODS encoding) to be joined."""
    rows = read_rows(item.local_path, item.file.format, item.check, item.counts)
    try:
        part = stage_batches(warehouse, ODS_TABLE, partition, rows, compression=ODS_COMPRESSION)
    except FileFault as fault:  # the staged file is already gone
        return fault, _validator()
    converted.append(part)
    item.stored = CONVERTED
    return part, part.validator


def _assemble(
    warehouse: Zone,
    partition: HourPartition,
    kept: list[tuple[AcceptedFile, Outcome, ChunkedSchemaValidator]],
) -> StagedPartition:
    """The partition's one file: every kept file's rows, in the raw files' order."""
    staged = StagedFile(warehouse, ODS_TABLE, partition)
    try:
        if kept:
            paths = [o.local_path if isinstance(o, StagedPartition) else str(o) for _, o, _ in kept]
            concat_parquet(paths, staged.local_path)
            validator = combined([v for _, _, v in kept])
        else:
            pq.write_table(ODS_SCHEMA.empty_table(), staged.local_path)
            validator = _validator()
        if not pq.read_schema(staged.local_path).equals(ODS_SCHEMA):
            raise RuntimeError(f"{ODS_TABLE} {partition.key}: the joined file left the ODS schema")
    except BaseException:
        staged.discard()
        raise
    return StagedPartition(warehouse, ODS_TABLE, partition.key, staged, validator)


def _validator() -> ChunkedSchemaValidator:
    return ChunkedSchemaValidator(ODS_TABLE, LAYER_SCHEMAS[ODS_TABLE])


# What a raw Parquet file must look like to join the partition as it is.
ODS_LAYOUT = Layout.written_for(ODS_SCHEMA)


def previous_record(warehouse: Zone, partition: HourPartition) -> dict | None:
    """The intake record of the published hour, if any."""
    key = intake_record_key(partition)
    if not warehouse.exists(key):
        return None
    return json.loads(warehouse.read_bytes(key))


def check_replacement(previous: dict | None, hour: StagedHour, allowed: bool) -> None:
    """Refuse to publish less than the published hour holds, unless explicitly allowed.

    Raw files are never modified by the lakehouse; files it published from that are gone now
    (a mistyped URL, a bucket swapped, a retention rule) or an hour that would become empty
    are far more likely an accident than an intent.
    """
    if allowed or not previous:
        return
    before = {entry["key"] for entry in previous.get("accepted", []) if "key" in entry}
    now = {item.file.key for item in hour.accepted} | {q.key for q in hour.quarantined}
    vanished = sorted(before - now)
    problems = []
    if vanished:
        shown = ", ".join(posixpath.basename(k) for k in vanished[:5])
        more = f" and {len(vanished) - 5} more" if len(vanished) > 5 else ""
        problems.append(f"{len(vanished)} raw file(s) it was built from are gone ({shown}{more})")
    if hour.staged.rows == 0 and previous.get("rows", 0) > 0:
        problems.append(f"it would replace {previous['rows']:,} rows with an empty hour")
    if problems:
        raise ReplacementRefused(
            f"{ODS_TABLE} {previous.get('partition', '')}: not replaced because "
            + "; ".join(problems)
            + ". If this is intended, re-run with the run tag lakehouse/allow_shrink=true (or "
            "the ods_vehicle_gps_raw op config allow_shrink: true)."
        )


def intake_record(raw: Zone, partition: HourPartition, hour: StagedHour) -> dict:
    """The hour's verdicts, kept beside the warehouse: what was read, skipped and why."""
    return {
        "table": ODS_TABLE,
        "partition": partition.key,
        "rows": hour.staged.rows,
        "rows_dropped": hour.rows_dropped,
        "accepted": [
            {
                "key": item.file.key,
                "file": raw.display(item.file.info.path),
                "bytes": item.file.info.size,
                "version": item.file.info.version,
                "rows_read": item.counts.read,
                "rows_dropped": dict(item.counts.dropped),
                "stored": item.stored,
            }
            for item in hour.accepted
        ],
        "skipped": [_rejection(raw, r) for r in hour.skipped],
        "quarantined": [_rejection(raw, r) for r in hour.quarantined],
    }


def _rejection(raw: Zone, rejected: RejectedFile) -> dict[str, str]:
    return {
        "key": rejected.key,
        "file": raw.display(raw.path(rejected.key)),
        "reason": rejected.reason,
    }
