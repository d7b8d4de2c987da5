"""Is a run's process still the one that started the run? (Linux ``/proc``; a signal elsewhere.)

A pid alone is no identity: the kernel hands a dead worker's pid to the next process that needs
one. A process counts as the run's worker only if it exists, is not a zombie, and was already
running when the run started: its start time (``/proc/<pid>/stat``) is not after the RUN_START
timestamp. A reused pid belongs to a process started after the worker died, so after RUN_START.
The monitor must see the run's processes in ``/proc``: the same user, or ``/proc`` mounted
without ``hidepid``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# Boot time in /proc/stat has one-second granularity and process start is measured in clock
# ticks; the slack also absorbs small wall-clock corrections (NTP) between RUN_START and a check.
# Erring towards "alive" is the safe side: a missed reuse only delays failure until max_runtime.
START_TIME_SLACK_SECONDS = 10.0
_GONE_STATES = {"Z", "X", "x"}  # zombie or dead: exited, only waiting to be reaped


@dataclass(frozen=True)
class ProcessCheck:
    """Whether the process is (still) the run's worker, and why, for the run's event log."""

    alive: bool
    reason: str


def boot_time() -> float:
    """When this host booted, in seconds since the epoch (``btime`` in ``/proc/stat``)."""
    for line in (PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("/proc/stat has no btime line")


def process_start_time(pid: int) -> float | None:
    """Start time (epoch seconds) of a live, non-zombie process ``pid``; None if there is none."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Field 2, the command name, may hold spaces and parentheses: fields 3.. follow the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_ticks = fields[0], int(fields[19])  # fields 3 (state) and 22 (starttime)
    if state in _GONE_STATES:
        return None
    return boot_time() + start_ticks / os.sysconf("SC_CLK_TCK")


def check_process(pid: int, running_at: float) -> ProcessCheck:
    """Is ``pid`` a live process that was already running at ``running_at`` (epoch seconds)?"""
    if not PROC.is_dir():
        return _probe_with_signal(pid)
    started = process_start_time(pid)
    if started is None:
        return ProcessCheck(False, f"process {pid} has exited")
    if started > running_at + START_TIME_SLACK_SECONDS:
        return ProcessCheck(
            False,
            f"process {pid} has exited; its pid now belongs to a process started "
            f"{started - running_at:.0f} s after the run",
        )
    return ProcessCheck(True, f"process {pid} is running")


def _probe_with_signal(pid: int) -> ProcessCheck:
    """Without /proc (macOS): existence only; neither zombies nor pid reuse can be told apart."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ProcessCheck(False, f"process {pid} has exited")
    except PermissionError:
        pass  # it exists, under another user
    return ProcessCheck(True, f"process {pid} exists (no /proc: pid reuse not checked)")
