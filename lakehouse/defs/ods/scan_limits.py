"""How much one DataScan tick may do: settings read at each tick, and the tick's own budget.

Dagster gives a sensor tick 60 s; a tick that overruns is lost, and since the same work is still
due, the next one overruns too and discovery stops for good. So a tick bounds its own work by a
wall-clock budget and by counts (listing pages, footer reads), and carries the rest over to the
next tick through its cursor. Store requests made by the tick are bounded too (few attempts, a
short timeout), so one stuck request cannot push it past the limit.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from lakehouse.defs.ods.discovery import DEFAULT_LATENESS_HOURS

# Attempts per store operation made by a tick (each gets `request_timeout_seconds`): a fault
# that outlasts them is not worth waiting for inside a tick; the next tick tries again.
TICK_ATTEMPTS = 3
# The budget is capped so that a request in flight when it runs out (TICK_ATTEMPTS x timeout)
# and the state write after it still end well before Dagster's 60 s limit.
MAX_BUDGET_SECONDS = 25.0
# Share of the budget the listing may use, so footer reads always get time: every tick makes
# progress, even when the listing alone would fill the budget.
LISTING_SHARE = 0.6

ENV = {
    "lateness_hours": "LAKEHOUSE_DATASCAN_LATENESS_HOURS",
    "budget_seconds": "LAKEHOUSE_DATASCAN_BUDGET_SECONDS",
    "max_list_pages": "LAKEHOUSE_DATASCAN_MAX_LIST_PAGES",
    "max_footer_reads": "LAKEHOUSE_DATASCAN_MAX_FOOTER_READS",
    "request_timeout_seconds": "LAKEHOUSE_DATASCAN_REQUEST_TIMEOUT_SECONDS",
    "run_retries": "LAKEHOUSE_DATASCAN_RUN_RETRIES",
    "retry_cooldown_seconds": "LAKEHOUSE_DATASCAN_RETRY_COOLDOWN_SECONDS",
}


@dataclass(frozen=True)
class ScanSettings:
    """Deployment settings of the DataScan sensor (``LAKEHOUSE_DATASCAN_*``, see the README)."""

    lateness_hours: int = DEFAULT_LATENESS_HOURS
    budget_seconds: float = 20.0
    max_list_pages: int = 200
    max_footer_reads: int = 1000
    request_timeout_seconds: float = 4.0
    run_retries: int = 3
    retry_cooldown_seconds: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ScanSettings:
        """Settings from the environment, read per tick so a changed value needs no reload."""
        values: dict[str, float | int] = {}
        for name, variable in ENV.items():
            if environ.get(variable):
                kind = type(getattr(cls, name))
                values[name] = kind(float(environ[variable]))
        settings = cls(**values)  # type: ignore[arg-type]
        return replace(settings, budget_seconds=min(settings.budget_seconds, MAX_BUDGET_SECONDS))


class TickBudget:
    """What is left of one tick: time, listing pages and footer reads (thread-safe)."""

    def __init__(self, settings: ScanSettings, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._started = clock()
        self.seconds = settings.budget_seconds
        self.pages_left = settings.max_list_pages
        self.reads_left = settings.max_footer_reads
        self.pages, self.reads = 0, 0
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def take_page(self) -> bool:
        """Whether another listing page may be fetched (and count it)."""
        if self.pages_left <= 0 or self.elapsed >= self.seconds * LISTING_SHARE:
            return False
        self.pages_left -= 1
        self.pages += 1
        return True

    def take_read(self) -> bool:
        """Whether another footer may be read (and count it)."""
        with self._lock:
            if self.reads_left <= 0 or self.elapsed >= self.seconds:
                return False
            self.reads_left -= 1
            self.reads += 1
            return True

    @property
    def exhausted(self) -> bool:
        """No footer read may start any more."""
        return self.reads_left <= 0 or self.elapsed >= self.seconds
