"""Deployment settings of the daily layer, read when the code location loads."""

from __future__ import annotations

import os

GRACE_ENV = "LAKEHOUSE_DAY_GRACE_HOURS"
NIGHTLY_CRON_ENV = "LAKEHOUSE_NIGHTLY_CRON"
NIGHTLY_TIMEZONE_ENV = "LAKEHOUSE_NIGHTLY_TIMEZONE"

DEFAULT_GRACE_HOURS = 2
DEFAULT_NIGHTLY_CRON = "30 0 * * *"
DEFAULT_NIGHTLY_TIMEZONE = "UTC"


def grace_hours() -> int:
    """Hours after a day closes (UTC midnight) before it is built even with hours missing."""
    hours = int(os.environ.get(GRACE_ENV, DEFAULT_GRACE_HOURS))
    if not 0 <= hours <= 23:
        raise ValueError(f"{GRACE_ENV} must be between 0 and 23 hours, got {hours}")
    return hours


def nightly_cron() -> str:
    return os.environ.get(NIGHTLY_CRON_ENV, DEFAULT_NIGHTLY_CRON)


def nightly_timezone() -> str:
    return os.environ.get(NIGHTLY_TIMEZONE_ENV, DEFAULT_NIGHTLY_TIMEZONE)
