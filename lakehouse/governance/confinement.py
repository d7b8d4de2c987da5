"""Confine a DuckDB connection to what a role may read: no files, databases or extensions beyond.

DuckDB 2.0's settings, in the order they must be applied (checked in lakehouse_tests):

- ``autoinstall_known_extensions`` / ``autoload_known_extensions`` false, at connect time;
- ``temp_directory`` cleared: DuckDB otherwise adds it to the allowed directories;
- ``allowed_directories``: the only folders a query may touch (with a trailing ``/``, so
  ``share/thirdparty/`` does not also allow ``share/thirdparty2/``). DuckDB refuses it at
  connect time ("before the database is started"), so it is ``SET`` once connected;
- ``enable_external_access`` false: every other file, ``ATTACH``, ``INSTALL``/``LOAD``, COPY
  and replacement scans of Python objects are refused;
- ``lock_configuration`` true, last: none of the above can be changed back by the session.

Note that DuckDB lets a confined session *write* inside its allowed directories (``COPY TO``), so
previews over files allow only the role's own share folder, whose content is masked already;
previews over the warehouse hand DuckDB registered Arrow datasets and allow no folder at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from lakehouse.sql_text import quote_literal

CONNECT_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def confine(con: duckdb.DuckDBPyConnection, allowed_directories: Sequence[str] = ()) -> None:
    """Lock ``con`` down to ``allowed_directories`` (each a folder; may be empty)."""
    folders = ", ".join(quote_literal(d.rstrip("/") + "/") for d in allowed_directories)
    con.execute("SET temp_directory = ''")
    con.execute(f"SET allowed_directories = [{folders}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
