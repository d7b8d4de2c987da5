"""Hourly partitions and their mapping to the hive layout ``dt=YYYY-MM-DD/hh=HH``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"
# The first hour the lakehouse keeps: a deployment setting, read when the code location loads
# (partitions are part of the definitions). The default is the sample data's month, so a
# new install does not show thousands of empty hours before it.
START_ENV = "LAKEHOUSE_PARTITIONS_START"
DEFAULT_START = "2025-09-01-00:00"
PARTITION_START = os.environ.get(START_ENV, DEFAULT_START)

# end_offset=1 keeps the hour in progress addressable: files arrive during it, and a
# near-real-time view of the current hour is part of the product.
hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=PARTITION_START, timezone="UTC", end_offset=1
)

# A day is the `dt` of its 24 arrival hours (UTC), so daily tables line up with hourly ones.
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITION_START[:10], timezone="UTC")

_KEY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}:00$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BadPartitionKey(ValueError):
    """A partition key that is not an hour in the ``YYYY-MM-DD-HH:00`` form."""


@dataclass(frozen=True)
class HourPartition:
    """One arrival hour; the unit every hourly layer reads and replaces."""

    start: datetime

    @classmethod
    def from_key(cls, key: str) -> HourPartition:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise BadPartitionKey(
                f"partition key {key!r} is not an hour of the form YYYY-MM-DD-HH:00"
            )
        try:
            return cls(datetime.strptime(key, PARTITION_KEY_FORMAT))
        except ValueError as exc:
            raise BadPartitionKey(f"partition key {key!r} is not a valid hour: {exc}") from None

    @classmethod
    def from_hive(cls, dt: str, hh: str) -> HourPartition:
        return cls.from_key(f"{dt}-{hh}:00")

    @property
    def key(self) -> str:
        return self.start.strftime(PARTITION_KEY_FORMAT)

    @property
    def dt(self) -> str:
        return self.start.strftime("%Y-%m-%d")

    @property
    def hh(self) -> str:
        return self.start.strftime("%H")

    @property
    def hive_path(self) -> str:
        """Relative directory of the hour inside a table: ``dt=YYYY-MM-DD/hh=HH``."""
        return f"dt={self.dt}/hh={self.hh}"

    @property
    def stat_hour(self) -> str:
        """The seed's ``stat_hour`` label, ``'YYYY-MM-DD HH'``."""
        return f"{self.dt} {self.hh}"

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=1)


@dataclass(frozen=True)
class DayPartition:
    """One UTC day: the ``dt`` shared by its 24 arrival hours; the unit of the daily layers."""

    start: datetime

    @classmethod
    def from_key(cls, key: str) -> DayPartition:
        if not isinstance(key, str) or not _DAY_RE.match(key):
            raise BadPartitionKey(f"partition key {key!r} is not a day of the form YYYY-MM-DD")
        try:
            return cls(datetime.strptime(key, "%Y-%m-%d"))
        except ValueError as exc:
            raise BadPartitionKey(f"partition key {key!r} is not a valid day: {exc}") from None

    @property
    def key(self) -> str:
        return self.start.strftime("%Y-%m-%d")

    @property
    def dt(self) -> str:
        return self.key

    @property
    def hive_path(self) -> str:
        """Relative directory of the day inside a daily table: ``dt=YYYY-MM-DD``."""
        return f"dt={self.dt}"

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)
