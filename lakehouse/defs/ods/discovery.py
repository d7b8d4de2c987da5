"""The DataScan logic: which arrival hours gained or changed raw files since the last tick.

State between ticks is a small cursor: a digest of each recent hour's data files (name, size,
modification stamp). An hour whose digest changed (new, late or re-uploaded files) is due for a
run, keyed by that digest, so the same file set never runs twice and a changed one always runs
again. Hours older than the lateness window before the newest hour seen are forgotten, which
keeps both the cursor and each tick's listing bounded no matter how large the history grows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from lakehouse.defs.ods.intake import hour_dir, junk_reason
from lakehouse.partitions import BadPartitionKey, HourPartition
from lakehouse.resources.listing import ListedObject
from lakehouse.tables import ODS_TABLE

RAW_PREFIX = f"{ODS_TABLE}/"
DEFAULT_LATENESS_HOURS = 48
CURSOR_VERSION = 1
_KEY_RE = re.compile(rf"^{ODS_TABLE}/dt=([^/]*)/hh=([^/]*)/([^/]+)$")


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
    """Digest of each hour still inside the lateness window, as a compact JSON string."""

    hours: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> ScanCursor:
        if not text:
            return cls()
        data = json.loads(text)
        if data.get("v") != CURSOR_VERSION:
            raise ValueError(f"unknown DataScan cursor version {data.get('v')!r}")
        return cls(dict(data["hours"]))

    def serialize(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "hours": self.hours}, separators=(",", ":"))

    @property
    def newest(self) -> HourPartition | None:
        return HourPartition.from_key(max(self.hours)) if self.hours else None

    def window_start(self, lateness_hours: int) -> HourPartition | None:
        """The oldest hour still watched for late files; None before the first scan."""
        newest = self.newest
        return HourPartition(newest.start - timedelta(hours=lateness_hours)) if newest else None


@dataclass
class ScanResult:
    """What one tick found."""

    changed: list[HourFiles]
    cursor: ScanCursor
    skipped: list[tuple[str, str]]
    files_seen: int


def start_after(partition: HourPartition | None) -> str | None:
    """The listing key just before every key of ``partition``'s folder."""
    return hour_dir(partition) if partition else None


def scan(
    objects: Iterable[ListedObject],
    cursor: ScanCursor,
    lateness_hours: int = DEFAULT_LATENESS_HOURS,
    is_partition: Callable[[str], bool] = lambda key: True,
) -> ScanResult:
    """Group listed objects by hour, skip junk, and compare each hour with the cursor."""
    by_hour: dict[str, list[ListedObject]] = defaultdict(list)
    skipped: list[tuple[str, str]] = []
    seen = 0
    for obj in objects:
        seen += 1
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
        if not is_partition(partition.key):
            skipped.append((obj.key, f"hour {partition.key} is outside the hourly partitions"))
            continue
        reason = junk_reason(name, obj.size)
        if reason:
            skipped.append((obj.key, reason))
            continue
        by_hour[partition.key].append(obj)

    hours = [HourFiles(HourPartition.from_key(k), tuple(v)) for k, v in sorted(by_hour.items())]
    digests = dict(cursor.hours)
    digests.update({hour.partition.key: hour.digest for hour in hours})
    oldest = ScanCursor(digests).window_start(lateness_hours)
    changed = []
    for hour in hours:
        unchanged = cursor.hours.get(hour.partition.key) == hour.digest
        if unchanged:
            continue  # already requested; it may just have slid out of the window
        if oldest is not None and hour.partition.key < oldest.key:
            reason = f"older than the {lateness_hours} h lateness window (backfill it)"
            skipped.extend((f.key, reason) for f in hour.files)
        else:
            changed.append(hour)
    kept = {k: v for k, v in digests.items() if oldest is None or k >= oldest.key}
    return ScanResult(changed, ScanCursor(kept), skipped, seen)
