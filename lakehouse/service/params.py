"""Parsing and checking of request parameters beyond their types: formats, ranges, orders.

Every failure is a 422 naming the parameter; messages never repeat the value that was sent.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from lakehouse.rules import STRING_LIMITS
from lakehouse.service.errors import invalid

MAX_HOURLY_DAYS = 31
MAX_DAILY_DAYS = 366
DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000
VIN_MAX_BYTES = STRING_LIMITS["vin"]

_HOUR_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})(?::00(?::00)?)?(?:Z|\+00:00)?$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HH_RE = re.compile(r"^\d{1,2}$")
_ORDER_RE = re.compile(r"^([a-z_]{1,64})(?:\.(asc|desc))?$")


def parse_hour(value: str, name: str) -> datetime:
    """``YYYY-MM-DDTHH`` (``:00``, ``:00:00`` and a ``Z`` allowed): a UTC hour."""
    match = _HOUR_RE.match(value)
    if not match:
        raise invalid("query", name, "expected a UTC hour as YYYY-MM-DDTHH, e.g. 2025-09-17T23")
    try:
        day = date.fromisoformat(match.group(1))
        hour = int(match.group(2))
        if hour > 23:
            raise ValueError
    except ValueError:
        raise invalid("query", name, "not a real date and hour") from None
    return datetime(day.year, day.month, day.day, hour)


def parse_day(value: str, name: str, location: str = "query") -> date:
    """``YYYY-MM-DD``."""
    if not _DAY_RE.match(value):
        raise invalid(location, name, "expected a day as YYYY-MM-DD, e.g. 2025-09-17")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(location, name, "not a real date") from None


def parse_hh(value: str) -> str:
    """An hour of the day, ``0``-``23``, as the two digits of the ``hh=`` folder."""
    if not _HH_RE.match(value) or int(value) > 23:
        raise invalid("query", "hh", "expected an hour of the day, 00 to 23")
    return f"{int(value):02d}"


def hour_range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """``from``..``to`` as hours, both included; default: the 24 hours up to ``to`` (or now)."""
    last = parse_hour(end, "to") if end else _this_hour()
    first = parse_hour(start, "from") if start else last - timedelta(hours=23)
    if first > last:
        raise invalid("query", "from", "must not be after to")
    if last - first >= timedelta(days=MAX_HOURLY_DAYS):
        raise invalid("query", "to", f"a range of hours spans at most {MAX_HOURLY_DAYS} days")
    return first, last


def day_range(start: str | None, end: str | None) -> tuple[date, date]:
    """``from``..``to`` as days, both included; default: the 7 days up to ``to`` (or today)."""
    last = parse_day(end, "to") if end else _this_hour().date()
    first = parse_day(start, "from") if start else last - timedelta(days=6)
    if first > last:
        raise invalid("query", "from", "must not be after to")
    if (last - first).days >= MAX_DAILY_DAYS:
        raise invalid("query", "to", f"a range of days spans at most {MAX_DAILY_DAYS} days")
    return first, last


def check_vin(vin: str) -> str:
    """A VIN as a path segment: at most the intake's bound, valid text."""
    try:
        size = len(vin.encode("utf-8"))
    except UnicodeEncodeError:
        raise invalid("path", "vin", "must be valid UTF-8 text") from None
    if size > VIN_MAX_BYTES:
        raise invalid("path", "vin", f"a VIN is at most {VIN_MAX_BYTES} bytes")
    return vin


def parse_order(value: str | None, columns: dict[str, str]) -> tuple[str, bool] | None:
    """``column`` or ``column.asc|desc`` among ``columns``: (name, descending)."""
    if value is None:
        return None
    match = _ORDER_RE.match(value)
    if not match or match.group(1) not in columns:
        raise invalid(
            "query",
            "order",
            f"expected column or column.desc, with column one of: {', '.join(columns)}",
        )
    return match.group(1), match.group(2) == "desc"


def _this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
