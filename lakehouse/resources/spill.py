"""Private, per-process folders for DuckDB to spill to.

DuckDB writes sorts and joins that outgrow its memory limit to temporary files, and those hold
the rows being processed (raw GPS data). They go to a folder of the process's own, made by
``tempfile.mkdtemp`` (mode 0700 and an unguessable name, so no other user can read it or plant
one in advance), with a sub-folder per connection; the folder is removed when the process exits.
A process killed before it can clean up (the OOM killer) leaves its folder behind; the next
process that creates one removes such orphans, so spill does not pile up in the temp folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lakehouse.deployment.processes import check_process

SPILL_PREFIX = "lakehouse-spill-"

_lock = threading.Lock()
_folders: dict[int, Path] = {}  # pid -> folder, so a forked child never reuses its parent's


def process_spill_dir() -> Path:
    """This process's private spill folder, created on first use and removed at exit."""
    pid = os.getpid()
    with _lock:
        if pid not in _folders:
            remove_orphans()
            folder = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{pid}-"))
            atexit.register(_remove_own, pid, folder)
            _folders[pid] = folder
        return _folders[pid]


@contextmanager
def connection_spill_dir() -> Iterator[Path]:
    """A fresh private folder for one connection, inside the process's; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="conn-", dir=process_spill_dir()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_orphans(parent: str | None = None) -> list[Path]:
    """Remove spill folders of this user whose process is gone; returns what was removed."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(f"{SPILL_PREFIX}*-*"):
        pid_text = folder.name[len(SPILL_PREFIX) :].split("-", 1)[0]
        try:
            stat = folder.stat()
        except OSError:
            continue
        if not pid_text.isdigit() or stat.st_uid != os.getuid() or not folder.is_dir():
            continue
        # The owner was running when it last changed its folder; a reused pid started later.
        if not check_process(int(pid_text), running_at=stat.st_mtime).alive:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _remove_own(pid: int, folder: Path) -> None:
    if os.getpid() == pid:  # atexit handlers are inherited by forked children
        shutil.rmtree(folder, ignore_errors=True)
