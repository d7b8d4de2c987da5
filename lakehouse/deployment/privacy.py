"""Files the lakehouse writes hold raw vehicle data, so they are private to the service user.

:func:`keep_files_private` adds ``077`` to the process umask: every file and folder the process
creates afterwards (warehouse partitions and their staging files, the catalog and role catalogs,
DuckDB spill files, the instance storage made by ``lakehouse init``) gets no group or other
permission bits. It runs when the code location's definitions load (``lakehouse.definitions``),
which every CLI run, code server and run worker does before it writes anything, and in
``lakehouse init``. Files that must be shared with another local user (a local share folder, a
raw zone written by another account) need an explicit grant; object stores are governed by
their own credentials and are not affected.
"""

from __future__ import annotations

import os

PRIVATE_UMASK = 0o077


def keep_files_private() -> int:
    """Tighten the process umask to at least 077 (a stricter one is kept); returns the new one."""
    umask = os.umask(0) | PRIVATE_UMASK
    os.umask(umask)
    return umask
