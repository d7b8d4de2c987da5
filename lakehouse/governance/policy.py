"""The declarative access policy (``policy.yaml``): roles, grants, and masking bound to columns.

The policy is checked when the code location loads: a role, table, column or function that
does not exist, a name that is not a plain identifier, or two policies masking the same column
for the same role, all stop the definitions from loading with a message that says which.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lakehouse.governance.masking import MaskingConfigError, check_function, mask_expression
from lakehouse.paths import resolve_local
from lakehouse.sql_text import quote_identifier
from lakehouse.tables import TABLE_SCHEMAS

POLICY_ENV = "LAKEHOUSE_POLICY_PATH"
DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policy.yaml"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class PolicyError(ValueError):
    """The policy file is malformed or names something that does not exist."""


class AccessDenied(PermissionError):
    """A role asked for a table it has no grant on, or the role does not exist."""


@dataclass(frozen=True)
class MaskingPolicy:
    name: str
    column: str
    function: str
    args: dict[str, int]
    roles: tuple[str, ...]

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.name}: {self.function}({args})"


@dataclass(frozen=True)
class Role:
    name: str
    tables: tuple[str, ...]
    description: str = ""
    share: bool = False


@dataclass(frozen=True)
class AccessPolicy:
    roles: dict[str, Role]
    masking: tuple[MaskingPolicy, ...] = field(default_factory=tuple)

    def role(self, name: str) -> Role:
        if name not in self.roles:
            raise AccessDenied(f"unknown role {name!r}; the policy defines {sorted(self.roles)}")
        return self.roles[name]

    def check_grant(self, role: str, table: str) -> None:
        if table not in self.role(role).tables:
            raise AccessDenied(no_grant_message(role, table))

    def masks_for(self, role: str, table: str) -> dict[str, MaskingPolicy]:
        """Column -> the policy that masks it for ``role`` in ``table``."""
        columns = TABLE_SCHEMAS[table].names
        return {m.column: m for m in self.masking if role in m.roles and m.column in columns}

    def needs_salt(self, role: str, table: str) -> bool:
        return any(m.function == "hash" for m in self.masks_for(role, table).values())

    def select_sql(
        self, role: str, table: str, source: str, partition_columns: Sequence[str] = ()
    ) -> str:
        """``SELECT`` of every column of ``table`` as ``role`` may see it, from ``source``.

        ``partition_columns`` (e.g. ``dt``, ``hh``) are passed through after the table's own.
        When anything is masked the rows are ordered by the masked values (``ORDER BY ALL``):
        the warehouse stores rows in raw-value order, and a row's position must not tell a
        role what the mask hides. Raises :class:`AccessDenied` when the role has no grant.
        """
        self.check_grant(role, table)
        masks = self.masks_for(role, table)
        columns = []
        for field_ in TABLE_SCHEMAS[table]:
            name = quote_identifier(field_.name)
            if field_.name in masks:
                m = masks[field_.name]
                expression = mask_expression(m.function, field_.name, m.args)
                columns.append(f"CAST({expression} AS {sql_type(field_.type)}) AS {name}")
            else:
                columns.append(name)
        columns.extend(quote_identifier(c) for c in partition_columns)
        order = " ORDER BY ALL" if masks else ""
        return f"SELECT {', '.join(columns)} FROM {source}{order}"

    def masked_roles_by_column(self, table: str) -> dict[str, list[str]]:
        """For the UI: column -> ``role: policy`` lines, for every column masked for someone."""
        shown: dict[str, list[str]] = {}
        for m in self.masking:
            if m.column in TABLE_SCHEMAS[table].names:
                shown.setdefault(m.column, []).extend(f"{r}: {m.describe()}" for r in m.roles)
        return shown


_SQL_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp[us]": "TIMESTAMP",
    "int64": "BIGINT",
}


def sql_type(arrow_type: object) -> str:
    """The DuckDB type of a layer column's Arrow type."""
    return _SQL_TYPES[str(arrow_type)]


def no_grant_message(role: str, table: str) -> str:
    """The one wording of a refused table, wherever it is refused (Python or SQL)."""
    return f"role {role!r} has no grant on table {table!r}"


def policy_path(path: str | os.PathLike | None = None) -> Path:
    """The policy file in force: ``path``, ``$LAKEHOUSE_POLICY_PATH`` or the repository's."""
    return Path(path) if path else resolve_local(os.environ.get(POLICY_ENV) or DEFAULT_POLICY)


def load_policy(path: str | os.PathLike | None = None) -> AccessPolicy:
    """Read and check the policy file: ``path``, ``$LAKEHOUSE_POLICY_PATH`` or the repository's.

    A relative ``$LAKEHOUSE_POLICY_PATH`` is taken from the project home, like every default
    path, so commands agree on the policy wherever they run from.
    """
    source = policy_path(path)
    try:
        data = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read access policy {source}: {exc}") from None
    try:
        return _parse(data)
    except (PolicyError, MaskingConfigError) as exc:
        raise PolicyError(f"invalid access policy {source}: {exc}") from None


def _name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise PolicyError(f"{kind} {value!r} is not a plain lower-case identifier")
    return value


def _parse(data: object) -> AccessPolicy:
    if not isinstance(data, dict) or not isinstance(data.get("roles"), dict):
        raise PolicyError("expected a mapping with a 'roles' mapping")
    unknown_keys = set(data) - {"roles", "masking_policies"}
    if unknown_keys:
        raise PolicyError(f"unknown top-level keys {sorted(unknown_keys)}")
    roles = {}
    for role_name, spec in data["roles"].items():
        _name("role", role_name)
        tables = tuple((spec or {}).get("tables") or ())
        for table in tables:
            if table not in TABLE_SCHEMAS:
                raise PolicyError(f"role {role_name!r} is granted unknown table {table!r}")
        spec = spec or {}
        unknown = set(spec) - {"tables", "description", "share"}
        if unknown:
            raise PolicyError(f"role {role_name!r} has unknown keys {sorted(unknown)}")
        roles[role_name] = Role(
            role_name, tables, spec.get("description", ""), bool(spec.get("share", False))
        )

    all_columns = {name for schema in TABLE_SCHEMAS.values() for name in schema.names}
    policies, bound = [], set()
    for policy_name, spec in (data.get("masking_policies") or {}).items():
        _name("masking policy", policy_name)
        spec = spec or {}
        column = spec.get("column")
        if column not in all_columns:
            raise PolicyError(f"masking policy {policy_name!r} names unknown column {column!r}")
        args = dict(spec.get("args") or {})
        check_function(spec.get("function"), args)
        types = {str(s.field(column).type) for s in TABLE_SCHEMAS.values() if column in s.names}
        if spec["function"] != "nullify" and types != {"string"}:
            raise PolicyError(
                f"masking policy {policy_name!r}: {spec['function']} needs a text column, "
                f"{column!r} is {sorted(types)}"
            )
        policy_roles = tuple(spec.get("roles") or ())
        if not policy_roles:
            raise PolicyError(f"masking policy {policy_name!r} applies to no role")
        for role in policy_roles:
            if role not in roles:
                raise PolicyError(f"masking policy {policy_name!r} names unknown role {role!r}")
            if (role, column) in bound:
                raise PolicyError(f"column {column!r} is masked twice for role {role!r}")
            bound.add((role, column))
        policies.append(MaskingPolicy(policy_name, column, spec["function"], args, policy_roles))
    return AccessPolicy(roles, tuple(policies))
