"""Serve one page of a table for a caller: access, listing, ETag, query, cursor, in that order.

Every list endpoint goes through :func:`serve_page`, so each of them checks the grant (403
naming the table), reads only the role's own folder (its share if it is masked), answers
``304`` before running anything when the data has not changed, and paginates the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from fastapi import Request, Response
from pydantic import BaseModel

from lakehouse.resources.faults import StorageConfigError, TransientStorageError
from lakehouse.service.access import (
    NotGranted,
    NotShared,
    PolicyUnavailable,
    RoleAccess,
    TableSource,
)
from lakehouse.service.auth import Caller
from lakehouse.service.errors import ApiError, invalid, log
from lakehouse.service.etag import cache_headers, make_etag, not_modified
from lakehouse.service.listing import PartitionFile, digest
from lakehouse.service.pagination import BadCursor, decode, fingerprint, next_cursor
from lakehouse.service.query import page_sql, sort_keys

Lister = Callable[[TableSource], list[PartitionFile]]


@dataclass(frozen=True)
class Page:
    """The rows of a page (values of ``columns``, in order) and the cursor to the next one."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    next_cursor: str | None

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def role_view(request: Request, caller: Caller) -> tuple[int, RoleAccess]:
    """The caller's role under the policy in force (its generation, its access)."""
    service = request.app.state.service
    try:
        snapshot, access = service.policy.access(caller.role)
    except PolicyUnavailable:
        raise ApiError(503, "the access policy cannot be loaded; nothing is served") from None
    except NotGranted as exc:
        raise ApiError(403, str(exc)) from None
    request.state.masked = access.masked
    return snapshot.generation, access


def table_source(access: RoleAccess, table: str) -> TableSource:
    """Where the role reads ``table``: 403 if not granted, 404 ``not_shared`` if not served."""
    try:
        return access.source(table)
    except NotGranted as exc:
        raise ApiError(403, str(exc)) from None
    except NotShared as exc:
        raise ApiError(404, str(exc), code="not_shared") from None


def serve_page(
    request: Request,
    caller: Caller,
    render: Callable[[Page], BaseModel],
    *,
    route: str,
    table: str,
    listing: Lister,
    columns: Sequence[str],
    filters: dict[str, Any],
    order: tuple[str, bool] | None,
    limit: int,
    cursor: str | None,
    request_key: dict[str, Any],
) -> Response:
    """One page of ``table`` for ``caller`` as JSON (``render`` shapes it), or a 304.

    ``filters`` are column -> value equalities (bound, never spliced); ``request_key`` is every
    parameter that shapes the response (it goes into the ETag, which also keys the page cache).
    """
    service = request.app.state.service
    generation, access = role_view(request, caller)
    source = table_source(access, table)
    keys = sort_keys(table, order)
    query_id = fingerprint(route, table, caller.role, sorted(filters.items()), order)
    position = None
    if cursor is not None:
        try:
            current = decode(cursor, query_id, [k.sql_type for k in keys])
        except BadCursor as exc:
            raise invalid("query", "cursor", str(exc)) from None
        if order is None:  # the page order starts with the partition: skip earlier files
            position = tuple(current.values[: len(source.partition_columns)])
    else:
        current = None

    for attempt in (1, 2):
        files = _list(listing, source)
        etag = make_etag(caller.role, access.version, route, request_key, digest(files, source))
        headers = cache_headers(etag, service.settings.cache_max_age)
        if not_modified(request.headers.get("if-none-match"), etag):
            request.state.rows = 0
            return Response(status_code=304, headers=headers)
        cached = service.pages.get(etag)
        if cached is not None:
            body, request.state.rows = cached
            return Response(body, media_type="application/json", headers=headers)
        if position is not None:
            files = [f for f in files if f.position >= _padded(position)]

        def build(relation: str) -> tuple[str, dict[str, Any]]:
            names = {column: f"f_{column}" for column in filters}
            sql, params = page_sql(relation, columns, keys, names, current, limit)
            params.update({names[column]: value for column, value in filters.items()})
            return sql, params

        database = service.engines.database(generation, access)
        try:
            rows = database.rows(source, files, build)
            break
        except duckdb.IOException:
            # A partition was replaced or withdrawn between the listing and the read.
            if attempt == 2:
                raise ApiError(503, "the data changed while it was read; retry") from None
    width = len(columns)
    following = next_cursor([row[width:] for row in rows], limit, current, query_id)
    page = Page(tuple(columns), [row[:width] for row in rows[:limit]], following)
    body = render(page).model_dump_json().encode()
    service.pages.put(etag, (body, len(page.rows)))
    request.state.rows = len(page.rows)
    return Response(body, media_type="application/json", headers=headers)


def _padded(position: tuple[Any, ...]) -> tuple[str, str]:
    dt = position[0] or ""
    hh = position[1] if len(position) > 1 and position[1] else ""
    return dt, hh


def _list(listing: Lister, source: TableSource) -> list[PartitionFile]:
    try:
        return listing(source)
    except (TransientStorageError, StorageConfigError, OSError) as exc:
        log.warning("cannot list %s: %s", source.zone.display(source.zone.path(source.folder)), exc)
        raise ApiError(503, "the storage cannot be listed right now; try again later") from None
