"""What a lakehouse process has loaded lives as long as the process: the collector may skip it.

Importing the lakehouse and loading its definitions brings Dagster, pyarrow, pandas, pandera and
DuckDB: about 186,000 objects that stay alive until the process ends. Python's cyclic collector
walks every one of them on each full collection, and full collections keep happening while the
imports grow the heap and while a run allocates. :func:`freeze_loaded_heap` moves everything
alive at that moment into the permanent generation (:func:`gc.freeze`), which collections leave
alone; objects made later (a run's frames, Arrow batches, event records) are collected as before.
In an hour's ``dagster asset materialize`` full collections went from 0.30 to 0.11 s.

A heap left frozen is also never collected at exit, which spares the interpreter's teardown
the cycles of every loaded module: 0.3 s of every Dagster process. But DuckDB's bindings
(nanobind) report each of their objects still alive at exit as a leak, and frozen objects can
keep DuckDB's alive: DuckDB's own, if it was loaded before a freeze, or a script's globals
(``__main__`` is frozen with the rest, and a connection in a global is then never freed). So
the heap stays frozen at exit only where neither can happen: in a process a Dagster command
runs (its ``__main__`` is Dagster's), with DuckDB loaded after every freeze (the definitions
load the long-lived libraries and freeze them first, see ``long_lived``). Everywhere else (a
script, a notebook, the lakehouse CLI and API, a test run) it is unfrozen at exit and freed by
the last collection as usual.
"""

from __future__ import annotations

import atexit
import functools
import gc
import os
import sys

# Extension modules whose objects must be collected before the interpreter ends (see above).
_COLLECTED_AT_EXIT = ("duckdb", "_duckdb")
# Console scripts whose processes run only Dagster's ``__main__``.
DAGSTER_COMMANDS = frozenset({"dagster", "dagster-webserver", "dagster-daemon"})

_frozen_with_duckdb = False


def freeze_loaded_heap() -> int:
    """Exempt every object alive now from cyclic collection; returns how many are frozen."""
    global _frozen_with_duckdb
    gc.freeze()
    _frozen_with_duckdb = _frozen_with_duckdb or any(m in sys.modules for m in _COLLECTED_AT_EXIT)
    _release_at_exit()
    return gc.get_freeze_count()


def unfreezes_at_exit() -> bool:
    """Whether the frozen heap is handed back to the collector when the process ends."""
    return _frozen_with_duckdb or not run_by_dagster_command()


def run_by_dagster_command() -> bool:
    """Whether this process is a Dagster command's (``dagster ...``, the webserver, the daemon)."""
    entry = sys.argv[0] if sys.argv else ""
    name = os.path.basename(entry)
    if name == "__main__.py":  # ``python -m dagster``
        name = os.path.basename(os.path.dirname(entry))
    return name in DAGSTER_COMMANDS


@functools.cache
def _release_at_exit() -> None:
    atexit.register(_unfreeze_if_needed)


def _unfreeze_if_needed() -> None:
    if unfreezes_at_exit():
        gc.unfreeze()
