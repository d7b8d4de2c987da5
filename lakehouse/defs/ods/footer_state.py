"""Footer verdicts of an hour's raw files, remembered so a tick reads only new or changed files.

A file's verdict (rows in its footer, or why the ODS run will quarantine it) depends only on its
bytes, which its key, size and version (ETag, or mtime locally) identify. Verdicts are kept per
hour in one small JSON object in the warehouse zone,
``_datascan/<table>/dt=YYYY-MM-DD/hh=HH/footers.json``, read and written only for hours whose
listing changed: one new file in an hour of thousands costs a state read, its footer and a state
write, and the sensor cursor stays a few KB.

Only a file's own faults become verdicts. A store fault while reading a footer (throttling,
timeout, reset, an object replaced since it was listed) leaves the file unjudged and the hour
waits for a later tick; so does a footer not read because the tick's budget ran out, except
that the verdicts read so far are saved, so the next tick goes on where this one stopped.
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from lakehouse.defs.ods.discovery import HourFiles
from lakehouse.defs.ods.intake import (
    DATA_FORMATS,
    FileFault,
    RawFile,
    check_footer,
    footer_bytes,
)
from lakehouse.defs.ods.scan_limits import TickBudget
from lakehouse.partitions import HourPartition
from lakehouse.resources.faults import ObjectChanged, describe, store_errors
from lakehouse.resources.listing import ListedObject
from lakehouse.resources.zones import ObjectInfo, Zone
from lakehouse.tables import ODS_TABLE

STATE_DIR = "_datascan"
STATE_VERSION = 1
# Footers read at once: a footer is one small ranged GET, so reading is latency-bound.
READERS = 8


@dataclass(frozen=True)
class Verdict:
    """What one exact version of a file holds: rows, or the fault that quarantines it."""

    size: int
    version: str
    rows: int = 0
    fault: str | None = None


@dataclass
class HourFooters:
    """The verdicts of one hour's data files, as far as this tick got."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)  # by file name
    unread: int = 0  # files left for a later tick (budget)
    store_fault: str | None = None  # the first store fault met; the hour waits
    read: int = 0  # footers read by this tick

    @property
    def complete(self) -> bool:
        return not self.unread and self.store_fault is None

    @property
    def rows(self) -> int:
        return sum(v.rows for v in self.verdicts.values() if v.fault is None)

    @property
    def flagged(self) -> dict[str, str]:
        return {name: v.fault for name, v in sorted(self.verdicts.items()) if v.fault}


def state_key(partition: HourPartition) -> str:
    """Where the hour's verdicts live in the warehouse zone."""
    return posixpath.join(STATE_DIR, ODS_TABLE, partition.hive_path, "footers.json")


def load_verdicts(warehouse: Zone, partition: HourPartition) -> dict[str, Verdict]:
    """The hour's remembered verdicts; none if there are none yet (or they are unreadable)."""
    try:
        payload = warehouse.read_bytes(state_key(partition))
    except (FileNotFoundError, ObjectChanged):
        return {}
    try:
        data = json.loads(payload)
        if data.get("v") != STATE_VERSION:
            return {}
        return {name: Verdict(**v) for name, v in data["files"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}  # not ours, or edited by hand: judging again is always safe


def save_verdicts(warehouse: Zone, partition: HourPartition, verdicts: dict[str, Verdict]) -> None:
    files = {name: asdict(v) for name, v in sorted(verdicts.items())}
    payload = {"v": STATE_VERSION, "files": files}
    warehouse.write_bytes(state_key(partition), json.dumps(payload, separators=(",", ":")).encode())


class FooterJudge:
    """Judges hours' files by their footers within a tick's budget, remembering verdicts."""

    def __init__(self, raw: Zone, warehouse: Zone, budget: TickBudget):
        self.raw, self.warehouse, self.budget = raw, warehouse, budget
        self.save_faults: list[str] = []

    def hour(self, hour: HourFiles, pool: ThreadPoolExecutor) -> HourFooters:
        """Verdicts for ``hour``'s files: remembered ones, plus footers read now."""
        result = HourFooters()
        try:
            known = load_verdicts(self.warehouse, hour.partition)
        except store_errors() as fault:  # a StorageConfigError (ValueError) propagates
            result.store_fault = f"cannot read {state_key(hour.partition)}: {describe(fault)}"
            return result
        pending = []
        for listed in hour.files:
            verdict = known.get(_name(listed))
            if verdict is not None and (verdict.size, verdict.version) == (
                listed.size,
                listed.version,
            ):
                result.verdicts[_name(listed)] = verdict
            else:
                pending.append(listed)
        stop = threading.Event()  # set on the hour's first store fault: the rest can wait
        for listed, outcome in zip(pending, self._read(pending, pool, stop), strict=True):
            if isinstance(outcome, Verdict):
                result.verdicts[_name(listed)] = outcome
                result.read += 1
            elif outcome is None:
                result.unread += 1
            elif result.store_fault is None:
                result.store_fault = outcome
        if result.verdicts != known:
            self._save(hour.partition, result.verdicts)
        return result

    def _read(
        self, pending: list[ListedObject], pool: ThreadPoolExecutor, stop: threading.Event
    ) -> Iterator[Verdict | str | None]:
        """Per file: its verdict, a store fault's description, or None if not read (budget)."""

        def judge(listed: ListedObject) -> Verdict | str | None:
            if stop.is_set() or not self.budget.take_read():
                return None
            extension = posixpath.splitext(listed.key)[1].lower()
            info = ObjectInfo(listed.key, listed.size, listed.version, self.raw.path(listed.key))
            raw_file = RawFile(info, DATA_FORMATS[extension])
            try:
                tail = footer_bytes(self.raw, raw_file)
            except store_errors() as fault:  # the store's fault, never the file's
                stop.set()
                return f"{_name(listed)}: {describe(fault)}"
            try:
                rows = check_footer(tail, raw_file.format).rows
                return Verdict(listed.size, listed.version, rows)
            except FileFault as fault:
                return Verdict(listed.size, listed.version, fault=fault.reason)

        return pool.map(judge, pending)

    def _save(self, partition: HourPartition, verdicts: dict[str, Verdict]) -> None:
        """Remember verdicts; if the store refuses, they are read again next time (never wrong)."""
        try:
            save_verdicts(self.warehouse, partition, verdicts)
        except store_errors() as fault:
            self.save_faults.append(f"{state_key(partition)}: {describe(fault)}")


def _name(listed: ListedObject) -> str:
    return posixpath.basename(listed.key)
