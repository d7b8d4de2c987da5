"""The data service: the published tables behind an HTTP API, with the caller's role applied.

``lakehouse serve`` runs :func:`lakehouse.service.app.create_app` on uvicorn. Modules, one job
each: ``settings`` (configuration), ``keys`` (the API key file), ``auth`` (keys -> roles),
``ratelimit`` (per-key token buckets), ``access`` (what a role may read and from where),
``listing`` (which partition files a request reads), ``engine`` (confined DuckDB databases),
``query`` (SQL from validated parameters), ``pagination`` (keyset cursors), ``pages`` (one page
for a caller, end to end), ``etag`` (cache validators), ``cache`` (pages served, by ETag),
``params`` (parameter parsing), ``models`` (response shapes), ``errors`` (one error body),
``access_log`` (structured request log), ``routes`` (endpoints) and ``app`` (the factory).
"""
