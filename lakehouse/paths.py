"""Where the embedded default keeps its files, whichever directory a command runs from.

Relative default paths (``data/raw``, ``data/catalog.duckdb``, ...) resolve against the project
home: ``$LAKEHOUSE_HOME`` if set, else ``$DAGSTER_HOME`` (the README sets it to the repository
root, so the instance and the data sit together), else the current directory. Explicit absolute
paths and URLs are never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "LAKEHOUSE_HOME"


def project_home() -> Path:
    """The folder relative default paths are anchored to."""
    home = os.environ.get(HOME_ENV) or os.environ.get("DAGSTER_HOME")
    return Path(home).expanduser().resolve() if home else Path.cwd()


def resolve_local(path: str | os.PathLike[str]) -> Path:
    """An absolute path: ``path`` itself if absolute, else under the project home."""
    candidate = Path(path).expanduser()
    return (candidate if candidate.is_absolute() else project_home() / candidate).resolve()
