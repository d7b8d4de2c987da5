"""What each role may read through the API, and the one folder each table is read from.

- A **masked role** (one that any masking policy names) is served from its share only,
  ``<share>/<role>/<table>/``: rows masked by the share runs with the policy's SQL, stored in
  masked-value order. Its DuckDB database may open nothing else, so no bug in a query can reach
  raw data, and a filter on a masked column can only ever meet masked values. A granted table
  that the share does not publish (the role has no ``share: true``, or the table is not one the
  share layer writes) is answered with ``not_shared``, never from the warehouse.
- An **unmasked role** reads the warehouse tables it is granted, ``<warehouse>/<table>/``, and
  nothing else.

The policy file is watched: an edit reaches the next request (a revoked grant at once); a policy
that no longer loads makes the data endpoints answer 503 until it is fixed, rather than serve
under rules nobody wrote.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.governance.policy import AccessPolicy, PolicyError, load_policy, no_grant_message
from lakehouse.governance.share_layout import shared_table
from lakehouse.governance.versions import role_version
from lakehouse.resources.storage import LakehouseStorage, Zone
from lakehouse.tables import DAILY_TABLES, HOURLY_TABLES, LAYER_TABLES

# The tables the share layer publishes for a sharing role (defs/share: hourly partitions).
SHARED_TABLES = frozenset(HOURLY_TABLES)
POLICY_CHECK_SECONDS = 1.0
# Listing requests to an object store: attempts and per-request timeout (then 503).
STORE_ATTEMPTS, STORE_TIMEOUT_SECONDS = 2, 5.0


class NotGranted(PermissionError):
    """The role has no grant on the table (or the role is not in the policy)."""


class NotShared(LookupError):
    """A masked role is granted the table, but its share does not hold it."""


class PolicyUnavailable(RuntimeError):
    """The policy file no longer loads; nothing is served until it does."""


@dataclass(frozen=True)
class TableSource:
    """Where a role's rows of one table are: a folder of hive partitions in a zone."""

    table: str
    zone: Zone
    folder: str  # relative to the zone root

    @property
    def hourly(self) -> bool:
        return self.table not in DAILY_TABLES

    @property
    def partition_columns(self) -> tuple[str, ...]:
        return ("dt", "hh") if self.hourly else ("dt",)


@dataclass(frozen=True)
class RoleAccess:
    """One role's view of the lakehouse under one policy."""

    role: str
    masked: bool
    version: str  # the role's policy version: part of every ETag
    granted: tuple[str, ...]
    sources: dict[str, TableSource]
    masking: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> column -> fn

    def source(self, table: str) -> TableSource:
        """The table's folder for this role; refuses ungranted and unshared tables by name."""
        if table not in self.granted:
            raise NotGranted(no_grant_message(self.role, table))
        if table not in self.sources:
            raise NotShared(not_shared_message(self.role, table))
        return self.sources[table]

    def allowed_directories(self) -> list[str]:
        """The local folders this role's database may read (none for object stores)."""
        return [s.zone.path(s.folder) for s in self.sources.values() if s.zone.is_local]


def not_shared_message(role: str, table: str) -> str:
    return (
        f"table {table!r} is granted to role {role!r} but is not in its masked share; a "
        "masked role is served from its share only (share: true in the policy; the share "
        f"publishes {', '.join(sorted(SHARED_TABLES))})"
    )


def is_masked(policy: AccessPolicy, role: str) -> bool:
    """Whether any masking policy names the role (in any table, today's or future ones)."""
    return any(role in m.roles for m in policy.masking)


def role_access(policy: AccessPolicy, role: str, storage: LakehouseStorage) -> RoleAccess:
    """The tables ``role`` may read and where from; raises :class:`NotGranted` if unknown."""
    if role not in policy.roles:
        raise NotGranted(f"role {role!r} is not in the access policy")
    spec = policy.role(role)
    granted = tuple(t for t in LAYER_TABLES if t in spec.tables)
    masked = is_masked(policy, role)
    sources: dict[str, TableSource] = {}
    if masked:
        if spec.share:
            share = _bounded(storage, storage.share())
            for table in granted:
                if table in SHARED_TABLES:
                    sources[table] = TableSource(table, share, shared_table(role, table))
    else:
        warehouse = _bounded(storage, storage.warehouse())
        sources = {t: TableSource(t, warehouse, t) for t in granted}
    masking = {t: {c: m.function for c, m in policy.masks_for(role, t).items()} for t in granted}
    return RoleAccess(role, masked, role_version(policy, role), granted, sources, masking)


def _bounded(storage: LakehouseStorage, zone: Zone) -> Zone:
    """An object-store zone whose listings give up fast: a request waits seconds, not minutes."""
    return storage.bounded(zone, attempts=STORE_ATTEMPTS, timeout_seconds=STORE_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class PolicySnapshot:
    """A loaded policy and the role views derived from it (``generation`` counts reloads)."""

    policy: AccessPolicy
    generation: int
    roles: dict[str, RoleAccess]


class PolicyWatcher:
    """The policy in force, re-read when its file changes (checked at most once a second)."""

    def __init__(self, path: Path, storage: LakehouseStorage):
        self.path, self.storage = path, storage
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._snapshot: PolicySnapshot | None = None
        self._error: str | None = None
        self._checked = 0.0
        self._generation = 0
        self._reload()
        if self._error:
            raise PolicyUnavailable(self._error)

    def current(self) -> PolicySnapshot:
        """The policy to apply now; raises :class:`PolicyUnavailable` if it does not load."""
        if time.monotonic() - self._checked >= POLICY_CHECK_SECONDS:
            with self._lock:
                if time.monotonic() - self._checked >= POLICY_CHECK_SECONDS:
                    self._reload()
        if self._error or self._snapshot is None:
            raise PolicyUnavailable(self._error or "no access policy loaded")
        return self._snapshot

    def access(self, role: str) -> tuple[PolicySnapshot, RoleAccess]:
        """The role's view under the current policy; raises :class:`NotGranted` if unknown."""
        snapshot = self.current()
        if role not in snapshot.roles:
            raise NotGranted(f"role {role!r} is not in the access policy")
        return snapshot, snapshot.roles[role]

    def _reload(self) -> None:
        self._checked = time.monotonic()
        try:
            stat = os.stat(self.path)
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except OSError as exc:
            self._error = f"cannot read the access policy {self.path}: {exc.strerror}"
            self._signature = None
            return
        if signature == self._signature and self._error is None:
            return
        try:
            policy = load_policy(self.path)
        except PolicyError as exc:
            self._error, self._signature = str(exc), signature
            return
        self._generation += 1
        roles = {name: role_access(policy, name, self.storage) for name in policy.roles}
        self._snapshot = PolicySnapshot(policy, self._generation, roles)
        self._signature, self._error = signature, None
