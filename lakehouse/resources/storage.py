"""One storage resource over a local folder and any S3-protocol store (S3, MinIO, OSS).

Every zone (raw, warehouse, share) is addressed by a URL: a local path or ``s3://bucket/prefix``.
Credentials are never part of this resource's config: pyarrow and boto3 resolve them through the
standard AWS chain (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
profiles, instance roles), so they cannot leak into run config, metadata or the UI. A URL that
tries to carry them is refused before Dagster stores the run's config (see
:func:`storage_resource`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

import dagster as dg
import pyarrow.fs as pafs
from pydantic import Field

from lakehouse.paths import resolve_local
from lakehouse.resources.faults import DEFAULT_ATTEMPTS, StorageConfigError
from lakehouse.resources.listing import Listing, list_local, list_s3
from lakehouse.resources.zones import LocalZone, S3Zone, Zone

__all__ = ["LakehouseStorage", "StorageConfigError", "Zone", "storage_resource"]

DEFAULT_RAW_URL = "data/raw"
DEFAULT_WAREHOUSE_URL = "data/warehouse"
DEFAULT_REGION = "us-east-1"
URL_FIELDS = ("raw_url", "warehouse_url", "share_url", "endpoint_url")
# Seconds before a request to the store is given up on and retried.
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 60


def check_url(field: str, url: str | None) -> None:
    """Refuse a storage URL or endpoint that embeds credentials, without echoing it."""
    if not url:
        return
    parts = urlsplit(url if "://" in url else f"//{url}" if field == "endpoint_url" else url)
    if "@" in parts.netloc or parts.username or parts.password:
        raise StorageConfigError(
            f"{field} must not carry credentials; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or a profile / instance role) instead"
        )


class LakehouseStorage(dg.ConfigurableResource):
    """Where the raw zone, the warehouse and the shares live; local folders by default.

    Unset fields fall back, at run time, to ``LAKEHOUSE_RAW_URL``, ``LAKEHOUSE_WAREHOUSE_URL``,
    ``LAKEHOUSE_SHARE_URL``, ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` and
    ``AWS_REGION``/``AWS_DEFAULT_REGION``. Relative local paths resolve against the project home.
    """

    raw_url: str | None = Field(
        default=None,
        description="Raw zone: local path or s3://bucket/prefix. Default $LAKEHOUSE_RAW_URL "
        f"or {DEFAULT_RAW_URL}.",
    )
    warehouse_url: str | None = Field(
        default=None,
        description="Warehouse zone: local path or s3://bucket/prefix. Default "
        f"$LAKEHOUSE_WAREHOUSE_URL or {DEFAULT_WAREHOUSE_URL}.",
    )
    share_url: str | None = Field(
        default=None,
        description="Masked shares for other teams: local path or s3://bucket/prefix, ideally "
        "a bucket of its own. Default $LAKEHOUSE_SHARE_URL or <warehouse>/share.",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3-protocol endpoint (MinIO, OSS, moto), e.g. http://127.0.0.1:9000. "
        "Default $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL; unset means AWS S3.",
    )
    region: str | None = Field(
        default=None,
        description=f"Bucket region. Default $AWS_REGION, $AWS_DEFAULT_REGION or {DEFAULT_REGION}.",
    )
    virtual_addressing: bool = Field(
        default=False,
        description="Use virtual-hosted-style requests (bucket.endpoint); Alibaba OSS needs it.",
    )
    io_attempts: int = Field(
        default=DEFAULT_ATTEMPTS,
        description="Attempts per storage operation on throttling, timeouts and 5xx (with "
        "exponential backoff) before the step fails.",
    )

    def raw(self, create: bool = False) -> Zone:
        """The raw zone. Only uploaders (the sample generator) may ``create`` a local one."""
        url = self.raw_url or os.environ.get("LAKEHOUSE_RAW_URL") or DEFAULT_RAW_URL
        return self._zone("raw_url", url, create=create)

    def warehouse(self) -> Zone:
        url = self.warehouse_url or os.environ.get("LAKEHOUSE_WAREHOUSE_URL")
        return self._zone("warehouse_url", url or DEFAULT_WAREHOUSE_URL, create=True)

    def share(self) -> Zone:
        """Where masked shares are written: ``<warehouse>/share`` unless set apart."""
        url = self.share_url or os.environ.get("LAKEHOUSE_SHARE_URL")
        if not url:
            base = self.warehouse_url or os.environ.get("LAKEHOUSE_WAREHOUSE_URL")
            url = (base or DEFAULT_WAREHOUSE_URL).rstrip("/") + "/share"
        return self._zone("share_url", url, create=True)

    def list_raw(self, prefix: str, start_after: str | None = None) -> Listing:
        """Raw-zone objects under ``prefix`` whose key sorts after ``start_after``."""
        zone = self.raw()
        if isinstance(zone, S3Zone):
            return list_s3(zone.client, zone, prefix, start_after)
        return list_local(zone, prefix, start_after)

    def bounded(self, zone: Zone, attempts: int, timeout_seconds: float) -> Zone:
        """``zone`` for a caller with a deadline (the discovery sensor): ``attempts`` requests per
        operation in all, each given up after ``timeout_seconds``; runs keep the patient defaults.
        """
        if not isinstance(zone, S3Zone):
            return zone
        # One HTTP request per attempt (botocore's own retries off): `attempts` is the total.
        retries = {"mode": "standard", "total_max_attempts": 1}
        client = functools.partial(self._s3_client, retries, timeout_seconds)
        return S3Zone(zone.bucket, zone.prefix, client, self._s3_filesystem, attempts)

    def _zone(self, field: str, url: str, create: bool) -> Zone:
        check_url(field, url)
        parts = urlsplit(url)
        if parts.scheme in ("", "file"):
            root = resolve_local(parts.path if parts.scheme else url)
            if create:
                root.mkdir(parents=True, exist_ok=True)
            elif not root.is_dir():
                raise StorageConfigError(
                    f"{field} {url!r} ({root}) does not exist; it is never created by the "
                    "pipeline: check the setting (or LAKEHOUSE_RAW_URL)"
                )
            return LocalZone(root.as_posix(), url)
        if parts.scheme not in ("s3", "s3a", "oss"):
            raise StorageConfigError(
                f"unsupported storage scheme {parts.scheme!r}: use a local path or s3://bucket/prefix"
            )
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if not bucket:
            raise StorageConfigError(f"storage URL {url!r} names no bucket")
        self._endpoint()  # refuse a bad endpoint now, not at the first request
        return S3Zone(bucket, prefix, self._s3_client, self._s3_filesystem)

    def _region(self) -> str:
        return (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or DEFAULT_REGION
        )

    def _endpoint(self) -> SplitResult | None:
        endpoint = (
            self.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        if not endpoint:
            return None
        check_url("endpoint_url", endpoint)
        parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise StorageConfigError("the S3 endpoint must look like http(s)://host[:port]")
        return parsed

    def _s3_filesystem(self) -> pafs.S3FileSystem:
        options: dict[str, object] = {
            "region": self._region(),
            "force_virtual_addressing": self.virtual_addressing,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=self.io_attempts),
            "connect_timeout": CONNECT_TIMEOUT_S,
            "request_timeout": READ_TIMEOUT_S,
        }
        endpoint = self._endpoint()
        if endpoint:
            options["endpoint_override"] = endpoint.netloc
            options["scheme"] = endpoint.scheme
        return pafs.S3FileSystem(**options)

    def _s3_client(
        self, retries: dict[str, Any] | None = None, timeout_seconds: float | None = None
    ) -> Any:
        """A boto3 client with the same endpoint, region, credentials and addressing style."""
        # Imported here: boto3 costs ~0.5 s of a process start, and the local default never
        # needs it.
        import boto3
        from botocore.config import Config

        endpoint = self._endpoint()
        style = "virtual" if self.virtual_addressing else "path" if endpoint else "auto"
        return boto3.session.Session().client(
            "s3",
            region_name=self._region(),
            endpoint_url=f"{endpoint.scheme}://{endpoint.netloc}" if endpoint else None,
            config=Config(
                s3={"addressing_style": style},
                retries=retries or {"mode": "standard", "total_max_attempts": self.io_attempts},
                connect_timeout=timeout_seconds or CONNECT_TIMEOUT_S,
                read_timeout=timeout_seconds or READ_TIMEOUT_S,
            ),
        )


def _refuse_credentials(config: Mapping[str, Any]) -> Mapping[str, Any]:
    for field in URL_FIELDS:
        value = config.get(field)
        check_url(field, value if isinstance(value, str) else None)
    return config


def storage_resource(storage: LakehouseStorage) -> dg.ResourceDefinition:
    """``storage`` as a resource whose run config is checked before Dagster stores a run.

    Dagster validates a run's config, and runs a resource's config mapping, while it builds the
    execution plan, before the run record is written. Refusing credential-bearing URLs there
    means such a URL is never persisted in the run storage, logs or the UI.
    """
    definition = storage.get_resource_definition()
    return definition.configured(
        _refuse_credentials, config_schema=definition.config_schema.as_field().config_type
    )
