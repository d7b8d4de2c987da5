"""Loading the code location freezes the libraries' heap; later garbage and DuckDB are freed.

Each probe is a fresh interpreter, as a CLI run, run worker or user script is. The exit of each
is checked for DuckDB's leak report (nanobind prints one when frozen objects keep DuckDB's
alive), and the real ``dagster asset materialize`` exit is checked in ``test_pipeline``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from lakehouse_tests.conftest import subprocess_env

HEAP_PROBE = textwrap.dedent(
    """
    import gc, json, sys, weakref
    {before}
    import dagster
    import lakehouse.definitions
    import duckdb, pandas, pyarrow
    from lakehouse.deployment.heap import unfreezes_at_exit

    frozen = gc.get_freeze_count()
    collectable = gc.get_objects()

    def is_collectable(thing):
        return any(o is thing for o in collectable)

    def a_run_step():
        with duckdb.connect() as con:
            return con.sql("SELECT 42").fetchall()

    a_run_step()
    # What a script does: a connection and a relation in its globals until it ends.
    con = duckdb.connect()
    relation = con.sql("SELECT range AS n FROM range(10)")

    class Node:
        pass

    node = Node()
    node.cycle = node
    alive = weakref.ref(node)
    del node
    gc.collect()
    print(json.dumps({{
        "frozen": frozen,
        "collectable": len(collectable),
        "libraries_collectable": is_collectable(pandas.DataFrame) or is_collectable(pyarrow.Table),
        "duckdb_collectable": is_collectable(duckdb.DuckDBPyRelation),
        "unfreezes_at_exit": unfreezes_at_exit(),
        "later_cycle_freed": alive() is None,
    }}))
    del collectable
    """
)
DAGSTER_COMMAND_PROBE = textwrap.dedent(
    """
    import gc, json, sys
    {before}
    sys.argv[0] = '/venv/bin/dagster'
    import dagster
    import lakehouse.definitions
    import duckdb
    from lakehouse.deployment.heap import unfreezes_at_exit

    def a_run_step():
        with duckdb.connect() as con:
            return con.sql("SELECT count(*) FROM range(1000)").fetchall()

    a_run_step()
    print(json.dumps({{"unfreezes_at_exit": unfreezes_at_exit()}}))
    """
)


def _probe(tmp_path, code: str, before: str = "") -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-c", code.format(before=before)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _no_leak_report(stderr: str) -> bool:
    return "nanobind" not in stderr and "leaked" not in stderr


def test_the_libraries_are_frozen_before_duckdb_and_a_script_ends_without_a_leak_report(
    tmp_path,
):
    heap, stderr = _probe(tmp_path, HEAP_PROBE)
    # The libraries (most of the heap) are out of the collector's reach; DuckDB, loaded after
    # them, is not.
    assert heap["frozen"] > 10 * heap["collectable"], heap
    assert heap["libraries_collectable"] is False
    assert heap["duckdb_collectable"] is True
    # A script's globals are frozen with ``__main__`` and hold a DuckDB connection: its heap is
    # handed back to the collector at exit, so nothing of DuckDB's is left alive.
    assert heap["unfreezes_at_exit"] is True
    assert _no_leak_report(stderr), stderr[-2000:]
    # A reference cycle made after loading (a run's frames, batches, events) is still collected.
    assert heap["later_cycle_freed"] is True


def test_a_dagster_command_leaves_the_heap_frozen_and_ends_without_a_leak_report(tmp_path):
    heap, stderr = _probe(tmp_path, DAGSTER_COMMAND_PROBE)
    assert heap["unfreezes_at_exit"] is False
    assert _no_leak_report(stderr), stderr[-2000:]


def test_a_heap_frozen_with_duckdb_in_it_is_unfrozen_at_exit(tmp_path):
    """DuckDB imported before the lakehouse: even a Dagster command hands the heap back."""
    heap, stderr = _probe(tmp_path, DAGSTER_COMMAND_PROBE, before="import duckdb")
    assert heap["unfreezes_at_exit"] is True
    assert _no_leak_report(stderr), stderr[-2000:]
    heap, stderr = _probe(tmp_path, HEAP_PROBE, before="import duckdb")
    assert heap["duckdb_collectable"] is False  # frozen with the rest, until exit
    assert _no_leak_report(stderr), stderr[-2000:]
