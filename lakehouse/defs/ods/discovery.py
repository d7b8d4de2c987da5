"""The DataScan logic: which arrival hours gained or changed raw files since the last tick.

State between ticks is a small cursor: a digest of each recent hour's data files (name, size,
version), and where to resume listing when the last tick ran out of budget. An hour whose digest
changed (new, late or re-uploaded files) is due for a run, keyed by that digest, so the same file
set never runs twice and a changed one always runs again. A digest is committed only once the
hour's run was requested. Hours older than the lateness window before the newest hour seen are
forgotten, which keeps the cursor and each tick's listing bounded however large history grows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from lakehouse.defs.ods.intake import hour_dir, junk_reason
from lakehouse.partitions import BadPartitionKey, HourPartition
from lakehouse.resources.listing import ListedObject
from lakehouse.tables import ODS_TABLE

RAW_PREFIX = f"{ODS_TABLE}/"
DEFAULT_LATENESS_HOURS = 48
CURSOR_VERSION = 2
# Newest day folders tried when looking for the newest hour by folder names (first tick).
MAX_DAYS_TRIED = 7
_KEY_RE = re.compile(rf"^{ODS_TABLE}/dt=([^/]*)/hh=([^/]*)/([^/]+)$")
_HOUR_FOLDER_RE = re.compile(rf"^{ODS_TABLE}/dt=([^/]*)/hh=([^/]*)/")


@dataclass(frozen=True)
class HourFiles:
    """The data files (junk excluded) of one arrival hour, as listed."""

    partition: HourPartition
    files: tuple[ListedObject, ...]

    @property
    def digest(self) -> str:
        """Changes whenever a file is added, replaced or removed."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.key):
            h.update(f"{f.key}\0{f.size}\0{f.version}\n".encode())
        return f"{len(self.files)}-{h.hexdigest()[:16]}"

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class ScanCursor:
    """Digest of each hour inside the lateness window, and where an unfinished pass resumes."""

    hours: dict[str, str] = field(default_factory=dict)
    resume: str | None = None  # listing StartAfter key for the next tick; None: the window start

    @classmethod
    def parse(cls, text: str | None) -> ScanCursor:
        if not text:
            return cls()
        data = json.loads(text)
        if data.get("v") not in (1, CURSOR_VERSION):
            raise ValueError(f"unknown DataScan cursor version {data.get('v')!r}")
        return cls(dict(data["hours"]), data.get("resume"))

    def serialize(self) -> str:
        data: dict[str, object] = {"v": CURSOR_VERSION, "hours": self.hours}
        if self.resume:
            data["resume"] = self.resume
        return json.dumps(data, separators=(",", ":"))

    @property
    def newest(self) -> HourPartition | None:
        return HourPartition.from_key(max(self.hours)) if self.hours else None

    def window_start(self, lateness_hours: int) -> HourPartition | None:
        """The oldest hour still watched for late files; None before the first scan."""
        return window_start(self.newest, lateness_hours)

    def start_key(self, lateness_hours: int) -> str | None:
        """Where this tick's listing starts: the resume point, else the window's start."""
        window = start_after(self.window_start(lateness_hours))
        if self.resume and window:
            return max(self.resume, window)
        return self.resume or window

    def committing(
        self, digests: Mapping[str, str], lateness_hours: int, resume: str | None
    ) -> ScanCursor:
        """This cursor with ``digests`` recorded, hours outside the window dropped."""
        hours = {**self.hours, **digests}
        oldest = ScanCursor(hours).window_start(lateness_hours)
        kept = {k: v for k, v in hours.items() if oldest is None or k >= oldest.key}
        return ScanCursor(kept, resume)


@dataclass
class ScanResult:
    """What one tick found in (a prefix of) the listing."""

    changed: list[HourFiles]
    cursor: ScanCursor  # as it would be if every changed hour were requested
    skipped: list[tuple[str, str]]
    files_seen: int
    # When the listing was cut short: the StartAfter key from which the unseen rest (including
    # the whole of the last, partly listed hour) must be listed again.
    relist_from: str | None = None


def window_start(newest: HourPartition | None, lateness_hours: int) -> HourPartition | None:
    return HourPartition(newest.start - timedelta(hours=lateness_hours)) if newest else None


def start_after(partition: HourPartition | None) -> str | None:
    """The listing key just before every key of ``partition``'s folder."""
    return hour_dir(partition) if partition else None


