"""List a zone's objects from a starting key onwards, one page at a time, counting the calls.

The raw zone's hive layout sorts by arrival time (``dt=YYYY-MM-DD/hh=HH/``), so everything from
an hour onwards is one ordered range: an S3 ``ListObjectsV2`` with ``StartAfter`` (one call per
1,000 keys) or, locally, a walk that skips earlier ``dt=``/``hh=`` folders without opening them.
Older history is never touched, which keeps a discovery tick's cost independent of it.

Pages come one at a time so a caller with a deadline can stop between them. Each S3 page is
retried on transient faults (raising ``TransientStorageError`` if they last); a missing bucket
or refused credentials raise ``StorageConfigError``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from lakehouse.resources.faults import (
    CONFIG_CODES,
    StorageConfigError,
    call_with_retries,
    describe,
    s3_error_code,
)

if TYPE_CHECKING:
    from lakehouse.resources.zones import Zone

PAGE_SIZE = 1000  # what one S3 ListObjectsV2 call returns at most


@dataclass(frozen=True)
class ListedObject:
    """An object below the zone root: its relative key, size and version (ETag or mtime)."""

    key: str
    size: int
    version: str


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``last`` when nothing follows it."""

    objects: list[ListedObject]
    last: bool


@dataclass
class Listing:
    """Objects in key order, and how many listing calls (pages or folders) that took."""

    objects: list[ListedObject] = field(default_factory=list)
    list_calls: int = 0


def list_pages(zone: Zone, prefix: str, start_after: str | None) -> Iterator[Page]:
    """Pages of up to 1,000 objects under ``prefix`` whose key sorts after ``start_after``."""
    if zone.is_local:
        objects = _walk(zone, prefix.rstrip("/"), start_after, Listing())
        page = list(islice(objects, PAGE_SIZE))
        while True:
            following = list(islice(objects, PAGE_SIZE))
            yield Page(page, last=not following)
            if not following:
                return
            page = following
    yield from _s3_pages(zone, prefix, start_after, Listing())


def list_folders(zone: Zone, prefix: str) -> list[str]:
    """Names of the folders directly below ``prefix``, sorted (S3: common prefixes)."""
    if zone.is_local:
        try:
            entries = os.scandir(zone.path(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []
        with entries:
            return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    bucket, base = _s3_location(zone)
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": base + prefix, "Delimiter": "/"}
    names = []
    while True:
        page = _s3_call(zone, params)
        folders = page.get("CommonPrefixes", [])
        names += [p["Prefix"][len(base + prefix) :].rstrip("/") for p in folders]
        if not page.get("IsTruncated"):
            return sorted(names)
        params["ContinuationToken"] = page["NextContinuationToken"]


def list_local(zone: Zone, prefix: str, start_after: str | None) -> Listing:
    """Walk ``prefix`` in key order, pruning folders that sort entirely before ``start_after``."""
    listing = Listing()
    listing.objects = list(_walk(zone, prefix.rstrip("/"), start_after, listing))
    return listing


def list_s3(client: Any, zone: Zone, prefix: str, start_after: str | None) -> Listing:
    """``ListObjectsV2`` pages from ``start_after`` onwards; keys come back relative to the zone."""
    listing = Listing()
    for page in _s3_pages(zone, prefix, start_after, listing, client):
        listing.objects += page.objects
    return listing


def _walk(
    zone: Zone, relative_dir: str, start_after: str | None, listing: Listing
) -> Iterator[ListedObject]:
    listing.list_calls += 1
    try:
        entries = sorted(os.scandir(zone.path(relative_dir)), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in entries:
        key = posixpath.join(relative_dir, entry.name)
        if entry.is_dir(follow_symlinks=False):
            # Every key inside sorts after key + "/"; skip the folder if all of them are too early.
            if start_after is None or (key + "/\uffff") > start_after:
                yield from _walk(zone, key, start_after, listing)
        elif entry.is_file(follow_symlinks=False) and (start_after is None or key > start_after):
            stat = entry.stat()
            yield ListedObject(key, stat.st_size, str(stat.st_mtime_ns))


def _s3_location(zone: Zone) -> tuple[str, str]:
    bucket, _, root = zone.root.partition("/")
    return bucket, f"{root}/" if root else ""


def _s3_pages(
    zone: Zone, prefix: str, start_after: str | None, listing: Listing, client: Any = None
) -> Iterator[Page]:
    bucket, base = _s3_location(zone)
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": base + prefix, "MaxKeys": PAGE_SIZE}
    if start_after:
        params["StartAfter"] = base + start_after
    while True:
        page = _s3_call(zone, params, client)
        listing.list_calls += 1
        objects = [
            ListedObject(item["Key"][len(base) :], int(item["Size"]), str(item["ETag"]).strip('"'))
            for item in page.get("Contents", [])
        ]
        yield Page(objects, last=not page.get("IsTruncated"))
        if not page.get("IsTruncated"):
            return
        params["ContinuationToken"] = page["NextContinuationToken"]


def _s3_call(zone: Zone, params: dict[str, Any], client: Any = None) -> dict[str, Any]:
    """One ``ListObjectsV2`` call, retried on transient faults; config errors said plainly."""
    client = client or zone.client  # type: ignore[attr-defined]
    try:
        return call_with_retries(
            f"cannot list {zone.url}",
            lambda: client.list_objects_v2(**params),
            getattr(zone, "attempts", 1),
        )
    except Exception as exc:
        code, _ = s3_error_code(exc)
        if code in CONFIG_CODES:
            raise StorageConfigError(f"cannot list {zone.url}: {describe(exc)}") from None
        raise
