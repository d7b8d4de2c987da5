"""One JSON line per request on stderr (logger ``lakehouse.service.access``).

Fields: time, request id, method, route template, status, duration (ms), rows served, role and
key *name*. Never the key, never a query string, and for a masked role (or an unauthenticated
caller) never the raw path, only its template (``/v1/vehicles/{vin}/hourly``): a VIN in a path
is a value of a masked column. Unmasked roles also get the path, for debugging. Every response
carries the request id in ``X-Request-ID`` (a caller's own, if it sent a sane one).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("lakehouse.service.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def configure() -> None:
    """Send access lines, as they are, to stderr (once per process)."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


class AccessLogMiddleware:
    """Pure ASGI middleware: times the request and logs it when the response has gone."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _REQUEST_ID_RE.match(sent) else uuid.uuid4().hex
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(json.dumps(_line(scope, request_id, status, started)))


def _line(scope: Scope, request_id: str, status: int, started: float) -> dict:
    state = scope.get("state") or {}
    route = getattr(scope.get("route"), "path", None)
    role = state.get("role")
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": "request",
        "request_id": request_id,
        "method": scope.get("method"),
        "route": route or "<unmatched>",
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "rows": state.get("rows"),
        "role": role,
        "key": state.get("key_name"),
    }
    if role is not None and state.get("masked") is False:
        line["path"] = scope.get("path")
    return line
