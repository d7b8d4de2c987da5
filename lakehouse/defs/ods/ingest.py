"""Stage an arrival hour's ODS partition from its raw files, and decide whether it may replace
the published one.

The hour's data files are fetched first (on S3: downloaded, pinned to the listed ETag), then
judged and streamed from local bytes, so only the files' own faults become quarantine verdicts.
A file whose data breaks mid-read is quarantined; the files after it are then checked without
writing, and the hour is written once more without every bad file found: never more than two
writes, however many files are bad.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

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
from lakehouse.defs.publishing import StagedPartition, stage_batches
from lakehouse.partitions import HourPartition
from lakehouse.resources.zones import Zone
from lakehouse.tables import ODS_TABLE

INTAKE_DIR = "_intake"
# ODS is written once and read once per hour (by DWD): favour write speed (snappy encodes an
# hour of a 30k fleet ~0.6 s faster than zstd, for ~25% more bytes).
ODS_COMPRESSION = "snappy"


class ReplacementRefused(Exception):
    """Re-materialising would publish less than the hour holds, without being asked to."""


@dataclass
class AcceptedFile:
    file: RawFile
    check: FooterCheck
    local_path: str
    counts: RowCounts = field(default_factory=RowCounts)


@dataclass
class StagedHour:
    """The hour's ODS partition in a staged file, and the verdict on every raw object."""

    staged: StagedPartition
    accepted: list[AcceptedFile]
    skipped: list[RejectedFile]
    quarantined: list[RejectedFile]
    writes: int

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
        staged, writes = _write_at_most_twice(warehouse, partition, accepted, quarantined)
    # Leaving the ExitStack re-checked that no local raw file changed while it was read.
    try:
        yield StagedHour(staged, accepted, skipped, quarantined, writes)
    finally:
        staged.discard()


def _write_at_most_twice(
    warehouse: Zone,
    partition: HourPartition,
    accepted: list[AcceptedFile],
    quarantined: list[RejectedFile],
) -> tuple[StagedPartition, int]:
    try:
        return _stage(warehouse, partition, accepted), 1
    except _BrokenFile as broken:
        quarantined.append(RejectedFile(broken.file.file.key, broken.reason))
        later = accepted[accepted.index(broken.file) + 1 :]
        accepted.remove(broken.file)
        for candidate in later:  # find every other bad file before writing again
            try:
                for _ in read_rows(candidate.local_path, candidate.file.format, candidate.check,
                                   RowCounts()):  # fmt: skip
                    pass
            except FileFault as fault:
                quarantined.append(RejectedFile(candidate.file.key, fault.reason))
                accepted.remove(candidate)
        for kept in accepted:
            kept.counts = RowCounts()
        return _stage(warehouse, partition, accepted), 2


class _BrokenFile(Exception):
    def __init__(self, file: AcceptedFile, reason: str):
        super().__init__(reason)
        self.file, self.reason = file, reason


def _stage(
    warehouse: Zone, partition: HourPartition, accepted: Sequence[AcceptedFile]
) -> StagedPartition:
    return stage_batches(
        warehouse, ODS_TABLE, partition, _batches(accepted), compression=ODS_COMPRESSION
    )


def _batches(accepted: Sequence[AcceptedFile]) -> Iterator[pa.RecordBatch]:
    for item in accepted:
        try:
            yield from read_rows(item.local_path, item.file.format, item.check, item.counts)
        except FileFault as fault:
            raise _BrokenFile(item, fault.reason) from None


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
