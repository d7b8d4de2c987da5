"""Keyset cursors: where the next page starts, opaque to clients, checked when they come back.

Pages are ordered by a list of sort keys that ends with every column of the table, so two rows
that tie on all keys are identical and interchangeable. A cursor holds the sort-key values of
the last row served and how many rows with exactly those values were served already (``skip``):
the next page is every row from those values on, less the ``skip`` identical ones. It stays
correct while new partitions land and never repeats or loses a row of a partition that did not
change. For a masked role every value in it comes from the masked share, so a cursor can carry
nothing the role may not see.

A cursor also carries a fingerprint of the query it belongs to; one presented to another query
(other table, filters, order or role) is refused rather than silently misread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

MAX_CURSOR_CHARS = 4096
MAX_TEXT_CHARS = 1024


class BadCursor(ValueError):
    """A cursor that is malformed or was issued for another query."""


@dataclass(frozen=True)
class Cursor:
    values: tuple[Any, ...]
    skip: int


def fingerprint(*parts: object) -> str:
    """A short hash of what a cursor is bound to."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def jsonable(value: Any) -> Any:
    """A sort-key value as JSON can carry it (times as ISO 8601)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def encode(values: Sequence[Any], skip: int, query: str) -> str:
    """The opaque cursor for the row after ``values`` (NaN and infinities kept exactly)."""
    payload = json.dumps({"q": query, "v": [jsonable(v) for v in values], "s": skip})
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(text: str, query: str, types: Sequence[str]) -> Cursor:
    """Parse and check a cursor against the query it must belong to and its key types."""
    if len(text) > MAX_CURSOR_CHARS:
        raise BadCursor("cursor is too long; use the next_cursor of the previous page as is")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("cursor is not one this API issued") from None
    if not isinstance(data, dict) or set(data) != {"q", "v", "s"}:
        raise BadCursor("cursor is not one this API issued")
    if data["q"] != query:
        raise BadCursor(
            "cursor belongs to another query (other path, filters, order or key): use it only "
            "with the parameters that returned it"
        )
    values, skip = data["v"], data["s"]
    if not isinstance(values, list) or len(values) != len(types):
        raise BadCursor("cursor is not one this API issued")
    if not isinstance(skip, int) or isinstance(skip, bool) or not 0 <= skip <= 1_000_000_000:
        raise BadCursor("cursor is not one this API issued")
    return Cursor(tuple(_check(v, t) for v, t in zip(values, types, strict=True)), skip)


def _check(value: Any, sql_type: str) -> Any:
    """The value as DuckDB gets it, if it fits the key's type."""
    if value is None:
        return None
    ok = {
        "VARCHAR": isinstance(value, str) and len(value) <= MAX_TEXT_CHARS,
        "DOUBLE": isinstance(value, int | float) and not isinstance(value, bool),
        "BIGINT": isinstance(value, int) and not isinstance(value, bool),
        "INTEGER": isinstance(value, int) and not isinstance(value, bool),
        "BOOLEAN": isinstance(value, bool),
        "TIMESTAMP": isinstance(value, str) and len(value) <= 40,
    }.get(sql_type, False)
    if not ok:
        raise BadCursor("cursor is not one this API issued")
    if sql_type == "TIMESTAMP":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise BadCursor("cursor is not one this API issued") from None
    if sql_type == "DOUBLE":
        return float(value)
    return value


def same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Whether two key tuples are equal as the engine compares them (NaN equals NaN)."""
    return len(a) == len(b) and all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        or x == y
        for x, y in zip(a, b, strict=True)
    )


def next_cursor(
    keys: Sequence[Sequence[Any]], limit: int, current: Cursor | None, query: str
) -> str | None:
    """The cursor after a page, given the sort keys of the rows fetched (``limit`` + 1 at most).

    ``skip`` counts the rows served that tie with the last one, including those served by
    earlier pages when the whole page is one run of identical rows.
    """
    if len(keys) <= limit:
        return None
    page = keys[:limit]
    last = tuple(page[-1])
    ties = 0
    for row in reversed(page):
        if not same(row, last):
            break
        ties += 1
    if ties == len(page) and current is not None and same(current.values, last):
        ties += current.skip
    return encode(last, ties, query)
