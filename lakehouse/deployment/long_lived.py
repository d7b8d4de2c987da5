"""The third-party libraries every lakehouse process keeps loaded, loaded and frozen before DuckDB.

Importing this module imports them and freezes the heap (``lakehouse.deployment.heap``): they
are most of what a process loads (94% of the objects), and frozen before DuckDB's bindings are
imported they need no collection at exit, while DuckDB, the lakehouse's own modules and its
definitions stay with the collector. ``lakehouse.definitions`` imports it first.
"""

import importlib

from lakehouse.deployment.heap import freeze_loaded_heap

LIBRARIES = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.dataset",
    "pyarrow.parquet",
    "pandera.pyarrow",
)

for _name in LIBRARIES:
    importlib.import_module(_name)
freeze_loaded_heap()
