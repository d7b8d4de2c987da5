"""Layer engines: where the hourly layers' SQL runs (DuckDB in process, or Spark).

The layers are defined once, as DuckDB SQL (``lakehouse.defs.dwd``/``ads``); a
:class:`~lakehouse.engines.session.LayerSession` runs that SQL on one engine and hands each
result to DuckDB to stage, so what is validated and published is the same file format, layout
and writer whichever engine computed the rows.
"""
