"""What the lakehouse has applied of the policy, and which share partitions await re-masking.

Both live in the warehouse zone under ``_governance/`` (outside every table and outside the
share, which other parties read):

- ``applied_policy.json``: per role, the version and masking versions last applied, plus the
  older states whose shared data may not be fully withdrawn yet (a reconciliation that stopped
  half way resumes from them). Share runs read it to refuse publishing under a policy that is
  no longer the applied one.
- ``remask/<role>/dt=YYYY-MM-DD/hh=HH/<table>@<id>``: one empty object per share partition to
  re-mask. One object per request, so concurrent writers (the reconciliation, share runs that
  lost a race) never overwrite each other's requests; a successful share run deletes the
  markers of what it published.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import uuid
from dataclasses import dataclass, field

from lakehouse.governance.versions import RoleState
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import Zone

STATE_DIR = "_governance"
APPLIED_FILE = posixpath.join(STATE_DIR, "applied_policy.json")
REMASK_DIR = posixpath.join(STATE_DIR, "remask")
FORMAT = 1


@dataclass(frozen=True)
class AppliedPolicy:
    """The applied per-role states, and older ones whose withdrawal may still be unfinished."""

    roles: dict[str, RoleState]
    unfinished: tuple[dict[str, RoleState], ...] = ()

    def allows(self, role: str, table: str, masking: str) -> bool:
        """Whether a partition of ``table`` masked under ``masking`` may be shared with ``role``."""
        state = self.roles.get(role)
        return state is not None and state.share and state.tables.get(table) == masking

    def to_json(self) -> str:
        def roles(states: dict[str, RoleState]) -> dict[str, object]:
            return {name: s.to_json() for name, s in sorted(states.items())}

        return json.dumps(
            {
                "format": FORMAT,
                "roles": roles(self.roles),
                "unfinished": [roles(s) for s in self.unfinished],
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> AppliedPolicy:
        data = json.loads(text)

        def roles(raw: dict) -> dict[str, RoleState]:
            return {name: RoleState.from_json(s) for name, s in raw.items()}

        return cls(roles(data["roles"]), tuple(roles(s) for s in data.get("unfinished", [])))


def read_applied(warehouse: Zone) -> AppliedPolicy | None:
    """The applied policy, or None before the first reconciliation."""
    try:
        return AppliedPolicy.from_json(warehouse.read_bytes(APPLIED_FILE).decode())
    except FileNotFoundError:
        return None


def write_applied(warehouse: Zone, applied: AppliedPolicy) -> None:
    """Replace the applied policy whole (a staged object moved over it)."""
    warehouse.write_bytes(APPLIED_FILE, applied.to_json().encode())


@dataclass(frozen=True)
class RemaskRequest:
    """One share partition (of one table, for one role) to mask again from the warehouse."""

    role: str
    table: str
    partition: HourPartition
    ids: tuple[str, ...] = field(default=(), compare=False)


def _partition_dir(role: str, partition: HourPartition) -> str:
    return posixpath.join(REMASK_DIR, role, partition.hive_path)


def request_remask(warehouse: Zone, role: str, table: str, partition: HourPartition) -> None:
    """Ask for the partition to be re-masked (the policy sensor turns this into a run)."""
    name = f"{table}@{uuid.uuid4().hex[:12]}"
    warehouse.write_bytes(posixpath.join(_partition_dir(role, partition), name), b"")


def pending_remasks(warehouse: Zone) -> list[RemaskRequest]:
    """Every outstanding request, one per (role, table, partition), sorted; cost ~ their number."""
    found: dict[tuple[str, str, HourPartition], list[str]] = {}
    root = warehouse.path(REMASK_DIR)
    for info in warehouse.list_files(REMASK_DIR, recursive=True):
        parts = posixpath.relpath(info.path, root).split("/")
        if len(parts) != 4 or "@" not in parts[3]:
            continue
        role, dt, hh, name = parts
        table, _, marker = name.partition("@")
        try:
            partition = HourPartition.from_hive(dt.removeprefix("dt="), hh.removeprefix("hh="))
        except ValueError:
            continue
        found.setdefault((role, table, partition), []).append(marker)
    return [
        RemaskRequest(role, table, partition, tuple(sorted(ids)))
        for (role, table, partition), ids in sorted(
            found.items(), key=lambda item: (item[0][2].start, item[0][0], item[0][1])
        )
    ]


def clear_remask(warehouse: Zone, role: str, table: str, partition: HourPartition) -> None:
    """Drop the requests for a partition that has just been shared under the applied policy."""
    directory = _partition_dir(role, partition)
    for info in warehouse.list_files(directory):
        if posixpath.basename(info.path).partition("@")[0] == table:
            warehouse.delete(info.key)
    if warehouse.is_local:  # object stores have no folders to leave behind
        with contextlib.suppress(OSError):
            os.rmdir(warehouse.path(directory))
            os.rmdir(posixpath.dirname(warehouse.path(directory)))


def delete_tree(zone: Zone, relative_dir: str) -> bool:
    """Delete a folder and everything below it; whether there was anything to delete."""
    removed = zone.delete_prefix(relative_dir)
    if zone.is_local:  # object stores have no folders to leave behind
        shutil.rmtree(zone.path(relative_dir), ignore_errors=True)
    return removed > 0
