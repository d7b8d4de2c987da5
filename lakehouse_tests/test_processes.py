"""A run's process is identified by its pid and its start time, so pid reuse is not mistaken."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from lakehouse.deployment.processes import check_process, process_start_time
from lakehouse_tests.conftest import wait_until


def test_a_live_process_that_predates_the_run_is_alive():
    before = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start_time(proc.pid)
        assert started is not None and abs(started - before) < 2
        check = check_process(proc.pid, running_at=time.time())
        assert check.alive, check.reason
    finally:
        proc.kill()
        proc.wait()


def test_an_exited_or_zombie_process_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    # Exited but not reaped yet: a zombie, whose /proc entry still exists.
    wait_until(lambda: "Z" in Path(f"/proc/{proc.pid}/stat").read_text().split(")")[-1][:3],
               timeout=30, what="the child to exit")  # fmt: skip
    assert not check_process(proc.pid, running_at=time.time()).alive
    proc.wait()
    check = check_process(proc.pid, running_at=time.time())
    assert not check.alive
    assert check.reason == f"process {proc.pid} has exited"


def test_a_pid_now_held_by_a_younger_process_is_not_the_run():
    """This process's pid, but the run 'started' an hour before this process existed."""
    started = process_start_time(os.getpid())
    assert started is not None
    check = check_process(os.getpid(), running_at=started - 3600)
    assert not check.alive
    assert "now belongs to a process started 3600 s after the run" in check.reason
