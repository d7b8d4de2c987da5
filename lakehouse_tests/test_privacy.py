"""Raw data at rest is private: lakehouse files have no group/other bits; spill is per process."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from lakehouse.defs.jobs import HOURLY_SELECTION
from lakehouse.resources.engine import compute_engine
from lakehouse.resources.spill import SPILL_PREFIX, remove_orphans
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.sample_data import write_sample_data
from lakehouse_tests.conftest import DAGSTER, HOUR, project_dir, subprocess_env

# One engine connection in a fresh process: where it spills, and how that folder looks.
SPILL_PROBE = textwrap.dedent(
    """
    import json, os, stat
    from lakehouse.resources.engine import compute_engine

    with compute_engine().get_connection() as conn:
        spill = conn.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        parent = os.path.dirname(spill)
        modes = [stat.S_IMODE(os.stat(p).st_mode) for p in (spill, parent)]
    print(json.dumps({"spill": spill, "modes": modes}))
    """
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_cli_run_leaves_only_private_files(tmp_path, monkeypatch):
    """No `lakehouse init` here: the run itself (umask set as the definitions load) makes its
    files private, and the step's spill folder is gone once the process has exited."""
    work = project_dir(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = subprocess_env(DAGSTER_HOME=str(work), TMPDIR=str(temp))
    monkeypatch.chdir(work)
    write_sample_data(
        LakehouseStorage().raw(create=True), start=HOUR.start, vehicles=5, interval_s=60
    )
    done = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "lakehouse.definitions",
         "--select", HOURLY_SELECTION,
         "--partition", HOUR.key],
        cwd=work, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    catalog = work / "data" / "catalog.duckdb"
    written = [p for p in (work / "data" / "warehouse").rglob("*") if p.is_file()]
    partitions = [p for p in written if p.name == "part-0.parquet"]
    assert catalog.exists() and len(partitions) >= 3  # ODS, DWD, ADS (and the shares)
    for path in [catalog, *written, *(work / "data" / "warehouse").rglob("*")]:
        assert _mode(path) & 0o077 == 0, f"{path} is {oct(_mode(path))}"

    spills = set(re.findall(r"DuckDB spills to (\S+)", done.stderr))
    assert spills, "the DWD/ADS step should report its spill folder"
    for spill in map(Path, spills):
        assert spill.parent.parent == temp and spill.parent.name.startswith(SPILL_PREFIX)
        assert not spill.parent.exists(), "the process's spill folder outlived it"
    assert list(temp.iterdir()) == []


def test_spill_folders_are_private_and_unique_per_process(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}

    def probe() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", SPILL_PROBE], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    probes = [probe(), probe()]
    spills = [Path(p["spill"]) for p in probes]
    assert spills[0].parent != spills[1].parent  # one folder per process
    for probe, spill in zip(probes, spills, strict=True):
        assert spill.parent.parent == tmp_path
        assert probe["modes"] == [0o700, 0o700]
        assert not spill.parent.exists()  # removed when its process exited


def test_duckdb_really_spills_into_the_private_folder():
    engine = compute_engine(memory_limit="64MB")
    with engine.get_connection() as conn:
        spill = Path(conn.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        # An in-memory table larger than the limit lives partly in temporary files.
        conn.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) r(i)")
        files = [
            Path(r[0]) for r in conn.sql("SELECT path FROM duckdb_temporary_files()").fetchall()
        ]
        assert files and all(f.parent == spill for f in files)
        assert all(_mode(f) & 0o077 == 0 for f in files)
        with compute_engine().get_connection() as second:
            other = second.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        assert other != str(spill)
    assert not spill.exists()  # a connection's folder goes with the connection


def test_folders_of_killed_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f"{SPILL_PREFIX}{dead.pid}-abc123"
    live = tmp_path / f"{SPILL_PREFIX}{os.getpid()}-def456"
    for folder in (orphan, live):
        (folder / "conn-1").mkdir(parents=True)
    assert remove_orphans(str(tmp_path)) == [orphan]
    assert not orphan.exists() and live.exists()
