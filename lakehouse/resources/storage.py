"""One storage interface over a local folder and any S3-protocol store (S3, MinIO, OSS).

Both zones (raw and warehouse) are addressed by a URL: a local path or ``s3://bucket/prefix``.
S3 access goes through pyarrow's S3 filesystem, so DuckDB scans and Parquet writes use the same
code path against a laptop folder and a bucket. Credentials are never part of this resource's
config: pyarrow resolves them through the standard AWS chain (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, profiles, instance roles), so they cannot leak
into run config, metadata or the UI.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import dagster as dg
import pyarrow.fs as pafs
from pydantic import Field

from lakehouse.paths import resolve_local
from lakehouse.resources.listing import Listing, list_local, list_s3

DEFAULT_RAW_URL = "data/raw"
DEFAULT_WAREHOUSE_URL = "data/warehouse"
DEFAULT_REGION = "us-east-1"


class StorageConfigError(ValueError):
    """A storage URL or endpoint that cannot be used (the message never echoes secrets)."""


@dataclass(frozen=True)
class Zone:
    """A root folder on a filesystem: a local directory or a bucket prefix."""

    filesystem: pafs.FileSystem
    root: str
    url: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        """Filesystem path of ``parts`` below the zone root."""
        return posixpath.join(self.root, *parts) if parts else self.root

    def display(self, path: str) -> str:
        """User-facing URL for a filesystem path of this zone."""
        rel = posixpath.relpath(path, self.root)
        return self.url.rstrip("/") + "/" + rel

    def list_files(self, relative_dir: str, recursive: bool = False) -> list[pafs.FileInfo]:
        """Files below ``relative_dir``, sorted by path; an absent directory lists as empty."""
        selector = pafs.FileSelector(
            self.path(relative_dir), allow_not_found=True, recursive=recursive
        )
        infos = self.filesystem.get_file_info(selector)
        return sorted(
            (info for info in infos if info.type == pafs.FileType.File), key=lambda i: i.path
        )

    def exists(self, relative_path: str) -> bool:
        info = self.filesystem.get_file_info(self.path(relative_path))
        return info.type != pafs.FileType.NotFound

    def ensure_dir(self, relative_dir: str) -> None:
        self.filesystem.create_dir(self.path(relative_dir), recursive=True)

    def write_bytes(self, relative_path: str, payload: bytes) -> None:
        parent = posixpath.dirname(relative_path)
        if parent and self.is_local:  # object stores need no folders (and get marker objects)
            self.ensure_dir(parent)
        with self.filesystem.open_output_stream(self.path(relative_path)) as out:
            out.write(payload)

    def read_bytes(self, relative_path: str) -> bytes:
        with self.filesystem.open_input_stream(self.path(relative_path)) as src:
            return src.read()


class LakehouseStorage(dg.ConfigurableResource):
    """Where the raw zone and the warehouse live; local folders by default.

    Unset fields fall back, at run time, to ``LAKEHOUSE_RAW_URL``, ``LAKEHOUSE_WAREHOUSE_URL``,
    ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` and ``AWS_REGION``/``AWS_DEFAULT_REGION``.
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

    def list_raw(self, prefix: str, start_after: str | None = None) -> Listing:
        """Raw-zone objects under ``prefix`` whose key sorts after ``start_after``."""
        zone = self.raw()
        if zone.is_local:
            return list_local(zone, prefix, start_after)
        return list_s3(self._s3_client(), zone, prefix, start_after)

    def raw(self, create: bool = False) -> Zone:
        """The raw zone. Only uploaders (the sample generator) may ``create`` a local one."""
        url = self.raw_url or os.environ.get("LAKEHOUSE_RAW_URL") or DEFAULT_RAW_URL
        return self._zone(url, create=create)

    def share(self) -> Zone:
        """Where masked shares are written: ``<warehouse>/share`` unless set apart."""
        url = self.share_url or os.environ.get("LAKEHOUSE_SHARE_URL")
        if not url:
            base = self.warehouse_url or os.environ.get("LAKEHOUSE_WAREHOUSE_URL")
            url = (base or DEFAULT_WAREHOUSE_URL).rstrip("/") + "/share"
        return self._zone(url, create=True)

    def warehouse(self) -> Zone:
        url = self.warehouse_url or os.environ.get("LAKEHOUSE_WAREHOUSE_URL")
        return self._zone(url or DEFAULT_WAREHOUSE_URL, create=True)

    def _zone(self, url: str, create: bool) -> Zone:
        parts = urlsplit(url)
        if parts.scheme in ("", "file"):
            root = resolve_local(parts.path if parts.scheme else url)
            if create:
                root.mkdir(parents=True, exist_ok=True)
            return Zone(pafs.LocalFileSystem(), root.as_posix(), url)
        if parts.scheme not in ("s3", "s3a", "oss"):
            raise StorageConfigError(
                f"unsupported storage scheme {parts.scheme!r}: use a local path or s3://bucket/prefix"
            )
        if "@" in parts.netloc:
            raise StorageConfigError(
                "storage URLs must not carry credentials; use AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY instead"
            )
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if not bucket:
            raise StorageConfigError(f"storage URL {url!r} names no bucket")
        root = posixpath.join(bucket, prefix) if prefix else bucket
        return Zone(self._s3_filesystem(), root, f"s3://{root}")

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
        parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise StorageConfigError("the S3 endpoint must look like http(s)://host[:port]")
        if parsed.username or parsed.password:
            raise StorageConfigError("the S3 endpoint URL must not carry credentials")
        return parsed

    def _s3_filesystem(self) -> pafs.S3FileSystem:
        options: dict[str, object] = {
            "region": self._region(),
            "force_virtual_addressing": self.virtual_addressing,
        }
        endpoint = self._endpoint()
        if endpoint:
            options["endpoint_override"] = endpoint.netloc
            options["scheme"] = endpoint.scheme
        return pafs.S3FileSystem(**options)

    def _s3_client(self) -> Any:
        """A boto3 client for the listing calls pyarrow does not expose.

        Same endpoint, region, credential chain and addressing style as the pyarrow
        filesystem, so listing works wherever reading does (OSS needs virtual-hosted style).
        """
        # Imported here: boto3 costs ~0.5 s of every process start, and only the sensor's S3
        # listing needs it.
        import boto3
        from botocore.config import Config

        endpoint = self._endpoint()
        style = "virtual" if self.virtual_addressing else "path" if endpoint else "auto"
        return boto3.session.Session().client(
            "s3",
            region_name=self._region(),
            endpoint_url=f"{endpoint.scheme}://{endpoint.netloc}" if endpoint else None,
            config=Config(s3={"addressing_style": style}, retries={"mode": "standard"}),
        )
