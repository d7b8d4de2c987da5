"""Prepare a lakehouse home once: the Dagster instance's storage and the local data folders.

Dagster creates an SQLite instance's databases (and stamps their schema revision) the first time
any process opens the instance. Two processes doing that at once, e.g. two CLI runs on a fresh
``$DAGSTER_HOME``, race: one fails ("table ... already exists") or a database ends up with two
alembic heads. :func:`initialize_home` opens the instance once, under an exclusive lock on a
file in ``$DAGSTER_HOME``, so the storage exists before anything else starts; running it again,
or twice at the same time, changes nothing. ``lakehouse init`` and ``lakehouse demo`` call it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml

from lakehouse.deployment.privacy import keep_files_private
from lakehouse.paths import resolve_local
from lakehouse.resources.catalog import CatalogResource
from lakehouse.resources.storage import (
    DEFAULT_RAW_URL,
    DEFAULT_WAREHOUSE_URL,
    LakehouseStorage,
    Zone,
)

LOCK_FILE = ".lakehouse-init.lock"
LOCK_TIMEOUT_SECONDS = 300.0


class InitError(RuntimeError):
    """The home cannot be initialised (no DAGSTER_HOME, lock not obtained)."""


def dagster_home() -> Path:
    """``$DAGSTER_HOME``, which must name an existing folder (as Dagster itself requires)."""
    value = os.environ.get("DAGSTER_HOME")
    if not value:
        raise InitError("DAGSTER_HOME is not set: export DAGSTER_HOME=$PWD in the repository root")
    home = Path(value).expanduser()
    if not home.is_absolute() or not home.is_dir():
        raise InitError(f"DAGSTER_HOME={value} must be the absolute path of an existing folder")
    return home


@contextmanager
def exclusive_lock(path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yields whether another holder made us wait."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    waited = False
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = True
                if time.monotonic() > deadline:
                    message = f"another process has held {path} for over {timeout:.0f} s"
                    raise InitError(message) from None
                time.sleep(0.1)
        yield waited
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _storage_config(home: Path) -> dict:
    config_file = home / "dagster.yaml"
    if not config_file.exists():
        return {}
    return (yaml.safe_load(config_file.read_text()) or {}).get("storage") or {}


def sqlite_storage_dir(home: Path) -> Path | None:
    """Where dagster.yaml puts the SQLite storage (relative paths: from the current folder)."""
    base_dir = _storage_config(home).get("sqlite", {}).get("base_dir")
    return Path(base_dir).resolve() if isinstance(base_dir, str) else None


def database_storage(home: Path) -> str | None:
    """``postgres`` or ``mysql`` when dagster.yaml keeps the instance in a database server."""
    return next((kind for kind in ("postgres", "mysql") if kind in _storage_config(home)), None)


def initialize_home(say: Callable[[str], None] = print) -> None:
    """Create the instance storage of ``$DAGSTER_HOME`` and the embedded default's folders.

    Idempotent and safe to run concurrently. ``say`` receives one line per thing done.
    """
    keep_files_private()
    home = dagster_home()
    with exclusive_lock(home / LOCK_FILE) as waited:
        if waited:
            say("waited for another `lakehouse init` to finish")
        _initialize_instance(home, say)
        storage = LakehouseStorage()
        raw_url = os.environ.get("LAKEHOUSE_RAW_URL") or DEFAULT_RAW_URL
        warehouse_url = os.environ.get("LAKEHOUSE_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL
        _ensure_zone("raw zone", raw_url, lambda: storage.raw(create=True), say)
        _ensure_zone("warehouse zone", warehouse_url, storage.warehouse, say)
        catalog_dir = CatalogResource().resolved_path().parent
        _ensure_folder("catalog folder", catalog_dir, say)


def _initialize_instance(home: Path, say: Callable[[str], None]) -> None:
    storage_dir = sqlite_storage_dir(home)
    existed = storage_dir is not None and (storage_dir / "history" / "runs.db").exists()
    if not (home / "dagster.yaml").exists():
        say(f"no dagster.yaml in {home}: Dagster's default instance settings apply")
    with dg.DagsterInstance.get() as instance:  # creates and stamps any missing storage
        run_launcher = type(instance.run_launcher).__name__
    if database := database_storage(home):
        # Tables are created when missing; a Dagster upgrade also needs `dagster instance migrate`.
        say(
            f"Dagster instance of {home}: storage ready in {database} (run launcher {run_launcher})"
        )
        return
    where = f" in {storage_dir}" if storage_dir else ""
    verb = "already initialised" if existed else "initialised"
    say(f"Dagster instance of {home}: storage {verb}{where} (run launcher {run_launcher})")
    if storage_dir and not storage_dir.is_relative_to(home.resolve()):
        say(
            f"note: the storage is outside DAGSTER_HOME because this folder ({Path.cwd()}) is "
            "not DAGSTER_HOME; run Dagster's commands from the same folder"
        )


def _ensure_zone(
    label: str, url: str, create: Callable[[], Zone], say: Callable[[str], None]
) -> None:
    """Let the storage resource create its zone (a local folder); say whether it was there."""
    local = "://" not in url or url.startswith("file:")
    # Resolved as the resource resolves it (relative to the project home), without creating it.
    existed = local and resolve_local(url.removeprefix("file:")).is_dir()
    zone = create()
    if not zone.is_local:
        say(f"{label}: {zone.url} (object store: nothing to create)")
    else:
        say(f"{label}: {zone.root} exists" if existed else f"{label}: created {zone.root}")


def _ensure_folder(label: str, path: Path, say: Callable[[str], None]) -> None:
    existed = path.is_dir()
    path.mkdir(parents=True, exist_ok=True)
    say(f"{label}: {path} exists" if existed else f"{label}: created {path}")
