"""One error body for every failure, and no echo of what the caller sent.

FastAPI's default 422 repeats each bad input back; for a masked role that could put a raw value
(a probed VIN) into a response, so the handlers here keep the location and the message only.
Unexpected errors become a 500 with no detail (the server's log has it).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("lakehouse.service")

NO_STORE = {"Cache-Control": "no-store"}
_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    422: "invalid_parameter",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered as ``{"error", "message", "details"}`` with a status."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        details: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message = status, message
        self.code = code or _CODES.get(status, "error")
        self.details, self.headers = details, headers or {}


def invalid(location: str, name: str, message: str) -> ApiError:
    """A 422 about one parameter (``location`` is ``query`` or ``path``)."""
    return ApiError(422, f"{name}: {message}", details=[{"loc": [location, name], "msg": message}])


def body(code: str, message: str, details: list[dict] | None = None) -> dict:
    content: dict = {"error": code, "message": message}
    if details is not None:
        content["details"] = details
    return content


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(
        body(exc.code, exc.message, exc.details),
        status_code=exc.status,
        headers={**NO_STORE, **exc.headers},
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", "invalid")}
        for error in exc.errors()
    ]
    names = ", ".join(str(d["loc"][-1]) for d in details if d["loc"])
    return JSONResponse(
        body("invalid_parameter", f"invalid parameter(s): {names}", details),
        status_code=422,
        headers=NO_STORE,
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404:
        message = "no such endpoint; see /docs"
    return JSONResponse(
        body(_CODES.get(exc.status_code, "error"), message),
        status_code=exc.status_code,
        headers={**NO_STORE, **(exc.headers or {})},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse(
        body("internal_error", "the server failed to answer; the error is in its log"),
        status_code=500,
        headers=NO_STORE,
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