def hour_of_key(key: str) -> HourPartition | None:
    """The arrival hour whose folder holds ``key`` (at any depth), if it is a valid hour."""
    match = _HOUR_FOLDER_RE.match(key)
    if not match:
        return None
    try:
        return HourPartition.from_hive(*match.groups())
    except BadPartitionKey:
        return None


def newest_hour(
    list_folders: Callable[[str], list[str]], is_partition: Callable[[str], bool]
) -> HourPartition | None:
    """The newest arrival hour, from folder names alone: where a first tick's window ends.

    Costs a folder listing of the dataset and of its newest day (on S3, two requests), so the
    first tick lists only the lateness window, not all of history.
    """
    days = [name for name in list_folders(RAW_PREFIX) if name.startswith("dt=")]
    for day in reversed(days[-MAX_DAYS_TRIED:]):
        for hh in reversed(list_folders(f"{RAW_PREFIX}{day}/")):
            try:
                partition = HourPartition.from_hive(day[3:], hh.removeprefix("hh="))
            except BadPartitionKey:
                continue
            if hh.startswith("hh=") and is_partition(partition.key):
                return partition
    return None


def scan(
    objects: Iterable[ListedObject],
    cursor: ScanCursor,
    lateness_hours: int = DEFAULT_LATENESS_HOURS,
    is_partition: Callable[[str], bool] = lambda key: True,
    complete: bool = True,
) -> ScanResult:
    """Group listed objects by hour, skip junk, and compare each hour with the cursor.

    ``complete=False`` says the listing was cut short: its last hour may hold more objects than
    were listed, so it is neither compared nor reported; ``relist_from`` says where to go on.
    """
    by_hour: dict[str, list[ListedObject]] = defaultdict(list)
    skipped: list[tuple[str, str]] = []
    valid_hours: dict[str, bool] = {}  # is_partition is slow; ask once per hour
    seen, last = 0, None
    for obj in objects:
        seen, last = seen + 1, obj
        if obj.key.endswith("/"):
            continue  # a "folder" marker object that consoles and some tools create
        match = _KEY_RE.match(obj.key)
        if not match:
            skipped.append((obj.key, "outside the dt=YYYY-MM-DD/hh=HH/<file> layout"))
            continue
        dt, hh, name = match.groups()
        try:
            partition = HourPartition.from_hive(dt, hh)
        except BadPartitionKey as exc:
            skipped.append((obj.key, str(exc)))
            continue
        if partition.key not in valid_hours:
            valid_hours[partition.key] = is_partition(partition.key)
        if not valid_hours[partition.key]:
            skipped.append((obj.key, f"hour {partition.key} is outside the hourly partitions"))
            continue
        reason = junk_reason(name, obj.size)
        if reason:
            skipped.append((obj.key, reason))
            continue
        by_hour[partition.key].append(obj)

    relist_from = None
    if not complete and last is not None:
        partial = hour_of_key(last.key)
        relist_from = start_after(partial) if partial else last.key
        if partial:
            folder = hour_dir(partial) + "/"
            skipped = [(key, reason) for key, reason in skipped if not key.startswith(folder)]

    hours = [HourFiles(HourPartition.from_key(k), tuple(v)) for k, v in sorted(by_hour.items())]
    digests = dict(cursor.hours)
    digests.update({hour.partition.key: hour.digest for hour in hours})
    oldest = ScanCursor(digests).window_start(lateness_hours)
    changed = []
    for hour in hours:
        if relist_from is not None and hour.partition.key >= _partial_key(relist_from):
            continue  # listed only in part: compared once its whole listing is seen
        unchanged = cursor.hours.get(hour.partition.key) == hour.digest
        if unchanged:
            continue  # already requested; it may just have slid out of the window
        if oldest is not None and hour.partition.key < oldest.key:
            reason = f"older than the {lateness_hours} h lateness window (backfill it)"
            skipped.extend((f.key, reason) for f in hour.files)
        else:
            changed.append(hour)
    requested = {hour.partition.key: hour.digest for hour in changed}
    return ScanResult(
        changed, cursor.committing(requested, lateness_hours, None), skipped, seen, relist_from
    )


def _partial_key(relist_from: str) -> str:
    """The partition key of the partly listed hour (or one sorting after every hour)."""
    partial = hour_of_key(relist_from + "/")
    return partial.key if partial else "\uffff"
