"""Who is calling: ``Authorization: Bearer <key>`` -> the key's role, then its rate limit.

FastAPI dependencies: routes declare ``Depends(caller)`` and get a :class:`Caller`, or the
request ends with 401 (no, unknown, expired or revoked key) or 429 (rate limit) before any
parameter is looked at. The key itself is never stored on the request, logged or echoed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lakehouse.service.errors import ApiError
from lakehouse.service.keys import KeyFileError

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `lakehouse api-key create --role ROLE`.",
)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="lakehouse"'}


@dataclass(frozen=True)
class Caller:
    """An authenticated key: its name (for logs) and role (for everything else)."""

    name: str
    role: str
    key_id: str


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller behind the request's key, within its rate limit."""
    service = request.app.state.service
    if credentials is None:
        raise ApiError(
            401, "missing API key: send 'Authorization: Bearer <key>'", headers=CHALLENGE
        )
    try:
        verdict = service.keys.verify(credentials.credentials)
    except KeyFileError:
        service.log.exception("the API key file cannot be read")
        raise ApiError(503, "API keys are unavailable; try again later") from None
    if verdict.reason is not None or verdict.key is None:
        challenge = {"WWW-Authenticate": 'Bearer realm="lakehouse", error="invalid_token"'}
        raise ApiError(401, verdict.reason or "unknown API key", headers=challenge)
    key = verdict.key
    request.state.role = key.role
    request.state.key_name = key.name
    wait = service.limiter.acquire(key.key_id, key.rate_limit, key.rate_burst)
    if wait:
        rate, burst = service.limiter.limits_for(key.rate_limit, key.rate_burst)
        raise ApiError(
            429,
            f"rate limit of {rate:g} requests/s (burst {burst}) exceeded; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return Caller(key.name, key.role, key.key_id)


CallerDep = Annotated[Caller, Depends(caller)]
