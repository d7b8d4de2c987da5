"""The endpoints: ``/v1`` data (authenticated, per role, masked) and the health probes."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from lakehouse.service.auth import CallerDep
from lakehouse.service.errors import ApiError, invalid
from lakehouse.service.etag import cache_headers, make_etag, not_modified
from lakehouse.service.models import (
    ColumnInfo,
    DailyPage,
    ErrorBody,
    FleetPage,
    Health,
    HourlyPage,
    Readiness,
    RowsPage,
    TableInfo,
    TablesPage,
)
from lakehouse.service.pages import Page, role_view, serve_page
from lakehouse.service.params import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    VIN_MAX_BYTES,
    check_vin,
    day_range,
    hour_range,
    parse_day,
    parse_hh,
    parse_order,
)
from lakehouse.service.query import all_columns, orderable, partition_columns, table_columns
from lakehouse.tables import ADS_TABLE, DAILY_TABLES, DWS_TABLE, KPI_TABLE, LAYER_TABLES

TableName = enum.StrEnum("TableName", {name: name for name in LAYER_TABLES})

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No, unknown, expired or revoked API key."},
    403: {"model": ErrorBody, "description": "The key's role has no grant on the table."},
    404: {"model": ErrorBody, "description": "Granted, but not in the masked role's share."},
    422: {"model": ErrorBody, "description": "A parameter is invalid (details say which)."},
    429: {"model": ErrorBody, "description": "Rate limit exceeded; see Retry-After."},
    503: {"model": ErrorBody, "description": "Policy or storage unavailable."},
}

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Rows per page, at most {MAX_LIMIT}.")
]
CursorParam = Annotated[
    str | None, Query(max_length=4096, description="next_cursor of the previous page.")
]
HOUR_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}(:00(:00)?)?(Z|\+00:00)?$"
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=32,
        pattern=HOUR_PATTERN,
        description="First UTC hour, e.g. 2025-09-17T21.",
    ),
]
To = Annotated[
    str | None,
    Query(
        max_length=32,
        pattern=HOUR_PATTERN,
        description="Last UTC hour (included), e.g. 2025-09-17T23.",
    ),
]
FromDay = Annotated[
    str | None, Query(alias="from", max_length=10, pattern=DAY_PATTERN, description="First day.")
]
ToDay = Annotated[
    str | None, Query(max_length=10, pattern=DAY_PATTERN, description="Last day (included).")
]
Vin = Annotated[
    str,
    Path(
        min_length=1,
        max_length=VIN_MAX_BYTES,
        description="The VIN as the caller's role sees it: a masked role gives the masked "
        "value (e.g. V*******1); a raw VIN matches nothing for it.",
    ),
]

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["operations"])
def healthz() -> dict[str, str]:
    """The process is up (no authentication)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["operations"],
    responses={503: {"model": Readiness, "description": "Not ready; checks say what failed."}},
)
def readyz(request: Request, response: Response) -> dict[str, Any]:
    """The policy loads and the storage answers (no authentication)."""
    checks = request.app.state.service.readiness()
    ready = all(checks.values())
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return {"status": "ready" if ready else "unavailable", "checks": checks}


@router.get("/v1/tables", response_model=TablesPage, tags=["tables"], responses=_ERRORS)
def list_tables(request: Request, response: Response, caller: CallerDep) -> Any:
    """The tables the caller's role may read, with their columns; masked columns are marked."""
    _, access = role_view(request, caller)
    etag = make_etag(caller.role, access.version, "tables")
    headers = cache_headers(etag, request.app.state.service.settings.cache_max_age)
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    items = []
    for table in access.granted:
        masking = access.masking.get(table, {})
        columns = [
            ColumnInfo(name=n, type=t, masked=n in masking, masking=masking.get(n))
            for n, t in all_columns(table)
        ]
        available = table in access.sources
        items.append(
            TableInfo(
                name=table,
                partitioning="daily" if table in DAILY_TABLES else "hourly",
                partition_columns=list(partition_columns(table)),
                columns=columns,
                available=available,
                note=None if available else "granted, but not in this role's masked share",
            )
        )
    response.headers.update(headers)
    request.state.rows = len(items)
    return TablesPage(items=items)


