"""The app factory: settings, policy, keys, engines and routes wired into one FastAPI app.

Everything is built in the lifespan, when the server starts, so importing this module reads no
file and no environment variable; a policy that does not load stops the server there, with its
message. FastAPI's own OpenTelemetry hooks are off: spans would record raw request paths (a VIN
in a path is a masked column's value), and the access log says what operators need.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from lakehouse.governance.policy import policy_path
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.service import access_log, errors
from lakehouse.service.access import PolicyUnavailable, PolicyWatcher
from lakehouse.service.cache import PageCache
from lakehouse.service.engine import Engines
from lakehouse.service.keys import KeyStore
from lakehouse.service.listing import PartitionLister
from lakehouse.service.ratelimit import RateLimiter
from lakehouse.service.routes import router
from lakehouse.service.settings import ServiceSettings

DESCRIPTION = """
The vehicle lakehouse's published tables (ADS, DWS, fleet KPIs and the layers a role is
granted), read-only, as the caller's role may see them.

Authenticate with `Authorization: Bearer <key>` (`lakehouse api-key create --role ROLE`).
A role that the policy masks is served from its masked share only: every value it gets,
in every response and error, is masked, and a `{vin}` it sends is compared with masked values.
Lists are `{"items": [...], "next_cursor": ...}`; pass `next_cursor` back as `?cursor=`.
Responses carry an `ETag`; send it back as `If-None-Match` to get `304` while the data is
unchanged.
"""


@dataclass
class Service:
    """What the endpoints share for the server's lifetime."""

    settings: ServiceSettings
    storage: LakehouseStorage
    keys: KeyStore
    policy: PolicyWatcher
    lister: PartitionLister
    engines: Engines
    limiter: RateLimiter
    pages: PageCache
    log: logging.Logger

    def readiness(self) -> dict[str, bool]:
        """Whether the policy loads and every zone the roles read from answers."""
        checks = {"policy": True, "storage": True}
        try:
            snapshot = self.policy.current()
        except PolicyUnavailable:
            return {"policy": False, "storage": False}
        zones = {s.zone.url: s.zone for r in snapshot.roles.values() for s in r.sources.values()}
        for zone in zones.values():
            try:
                zone.has_any("")
            except Exception:
                self.log.warning("storage %s does not answer", zone.url, exc_info=True)
                checks["storage"] = False
        return checks


def build_service(settings: ServiceSettings, storage: LakehouseStorage | None = None) -> Service:
    """The service's parts; raises if the policy or the storage settings are unusable."""
    storage = storage or LakehouseStorage()
    log = logging.getLogger("lakehouse.service")
    keys = KeyStore(settings.resolved_keys_path())
    if not keys.path.exists():
        log.warning("no API key file at %s yet: every request will get 401", keys.path)
    return Service(
        settings=settings,
        storage=storage,
        keys=keys,
        policy=PolicyWatcher(policy_path(), storage),
        lister=PartitionLister(settings.listing_ttl_seconds),
        engines=Engines(settings.memory_limit, settings.threads),
        limiter=RateLimiter(settings.rate_limit, settings.rate_burst),
        pages=PageCache(settings.response_cache_mb),
        log=log,
    )


def create_app(
    settings: ServiceSettings | None = None, storage: LakehouseStorage | None = None
) -> FastAPI:
    """The data service as an ASGI app (``lakehouse serve`` runs it on uvicorn)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = build_service(settings or ServiceSettings(), storage)
        app.state.service = service
        try:
            yield
        finally:
            service.engines.close()

    access_log.configure()
    app = FastAPI(
        title="Vehicle lakehouse data service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    app.add_middleware(access_log.AccessLogMiddleware)
    app.include_router(router)
    return app
