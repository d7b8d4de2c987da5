"""Killed runs do not jam the queue: the launcher's health check lets run monitoring fail them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg

from lakehouse.defs.jobs import HOURLY_SELECTION
from lakehouse.deployment.run_launcher import SingleHostRunLauncher
from lakehouse.partitions import HourPartition
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse_tests.conftest import (
    DAEMON,
    DAGSTER,
    HOUR,
    lakehouse_init,
    open_instance,
    project_dir,
    running,
    subprocess_env,
    wait_until,
)

# A run that executes in its own process (as a CLI run does) and waits for the test.
BLOCKING_RUN = textwrap.dedent(
    """
    import sys
    import dagster as dg

    @dg.op
    def wait_for_the_test():
        sys.stdin.readline()

    @dg.job
    def blocking():
        wait_for_the_test()

    with dg.DagsterInstance.get() as instance:
        blocking.execute_in_process(instance=instance)
    """
)
NEXT_HOUR = HourPartition.from_key("2025-09-18-02:00")


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL, as the OOM killer sends it, to the run's process and to its helpers: Dagster's
    `tail -F` log mirrors, which outlive a process killed just as it starts them."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _run_start_pids(instance: dg.DagsterInstance) -> dict[int, str]:
    """pid on the RUN_START event -> run id, for the runs now STARTED."""
    pids = {}
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        (record,) = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
        ).records
        pids[record.event_log_entry.dagster_event.pid] = run.run_id
    return pids


def test_health_check_follows_the_run_process(tmp_path, monkeypatch):
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work))
    monkeypatch.chdir(work)
    lakehouse_init(work, env)
    instance = open_instance(work)
    launcher = instance.run_launcher
    assert isinstance(launcher, SingleHostRunLauncher)
    assert launcher.supports_check_run_worker_health
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_poll_interval_seconds <= 10
    assert instance.run_monitoring_max_resume_run_attempts == 0

    proc = subprocess.Popen(
        [sys.executable, "-c", BLOCKING_RUN],
        cwd=work,
        env=env,
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        run_id = wait_until(lambda: _run_start_pids(instance).get(proc.pid), 60, "the run")
        run = instance.get_run_by_id(run_id)
        health = launcher.check_run_worker_health(run)
        assert health.status.value == "RUNNING", health
        assert health.run_worker_id == str(proc.pid)
    finally:
        _kill(proc)
    health = launcher.check_run_worker_health(instance.get_run_by_id(run_id))
    assert health.status.value == "FAILED", health
    assert health.msg == f"process {proc.pid} has exited"


def test_killed_cli_runs_are_failed_and_the_queue_recovers(tmp_path, monkeypatch):
    """Two CLI runs SIGKILLed while STARTED fill both run slots; the daemon frees them.

    The real daemon runs from the project folder; once run monitoring has failed the two
    zombies, an hour uploaded afterwards is requested by DataScan, launched and succeeds, and
    the health check leaves that daemon-launched run alone while it runs.
    """
    work = project_dir(tmp_path)
    env = subprocess_env(DAGSTER_HOME=str(work), LAKEHOUSE_DATASCAN_INTERVAL_SECONDS="2")
    monkeypatch.chdir(work)
    lakehouse_init(work, env)
    # The CLI runs read a raw zone of their own, big enough to run for a few seconds.
    big = work / "raw-big"
    write_sample_data(
        LakehouseStorage(raw_url=str(big)).raw(create=True),
        start=HOUR.start,
        vehicles=200,
        interval_s=2,
    )
    instance = open_instance(work)
    with running([DAEMON, "run"], work, env) as daemon:
        wait_until(
            lambda: "MONITORING" in instance.get_daemon_heartbeats(), 90, "the monitoring daemon"
        )
        command = [
            DAGSTER,
            "asset",
            "materialize",
            "-m",
            "lakehouse.definitions",
            "--select",
            HOURLY_SELECTION,
        ]
        procs = {
            proc.pid: proc
            for proc in (
                subprocess.Popen(
                    [*command, "--partition", HOUR.key],
                    cwd=work,
                    env={**env, "LAKEHOUSE_RAW_URL": str(big)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                for _ in range(2)
            )
        }
        zombies: dict[int, str] = {}

        def kill_started_runs() -> bool:
            for pid, run_id in _run_start_pids(instance).items():
                if pid in procs and pid not in zombies:
                    _kill(procs[pid])
                    zombies[pid] = run_id
            assert all(p.poll() is None or p.pid in zombies for p in procs.values()), (
                "a CLI run ended before it could be killed: make its hour bigger"
            )
            return len(zombies) == 2

        wait_until(kill_started_runs, 90, "both CLI runs to start", interval=0.05)
        killed_at = time.monotonic()

        def failed() -> bool:
            runs = [instance.get_run_by_id(run_id) for run_id in zombies.values()]
            return all(run.status == dg.DagsterRunStatus.FAILURE for run in runs)

        wait_until(failed, 60, "run monitoring to fail the killed runs")
        seconds_to_fail = time.monotonic() - killed_at
        print(f"killed runs marked FAILURE {seconds_to_fail:.1f} s after SIGKILL")
        for run_id in zombies.values():
            messages = [e.message for e in instance.all_logs(run_id)]
            assert any("has exited" in m and "Marking run" in m for m in messages), messages

        # The queue recovered: an hour uploaded now is requested by DataScan and launched.
        write_sample_data(
            LakehouseStorage().raw(), start=NEXT_HOUR.start, vehicles=200, interval_s=2
        )

        def datascan_run(statuses: set[str]) -> dg.DagsterRun | None:
            runs = instance.get_runs(
                filters=dg.RunsFilter(tags={"dagster/partition": NEXT_HOUR.key})
            )
            return next((r for r in runs if r.status.value in statuses), None)

        started = wait_until(
            lambda: datascan_run({"STARTED", "SUCCESS", "FAILURE"}), 120, "DataScan's run", 0.1
        )
        assert started.status.value == "STARTED", "the run ended before its health was checked"
        # A healthy run launched by the daemon (a subprocess of the code server) is left alone.
        health = instance.run_launcher.check_run_worker_health(started)
        assert health.status.value == "RUNNING", health
        assert health.run_worker_id not in {str(daemon.pid), *map(str, procs)}

        run = wait_until(
            lambda: datascan_run({"SUCCESS", "FAILURE", "CANCELED"}), 120, "DataScan's run to end"
        )
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["lakehouse/trigger"] == "datascan"
