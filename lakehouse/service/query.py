"""SQL for one page of rows, from validated parameters: identifiers from the catalog, values bound.

Nothing a caller sends is spliced into the text: column names come from the table schemas
(``lakehouse.tables``) and are quoted; every value (a VIN, cursor values, the limit) is a named
parameter. The relation read (``source``) is built by the engine from the listed partition files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lakehouse.governance.policy import sql_type
from lakehouse.rules import STRING_LIMITS
from lakehouse.service.pagination import Cursor
from lakehouse.sql_text import quote_identifier
from lakehouse.tables import DAILY_TABLES, TABLE_SCHEMAS

# Text columns that may hold more than this many bytes are keyed by their MD5 when they only
# break ties, so a cursor stays short (ODS raw_payload may be 64 KiB).
LONG_TEXT_BYTES = 1024


@dataclass(frozen=True)
class SortKey:
    """One ORDER BY term: a catalog column (or its MD5), its DuckDB type and direction."""

    column: str
    sql_type: str
    descending: bool = False
    hashed: bool = False

    @property
    def expression(self) -> str:
        column = quote_identifier(self.column)
        return f"md5({column})" if self.hashed else column


def partition_columns(table: str) -> tuple[str, ...]:
    return ("dt",) if table in DAILY_TABLES else ("dt", "hh")


def table_columns(table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the table's own columns, in schema order."""
    return [(f.name, sql_type(f.type)) for f in TABLE_SCHEMAS[table]]


def all_columns(table: str) -> list[tuple[str, str]]:
    """The table's columns and its partition columns (``dt``, ``hh``: text)."""
    return table_columns(table) + [(c, "VARCHAR") for c in partition_columns(table)]


def orderable(table: str) -> dict[str, str]:
    """Columns a caller may order by: all but long text (name -> type)."""
    return {
        name: kind
        for name, kind in all_columns(table)
        if STRING_LIMITS.get(name, 0) <= LONG_TEXT_BYTES
    }


def sort_keys(table: str, order: tuple[str, bool] | None = None) -> list[SortKey]:
    """The caller's order (if any), then partition, then every column: a total order."""
    keys = []
    if order is not None:
        name, descending = order
        keys.append(SortKey(name, orderable(table)[name], descending))
    for name in partition_columns(table):
        keys.append(SortKey(name, "VARCHAR"))
    for name, kind in table_columns(table):
        hashed = STRING_LIMITS.get(name, 0) > LONG_TEXT_BYTES
        keys.append(SortKey(name, "VARCHAR" if hashed else kind, hashed=hashed))
    return keys


def _keyset(keys: Sequence[SortKey], cursor: Cursor, params: dict[str, Any]) -> str:
    """Rows at or after the cursor's key values in the page order (NULLs last either way).

    Rows equal on every key are the ``skip`` ones, dropped by OFFSET.
    """
    greater, equal = [], []
    for i, (key, value) in enumerate(zip(keys, cursor.values, strict=True)):
        expr = key.expression
        if value is None:  # nothing sorts after NULL but other NULLs
            greater.append("FALSE")
            equal.append(f"{expr} IS NULL")
            continue
        name = f"c{i}"
        params[name] = value
        bound = f"CAST(${name} AS {key.sql_type})"
        op = "<" if key.descending else ">"
        greater.append(f"({expr} {op} {bound} OR {expr} IS NULL)")
        equal.append(f"{expr} = {bound}")
    terms = []
    for i in range(len(keys)):
        terms.append(" AND ".join([*equal[:i], greater[i]]))
    terms.append(" AND ".join(equal))
    return "(" + " OR ".join(f"({t})" for t in terms) + ")"


def page_sql(
    source: str,
    columns: Sequence[str],
    keys: Sequence[SortKey],
    filters: dict[str, str],
    cursor: Cursor | None,
    limit: int,
) -> tuple[str, dict[str, Any]]:
    """``SELECT`` of ``columns`` then the sort keys (``__k0``...), one page plus one row.

    ``filters`` maps a catalog column to the name of a bound parameter it must equal; the
    caller binds the values. Returns the SQL and the parameters it binds itself.
    """
    params: dict[str, Any] = {"page_limit": limit + 1, "page_skip": cursor.skip if cursor else 0}
    select = [quote_identifier(c) for c in columns]
    select += [f"{k.expression} AS __k{i}" for i, k in enumerate(keys)]
    where = [f"{quote_identifier(column)} = ${param}" for column, param in filters.items()]
    if cursor is not None:
        where.append(_keyset(keys, cursor, params))
    order = ", ".join(
        f"__k{i} {'DESC' if k.descending else 'ASC'} NULLS LAST" for i, k in enumerate(keys)
    )
    sql = f"SELECT {', '.join(select)} FROM {source}"
    if where:
        sql += f" WHERE {' AND '.join(where)}"
    sql += f" ORDER BY {order} LIMIT $page_limit OFFSET $page_skip"
    return sql, params
