"""Policy versions: a digest of what a role may see, so a policy change can be found and applied.

A role's *version* digests its grants and the masking that applies to it in each granted table;
a table's *masking version* digests only the masking of that one table for that role, and is
what each shared partition records (a partition is stale when its table's masking moved, not
when another table was granted). Both are computed from a canonical form (sorted tables,
columns and arguments; no descriptions, comments, policy names or YAML layout), so cosmetic
edits of ``policy.yaml`` change neither.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from lakehouse.governance.policy import AccessPolicy

DIGEST_CHARS = 16


def _digest(canonical: object) -> str:
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def _masking(policy: AccessPolicy, role: str, table: str) -> dict[str, list[object]]:
    """Column -> [function, sorted args] for the masks that apply to ``role`` in ``table``."""
    return {
        column: [m.function, sorted(m.args.items())]
        for column, m in policy.masks_for(role, table).items()
    }


def masking_version(policy: AccessPolicy, role: str, table: str) -> str:
    """Digest of how ``table`` is masked for ``role``: what a shared partition was masked under."""
    return _digest({"table": table, "masking": _masking(policy, role, table)})


def role_version(policy: AccessPolicy, role: str) -> str:
    """Digest of everything ``role`` may see: its grants and their masking."""
    tables = sorted(set(policy.role(role).tables))
    return _digest({t: _masking(policy, role, t) for t in tables})


@dataclass(frozen=True)
class RoleState:
    """What a policy says about one role, as the reconciliation compares and records it."""

    version: str
    share: bool
    tables: dict[str, str]  # granted table -> its masking version

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "share": self.share, "tables": dict(self.tables)}

    @classmethod
    def from_json(cls, data: dict) -> RoleState:
        return cls(str(data["version"]), bool(data["share"]), dict(data["tables"]))


def policy_snapshot(policy: AccessPolicy) -> dict[str, RoleState]:
    """Role -> its state under ``policy``: the unit the reconciliation applies and records."""
    return {
        name: RoleState(
            role_version(policy, name),
            role.share,
            {t: masking_version(policy, name, t) for t in sorted(set(role.tables))},
        )
        for name, role in sorted(policy.roles.items())
    }