@router.get("/v1/tables/{table}/rows", response_model=RowsPage, tags=["tables"], responses=_ERRORS)
def table_rows(
    request: Request,
    caller: CallerDep,
    table: Annotated[TableName, Path(description="A table of /v1/tables.")],
    dt: Annotated[
        str, Query(max_length=10, pattern=DAY_PATTERN, description="The day, YYYY-MM-DD.")
    ],
    hh: Annotated[
        str | None,
        Query(max_length=2, pattern=r"^\d{1,2}$", description="One hour of the day, 00-23."),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    order: Annotated[
        str | None,
        Query(
            max_length=80,
            pattern=r"^[a-z_]+(\.(asc|desc))?$",
            description="column, column.asc or column.desc; default: partition order.",
        ),
    ] = None,
) -> Any:
    """A granted table's rows for a day (or an hour of it), paginated by keyset cursor."""
    name = table.value
    day = parse_day(dt, "dt")
    if hh is not None and name in DAILY_TABLES:
        raise invalid("query", "hh", f"{name} is a daily table: it has no hh")
    hour = parse_hh(hh) if hh is not None else None
    sort = parse_order(order, orderable(name))
    lister = request.app.state.service.lister

    def listing(source):
        files = lister.days(source, day, day)
        return [f for f in files if hour is None or f.hh == hour]

    return serve_page(
        request, caller,
        lambda page: RowsPage(items=page.dicts(), next_cursor=page.next_cursor),
        route="rows", table=name, listing=listing,
        columns=[c for c, _ in all_columns(name)], filters={}, order=sort,
        limit=limit, cursor=cursor,
        request_key={"dt": dt, "hh": hour, "order": order, "limit": limit, "cursor": cursor},
    )  # fmt: skip


@router.get(
    "/v1/vehicles/{vin}/hourly", response_model=HourlyPage, tags=["vehicles"], responses=_ERRORS
)
def vehicle_hourly(
    request: Request,
    caller: CallerDep,
    vin: Vin,
    start: From = None,
    to: To = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    """A vehicle's hourly mileage and speed (ADS), ``from``..``to`` UTC hours (at most 31 days;
    default the 24 hours up to ``to`` or now)."""
    first, last = hour_range(start, to)
    vin = check_vin(vin)
    lister = request.app.state.service.lister

    def render(page: Page) -> HourlyPage:
        items = [{**row, "stat_hour": _hour(row["stat_hour"])} for row in page.dicts()]
        return HourlyPage(items=items, next_cursor=page.next_cursor)

    return serve_page(
        request, caller, render,
        route="vehicle_hourly", table=ADS_TABLE,
        listing=lambda source: lister.hours(source, first, last),
        columns=[c for c, _ in table_columns(ADS_TABLE)], filters={"vin": vin}, order=None,
        limit=limit, cursor=cursor,
        request_key={"vin": vin, "from": first, "to": last, "limit": limit, "cursor": cursor},
    )  # fmt: skip


@router.get(
    "/v1/vehicles/{vin}/daily", response_model=DailyPage, tags=["vehicles"], responses=_ERRORS
)
def vehicle_daily(
    request: Request,
    caller: CallerDep,
    vin: Vin,
    start: FromDay = None,
    to: ToDay = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    """A vehicle's daily figures (DWS), ``from``..``to`` days (at most 366; default the 7 days
    up to ``to`` or today)."""
    first, last = day_range(start, to)
    vin = check_vin(vin)
    lister = request.app.state.service.lister
    return serve_page(
        request, caller,
        lambda page: DailyPage(items=page.dicts(), next_cursor=page.next_cursor),
        route="vehicle_daily", table=DWS_TABLE,
        listing=lambda source: lister.days(source, first, last),
        columns=[c for c, _ in table_columns(DWS_TABLE)], filters={"vin": vin}, order=None,
        limit=limit, cursor=cursor,
        request_key={"vin": vin, "from": first, "to": last, "limit": limit, "cursor": cursor},
    )  # fmt: skip


@router.get("/v1/fleet/hourly", response_model=FleetPage, tags=["fleet"], responses=_ERRORS)
def fleet_hourly(
    request: Request,
    caller: CallerDep,
    start: From = None,
    to: To = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    """The fleet's KPIs per UTC hour, ``from``..``to`` (at most 31 days; default the 24 hours
    up to ``to`` or now)."""
    first, last = hour_range(start, to)
    lister = request.app.state.service.lister

    def render(page: Page) -> FleetPage:
        items = [{**row, "stat_hour": _hour(row["stat_hour"])} for row in page.dicts()]
        return FleetPage(items=items, next_cursor=page.next_cursor)

    return serve_page(
        request, caller, render,
        route="fleet_hourly", table=KPI_TABLE,
        listing=lambda source: lister.hours(source, first, last),
        columns=[c for c, _ in table_columns(KPI_TABLE)], filters={}, order=None,
        limit=limit, cursor=cursor,
        request_key={"from": first, "to": last, "limit": limit, "cursor": cursor},
    )  # fmt: skip


def _hour(stat_hour: str) -> datetime:
    """The tables' ``'YYYY-MM-DD HH'`` as an aware UTC datetime (ISO 8601 in JSON)."""
    try:
        return datetime.strptime(stat_hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(500, "a stored stat_hour is malformed", code="internal_error") from None
