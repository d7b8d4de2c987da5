"""The run launcher of the one-host deployments: Dagster's default, plus worker health checks.

Dagster's run monitoring only notices a dead run worker if the run launcher can check worker
health, and ``DefaultRunLauncher`` cannot. Without that, a run whose process is killed (the OOM
killer, ``kill -9``, a reboot) stays STARTED forever, and two of them fill the
QueuedRunCoordinator's ``max_concurrent_runs: 2``: the daemon stops launching anything.

This launcher launches exactly like ``DefaultRunLauncher`` (a subprocess of the code server) and
adds the health check: the process executing a run is the ``pid`` on the run's RUN_START event,
both for runs launched here and for CLI runs (``dagster asset materialize`` executes in its own
process). The run is reported FAILED once that process is gone, or once its pid belongs to a
process that started after the run did (pid reuse).

Assumption: every run of the instance executes on this host, as in the embedded default and the
one-machine deployment. Do not configure it where runs execute on other hosts (a pid means
nothing there); the Kubernetes, Docker and ECS launchers have health checks of their own.
"""

from __future__ import annotations

import dagster as dg

# Dagster's extension points for health checks (used the same way by its k8s/ECS launchers).
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

from lakehouse.deployment.processes import check_process


class SingleHostRunLauncher(dg.DefaultRunLauncher):
    """``DefaultRunLauncher`` that tells run monitoring when a run's process on this host died.

    Configured in ``dagster.yaml`` (``run_launcher``); takes no config, like its parent.
    """

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """RUNNING while the run's process lives, FAILED once it is gone; never UNKNOWN.

        Run monitoring fails a run on any status other than RUNNING or SUCCESS, so whatever
        cannot be decided (no RUN_START yet, no pid recorded) is reported as RUNNING: the
        monitor's start timeout and ``max_runtime_seconds`` still bound such runs.
        """
        records = self._instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
        ).records
        if not records:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no RUN_START event yet")
        entry = records[0].event_log_entry
        pid = entry.dagster_event.pid if entry.dagster_event else None
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "RUN_START names no process")
        check = check_process(pid, running_at=entry.timestamp)
        status = WorkerStatus.RUNNING if check.alive else WorkerStatus.FAILED
        return CheckRunHealthResult(status, check.reason, run_worker_id=str(pid))
