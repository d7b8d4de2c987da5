"""Masking functions as DuckDB SQL expressions: one implementation for every exit.

The IO manager, the role catalogs and the shares all mask by running these expressions in
DuckDB, so a value cannot be masked one way in one place and another way elsewhere. Lengths and
slices count characters, not bytes; a string too short to keep its visible part is masked
whole; NULL stays NULL. The hash salt is bound as a session variable, never spliced into SQL
text, so it does not appear in statements, logs or catalog files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import duckdb

from lakehouse.sql_text import quote_identifier

MASK_CHAR = "*"
SALT_ENV = "LAKEHOUSE_MASKING_SALT"
SALT_VARIABLE = "lakehouse_masking_salt"


class MaskingConfigError(ValueError):
    """A masking function or argument that does not exist or does not fit."""


def _stars(length_sql: str) -> str:
    return f"repeat('{MASK_CHAR}', {length_sql})"


def keep_first_last(column: str, first: int, last: int) -> str:
    c = quote_identifier(column)
    return (
        f"CASE WHEN {c} IS NULL THEN NULL "
        f"WHEN length({c}) <= {first + last} THEN {_stars(f'length({c})')} "
        f"ELSE left({c}, {first}) || {_stars(f'length({c}) - {first + last}')} "
        f"|| right({c}, {last}) END"
    )


def keep_first(column: str, first: int) -> str:
    return keep_first_last(column, first, 0)


def keep_last(column: str, last: int) -> str:
    return keep_first_last(column, 0, last)


def salted_hash(column: str) -> str:
    c = quote_identifier(column)
    return f"CASE WHEN {c} IS NULL THEN NULL ELSE sha256(getvariable('{SALT_VARIABLE}') || {c}) END"


def nullify(column: str) -> str:
    return "NULL"


# function name -> (SQL builder, the integer arguments it takes)
FUNCTIONS: dict[str, tuple[Callable[..., str], tuple[str, ...]]] = {
    "keep_first_last": (keep_first_last, ("first", "last")),
    "keep_first": (keep_first, ("first",)),
    "keep_last": (keep_last, ("last",)),
    "hash": (salted_hash, ()),
    "nullify": (nullify, ()),
}


def check_function(name: str, args: Mapping[str, object]) -> None:
    """Refuse unknown functions and missing, extra or negative arguments."""
    if name not in FUNCTIONS:
        raise MaskingConfigError(
            f"unknown masking function {name!r}; use one of {sorted(FUNCTIONS)}"
        )
    expected = set(FUNCTIONS[name][1])
    if set(args) != expected:
        raise MaskingConfigError(
            f"masking function {name!r} takes arguments {sorted(expected)}, got {sorted(args)}"
        )
    for key, value in args.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MaskingConfigError(f"{name}: argument {key!r} must be a whole number >= 0")


def mask_expression(name: str, column: str, args: Mapping[str, int]) -> str:
    """The SQL expression that masks ``column`` with function ``name``."""
    check_function(name, args)
    builder, _ = FUNCTIONS[name]
    return builder(column, **args)


def bind_salt(con: duckdb.DuckDBPyConnection) -> None:
    """Give the connection the hash salt, from the environment, as a session variable."""
    salt = os.environ.get(SALT_ENV)
    if not salt:
        raise MaskingConfigError(
            f"a hash masking policy is in force but {SALT_ENV} is not set; refusing to hash "
            "without a secret salt"
        )
    con.execute(f"SET VARIABLE {SALT_VARIABLE} = ?", [salt])
