"""DuckDB catalog files that readers never block: rebuilt aside and renamed over, when changed.

A reader (a BI tool, ``duckdb -readonly``, ``lakehouse sql``) holds DuckDB's lock on the file for
as long as it is connected, and a writer opening the same file waits for it: one idle dashboard
used to stall every run. So the lakehouse never opens a published catalog to write it:

- its definition (view name -> ``CREATE VIEW`` statement) is kept in a small JSON manifest beside
  it, ``<file>.manifest.json``, and compared without opening the database; an unchanged
  definition costs one small file read;
- a changed definition is built in a new database file beside the old one, checkpointed and
  closed (so it has no ``.wal``), and renamed over it. Readers that have the old file open keep
  their snapshot; new connections see the new file. A ``.wal`` left by a crashed writer of the
  old file is removed first, since DuckDB would refuse to open the new file with it;
- writers take an advisory lock on ``<file>.lock``, which readers never touch, so two runs
  refreshing the same catalog take turns instead of losing each other's views.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

MANIFEST_SUFFIX = ".manifest.json"
LOCK_SUFFIX = ".lock"
WRITER_LOCK_TIMEOUT_S = 30.0
# Never download extensions while building a catalog (offline hosts would stall); load installed.
BUILD_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": True}


class CatalogBusy(TimeoutError):
    """Another writer held the catalog's writer lock for too long."""


@dataclass(frozen=True)
class CatalogUpdate:
    """What a refresh did: ``unchanged`` or ``written``, and views that could not be created."""

    status: str
    skipped: dict[str, str] = field(default_factory=dict)


def sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def read_manifest(path: Path) -> dict[str, str] | None:
    """The views the catalog at ``path`` was built with; None if it or its manifest is missing."""
    if not path.exists():
        return None
    try:
        return dict(json.loads(sidecar(path, MANIFEST_SUFFIX).read_text())["views"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_catalog(
    path: Path,
    views: dict[str, str],
    merge: bool = False,
    only_if: Callable[[], bool] | None = None,
) -> CatalogUpdate:
    """Make the catalog at ``path`` hold ``views`` (name -> statement), rebuilding only on change.

    With ``merge`` the views are added to (or replace) those already in the catalog; without,
    the catalog holds exactly ``views``. A statement that fails (e.g. an S3 view without
    DuckDB's httpfs) is left out and reported in ``skipped``; it is tried again next time.
    ``only_if`` is asked under the writer lock, just before a write, whether it may happen.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(path):
        current = read_manifest(path)
        wanted = {**(current or {}), **views} if merge else dict(views)
        if current == wanted:
            return CatalogUpdate("unchanged")
        if only_if is not None and not only_if():
            return CatalogUpdate("not written: superseded")
        created, skipped = _build(path, wanted, current)
        return CatalogUpdate("written" if created is not None else "unchanged", skipped)


def remove_catalog(path: Path) -> bool:
    """Delete the catalog and its sidecars; whether there was a catalog."""
    files = (path, sidecar(path, ".wal"), sidecar(path, MANIFEST_SUFFIX))
    if not any(f.exists() for f in files):
        return False
    with _writer_lock(path):
        for leftover in files:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    with contextlib.suppress(FileNotFoundError):
        sidecar(path, LOCK_SUFFIX).unlink()
    return True


def _build(
    path: Path, wanted: dict[str, str], current: dict[str, str] | None
) -> tuple[dict[str, str] | None, dict[str, str]]:
    """Build the catalog aside and swap it in; None if the result is what is already there."""
    building = path.with_name(f".{path.name}.{uuid.uuid4().hex}.building")
    created: dict[str, str] = {}
    skipped: dict[str, str] = {}
    try:
        with duckdb.connect(str(building), config=BUILD_CONFIG) as con:
            for name, statement in sorted(wanted.items()):
                try:
                    con.execute(statement)
                except duckdb.Error as exc:
                    skipped[name] = first_line(exc)
                else:
                    created[name] = statement
            con.execute("CHECKPOINT")
        if created == current:
            return None, skipped
        with contextlib.suppress(FileNotFoundError):
            sidecar(path, ".wal").unlink()
        os.replace(building, path)
        _write_manifest(path, created)
    finally:
        for leftover in (building, sidecar(building, ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return created, skipped


def _write_manifest(path: Path, views: dict[str, str]) -> None:
    manifest = sidecar(path, MANIFEST_SUFFIX)
    staging = manifest.with_name(f".{manifest.name}.{uuid.uuid4().hex}")
    staging.write_text(json.dumps({"views": views}, indent=1, sort_keys=True))
    os.replace(staging, manifest)


@contextlib.contextmanager
def _writer_lock(path: Path, timeout: float = WRITER_LOCK_TIMEOUT_S) -> Iterator[None]:
    """An advisory lock between writers of the catalog; readers never take it."""
    with open(sidecar(path, LOCK_SUFFIX), "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CatalogBusy(
                        f"another writer held {sidecar(path, LOCK_SUFFIX)} for {timeout:.0f} s"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def first_line(exc: BaseException) -> str:
    """An error's first line, short enough for run metadata and a terminal."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
