"""Loading the code location freezes its heap; later garbage and the heap at exit are freed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from lakehouse_tests.conftest import subprocess_env

# A fresh interpreter, as a CLI run or run worker has: load the definitions, then look at the heap.
HEAP_PROBE = textwrap.dedent(
    """
    import gc, json, weakref
    import lakehouse.definitions as location

    frozen = gc.get_freeze_count()
    collectable = gc.get_objects()
    defs_collectable = any(o is location.defs for o in collectable)

    class Node:
        pass

    node = Node()
    node.cycle = node
    alive = weakref.ref(node)
    del node
    gc.collect()
    print(json.dumps({
        "frozen": frozen,
        "collectable": len(collectable),
        "defs_collectable": defs_collectable,
        "later_cycle_freed": alive() is None,
    }))
    """
)


def test_loading_the_definitions_freezes_them_and_later_cycles_are_still_freed(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", HEAP_PROBE],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    heap = json.loads(done.stdout.strip().splitlines()[-1])
    # Nearly everything the load made is out of the collector's reach, the definitions included.
    assert heap["frozen"] > 20 * heap["collectable"], heap
    assert heap["defs_collectable"] is False
    # A reference cycle made after loading (a run's frames, batches, events) is still collected.
    assert heap["later_cycle_freed"] is True
    # The heap is unfrozen at exit and freed as usual: DuckDB's bindings report nothing leaked.
    assert "nanobind" not in done.stderr, done.stderr[-2000:]
