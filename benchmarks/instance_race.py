"""How often two CLI runs started together on a fresh DAGSTER_HOME race Dagster's storage set-up.

    python benchmarks/instance_race.py --trials 6           # fresh home, no `lakehouse init`
    python benchmarks/instance_race.py --trials 6 --init    # the README's path: init first

Each trial makes a fresh folder with the project's dagster.yaml, pyproject.toml and one small
generated hour, optionally runs ``lakehouse init``, then starts two ``dagster asset materialize``
processes at the same moment. It reports the runs that failed and the alembic revisions left in
each of the instance's SQLite databases (more than one row is a damaged instance).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from lakehouse.defs.jobs import HOURLY_SELECTION

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's commands, whatever PATH says
HOUR = "2025-09-17-23:00"
DATABASES = {
    "runs": "data/dagster/storage/history/runs.db",
    "event index": "data/dagster/storage/history/runs/index.db",
    "schedules": "data/dagster/storage/schedules/schedules.db",
}


def alembic_heads(work: Path) -> dict[str, int]:
    """Rows in each database's alembic_version table (a healthy instance has exactly one)."""
    heads = {}
    for name, relative in DATABASES.items():
        with sqlite3.connect(work / relative) as conn:
            heads[name] = len(conn.execute("SELECT version_num FROM alembic_version").fetchall())
    return heads


def trial(root: Path, index: int, init: bool) -> tuple[int, dict[str, int], str]:
    """One fresh home, two simultaneous CLI runs: (failed runs, alembic heads, first error)."""
    work = root / f"trial-{index}"
    work.mkdir()
    for name in ("dagster.yaml", "pyproject.toml"):
        shutil.copy(REPO / name, work / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["DAGSTER_HOME"] = str(work)
    start = HOUR[:10] + "T" + HOUR[11:]
    generate = [str(BIN / "lakehouse"), "generate", "--start", start, "--vehicles", "5"]
    subprocess.run(generate, cwd=work, env=env, check=True, capture_output=True)
    if init:
        init_command = [str(BIN / "lakehouse"), "init"]
        subprocess.run(init_command, cwd=work, env=env, check=True, capture_output=True)
    materialize = [str(BIN / "dagster"), "asset", "materialize", "-m", "lakehouse.definitions"]
    runs = [
        subprocess.Popen(
            [*materialize, "--select", HOURLY_SELECTION, "--partition", HOUR],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    failed = [err for run, err in zip(runs, errors, strict=True) if run.returncode != 0]
    lines = failed[0].splitlines()[::-1] if failed else []
    first_error = next((line for line in lines if "Error" in line), "")
    return len(failed), alembic_heads(work), first_error[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--init", action="store_true", help="run `lakehouse init` first")
    args = parser.parse_args()
    bitten = 0
    with tempfile.TemporaryDirectory(prefix="instance-race-") as root:
        for index in range(args.trials):
            failed, heads, error = trial(Path(root), index, args.init)
            damaged = any(count != 1 for count in heads.values())
            bitten += bool(failed or damaged)
            print(f"trial {index}: {failed} of 2 runs failed; alembic rows {heads} {error}")
    mode = "with `lakehouse init`" if args.init else "without init"
    print(f"{datetime.now():%Y-%m-%d %H:%M} {mode}: the race bit in {bitten} of {args.trials}")


if __name__ == "__main__":
    main()
