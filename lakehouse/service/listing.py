"""Which published partition files a request reads, and their digest (the data version).

A request names a range of hours or days; only the folders of those days are listed
(``<folder>/dt=YYYY-MM-DD/``), and only files at the layout's exact place are taken
(``dt=.../hh=.../part-0.parquet`` or ``dt=.../part-0.parquet``), so nothing else in a zone is
ever handed to the engine. Local folders are listed (or each hour's file looked up) on every
request, so an hour published a moment ago is served at once; object-store listings are reused
for a few seconds (``LAKEHOUSE_API_LISTING_TTL_SECONDS``) to spare a request per day per call.

The digest covers each file's key, size and version (S3 ETag or local modification time): a
republished partition changes it, which changes the response's ETag.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from lakehouse.resources.zones import ObjectInfo
from lakehouse.service.access import TableSource
from lakehouse.warehouse.partition_store import PARTITION_FILE

_HOURLY_RE = re.compile(rf"^dt=(\d{{4}}-\d{{2}}-\d{{2}})/hh=(\d{{2}})/{re.escape(PARTITION_FILE)}$")
_DAILY_RE = re.compile(rf"^dt=(\d{{4}}-\d{{2}}-\d{{2}})/{re.escape(PARTITION_FILE)}$")


@dataclass(frozen=True)
class PartitionFile:
    """One published partition: its ``dt`` (and ``hh``) and the object that holds it."""

    dt: str
    hh: str | None
    info: ObjectInfo

    @property
    def position(self) -> tuple[str, str]:
        return self.dt, self.hh or ""


def digest(files: Sequence[PartitionFile], source: TableSource) -> str:
    """A short hash of exactly which bytes a response reads."""
    h = hashlib.sha256(source.zone.url.encode())
    for f in files:
        h.update(f"\n{f.info.key}\t{f.info.size}\t{f.info.version}".encode())
    return h.hexdigest()[:32]


class PartitionLister:
    """Lists a table's partitions in a range; object-store listings are cached briefly."""

    def __init__(self, ttl_seconds: float):
        self.ttl = ttl_seconds
        self._cache: dict[tuple[str, str], tuple[float, list[ObjectInfo]]] = {}
        self._lock = threading.Lock()

    def hours(self, source: TableSource, first: datetime, last: datetime) -> list[PartitionFile]:
        """The hourly partitions from hour ``first`` to ``last`` (both included), in order.

        Locally each hour's file is looked up directly (one ``stat`` per hour of the range).
        """
        found = []
        if source.zone.is_local:
            for i in range(int((last - first).total_seconds()) // 3600 + 1):
                dt, hh = (first + timedelta(hours=i)).strftime("%Y-%m-%d %H").split()
                info = source.zone.stat(f"{source.folder}/dt={dt}/hh={hh}/{PARTITION_FILE}")
                if info is not None:
                    found.append(PartitionFile(dt, hh, info))
            return found
        low = (first.strftime("%Y-%m-%d"), first.strftime("%H"))
        high = (last.strftime("%Y-%m-%d"), last.strftime("%H"))
        for day in _days(first.date(), last.date()):
            for f in self._day(source, day):
                if f.hh is not None and low <= f.position <= high:
                    found.append(f)
        return found

    def days(self, source: TableSource, first: date, last: date) -> list[PartitionFile]:
        """The partitions of days ``first`` to ``last`` (both included), in order.

        For an hourly table that is every hour of those days; for a daily one, the day's file.
        """
        found = []
        for day in _days(first, last):
            found.extend(self._day(source, day))
        return found

    def _day(self, source: TableSource, day: date) -> list[PartitionFile]:
        prefix = f"{source.folder}/dt={day.isoformat()}"
        pattern = _HOURLY_RE if source.hourly else _DAILY_RE
        files = []
        for info in self._list(source, prefix):
            match = pattern.match(info.key[len(source.folder) + 1 :])
            if match:
                hh = match.group(2) if source.hourly else None
                files.append(PartitionFile(match.group(1), hh, info))
        return sorted(files, key=lambda f: f.position)

    def _list(self, source: TableSource, prefix: str) -> list[ObjectInfo]:
        zone = source.zone
        if zone.is_local or self.ttl <= 0:
            return zone.list_files(prefix, recursive=True)
        key = (zone.url, prefix)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        listed = zone.list_files(prefix, recursive=True)
        with self._lock:
            self._cache[key] = (now, listed)
            if len(self._cache) > 10_000:  # bounded: drop the stalest half
                for stale in sorted(self._cache, key=lambda k: self._cache[k][0])[:5_000]:
                    del self._cache[stale]
        return listed


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
