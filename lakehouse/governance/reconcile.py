"""Apply the policy to what has been shared already: a revoke revokes, a stronger mask re-masks.

For each role, compared with the policy last applied (``state.AppliedPolicy``):

- a role that no longer shares (share turned off, or the role removed) loses its whole share
  folder and its role catalog;
- a table the role may no longer read loses its share folder, and its role-catalog view turns
  into the access error;
- a table whose masking for the role changed has every shared hour withdrawn (deleted) at once,
  and a re-mask requested for each hour the warehouse still has; the policy sensor turns the
  requests into runs, a bounded number per tick.

The new policy is recorded as applied *before* anything is withdrawn, so a share run still
masking under the old policy fails its own check instead of publishing after the withdrawal; the
old state is kept as unfinished until the withdrawal completes, so an interrupted reconciliation
resumes where it stopped. The first reconciliation of a deployment (nothing applied yet) reads
each shared file's recorded masking version instead.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from dataclasses import dataclass, field

from lakehouse.governance.policy import AccessPolicy
from lakehouse.governance.role_catalog import ensure_role_catalog
from lakehouse.governance.share_layout import (
    MASKING_VERSION_KEY,
    recorded_labels,
    shared_partitions,
    shared_relpath,
    shared_table,
)
from lakehouse.governance.state import (
    AppliedPolicy,
    delete_tree,
    read_applied,
    request_remask,
    write_applied,
)
from lakehouse.governance.versions import RoleState, policy_snapshot
from lakehouse.partitions import HourPartition
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import LakehouseStorage, Zone
from lakehouse.warehouse.catalog_file import first_line, remove_catalog
from lakehouse.warehouse.partition_store import partition_relpath

ROLE_GONE = "role no longer shares"
GRANT_REVOKED = "grant revoked"
MASKING_CHANGED = "masked under an older policy"


@dataclass(frozen=True)
class Withdrawal:
    """Shared data deleted for one role: a table's hours, or the whole share (``table`` None)."""

    role: str
    table: str | None
    hours: int
    reason: str
    remask_requested: int = 0


@dataclass
class ReconcileReport:
    """What a reconciliation found and did, for the sensor's log and ``lakehouse policy apply``."""

    versions: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    withdrawals: list[Withdrawal] = field(default_factory=list)
    catalogs: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        lines = []
        for role, (old, new) in sorted(self.versions.items()):
            if old is None:
                lines.append(f"{role}: policy version {new} applied (first reconciliation)")
            elif new is None:
                lines.append(f"{role}: no longer in the policy (was version {old})")
            elif old != new:
                lines.append(f"{role}: policy version {old} -> {new}")
        for w in self.withdrawals:
            where = f"{w.role}/{w.table}" if w.table else f"{w.role} (whole share)"
            line = f"withdrew {where}: {w.hours} shared hour(s), {w.reason}"
            if w.remask_requested:
                line += f"; re-mask requested for {w.remask_requested}"
            lines.append(line)
        lines += [
            f"role catalog {role}: {status}"
            for role, status in sorted(self.catalogs.items())
            if status != "unchanged"
        ]
        return lines


def reconcile(
    policy: AccessPolicy, storage: LakehouseStorage, catalog: CatalogResource
) -> ReconcileReport:
    """Bring the shares and role catalogs in line with ``policy``; cheap when nothing changed."""
    warehouse, share = storage.warehouse(), storage.share()
    wanted = policy_snapshot(policy)
    previous = read_applied(warehouse)
    report = ReconcileReport()
    if previous is not None and previous.roles == wanted and not previous.unfinished:
        for role, state in wanted.items():
            if state.share:
                report.catalogs[role] = _ensure_catalog(catalog, policy, role, share)
        return report

    older = (previous.roles, *previous.unfinished) if previous is not None else ()
    write_applied(warehouse, AppliedPolicy(wanted, older))  # share runs under `older` now fail
    for role in sorted(set(wanted).union(*older)):
        before = previous.roles.get(role) if previous is not None else None
        after = wanted.get(role)
        report.versions[role] = (
            before.version if before else None,
            after.version if after else None,
        )
        if after is None or not after.share:
            _withdraw_role(report, catalog, share, role)
            continue
        _withdraw_tables(report, warehouse, share, role, after, older, bootstrap=previous is None)
        report.catalogs[role] = _ensure_catalog(catalog, policy, role, share)
    write_applied(warehouse, AppliedPolicy(wanted))
    return report


def _withdraw_role(
    report: ReconcileReport, catalog: CatalogResource, share: Zone, role: str
) -> None:
    hours = sum(len(h) for h in shared_partitions(share, role).values())
    if delete_tree(share, role):
        report.withdrawals.append(Withdrawal(role, None, hours, ROLE_GONE))
    if remove_catalog(catalog.role_path(role)):
        report.catalogs[role] = "removed"


def _withdraw_tables(
    report: ReconcileReport,
    warehouse: Zone,
    share: Zone,
    role: str,
    wanted: RoleState,
    older: tuple[dict[str, RoleState], ...],
    bootstrap: bool,
) -> None:
    for table, hours in shared_partitions(share, role).items():
        if table not in wanted.tables:
            delete_tree(share, shared_table(role, table))
            report.withdrawals.append(Withdrawal(role, table, len(hours), GRANT_REVOKED))
            continue
        current = wanted.tables[table]
        if bootstrap:
            stale = [h for h in hours if _recorded_masking(share, role, table, h) != current]
        elif any(_masked_otherwise(state.get(role), table, current) for state in older):
            stale = hours
        else:
            continue
        requested = 0
        for hour in stale:
            _withdraw_hour(share, role, table, hour)
            if warehouse.exists(partition_relpath(table, hour)):
                request_remask(warehouse, role, table, hour)
                requested += 1
        if stale:
            report.withdrawals.append(
                Withdrawal(role, table, len(stale), MASKING_CHANGED, requested)
            )


def _masked_otherwise(before: RoleState | None, table: str, masking: str) -> bool:
    """Whether hours shared under ``before`` may have been masked other than by ``masking``."""
    return before is None or not before.share or before.tables.get(table) != masking


def _recorded_masking(share: Zone, role: str, table: str, hour: HourPartition) -> str | None:
    try:
        return recorded_labels(share, shared_relpath(role, table, hour)).get(MASKING_VERSION_KEY)
    except (OSError, ValueError):  # unreadable: treat as stale, it is re-masked from the source
        return None


def _withdraw_hour(share: Zone, role: str, table: str, hour: HourPartition) -> None:
    path = share.path(shared_relpath(role, table, hour))
    share.delete(shared_relpath(role, table, hour))
    if share.is_local:  # leave no empty hour folders behind
        with contextlib.suppress(OSError):
            os.rmdir(posixpath.dirname(path))
            os.rmdir(posixpath.dirname(posixpath.dirname(path)))


def _ensure_catalog(catalog: CatalogResource, policy: AccessPolicy, role: str, share: Zone) -> str:
    """Write the role's catalog if its grants changed; a failure is reported, not raised."""
    try:
        update = ensure_role_catalog(catalog.role_path(role), policy, role, share)
    except Exception as exc:  # the share is already right; the catalog is retried next time
        return f"failed: {first_line(exc)}"
    if update.skipped:
        return f"{update.status}; views skipped: {update.skipped}"
    return update.status
