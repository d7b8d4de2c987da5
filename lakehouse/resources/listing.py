"""List a zone's objects from a starting key onwards, counting the listing calls it took.

The raw zone's hive layout sorts by arrival time (``dt=YYYY-MM-DD/hh=HH/``), so everything from
an hour onwards is one ordered range: an S3 ``ListObjectsV2`` with ``StartAfter`` (one call per
1,000 keys) or, locally, a walk that skips earlier ``dt=``/``hh=`` folders without opening them.
Older history is never touched, which keeps a discovery tick's cost independent of it.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.resources.zones import Zone


@dataclass(frozen=True)
class ListedObject:
    """An object below the zone root: its relative key, size and version (ETag or mtime)."""

    key: str
    size: int
    version: str


@dataclass
class Listing:
    """Objects in key order, and how many listing calls (pages or folders) that took."""

    objects: list[ListedObject] = field(default_factory=list)
    list_calls: int = 0


def list_local(zone: Zone, prefix: str, start_after: str | None) -> Listing:
    """Walk ``prefix`` in key order, pruning folders that sort entirely before ``start_after``."""
    listing = Listing()
    _walk(zone, prefix.rstrip("/"), start_after, listing)
    return listing


def _walk(zone: Zone, relative_dir: str, start_after: str | None, listing: Listing) -> None:
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
                _walk(zone, key, start_after, listing)
        elif entry.is_file(follow_symlinks=False) and (start_after is None or key > start_after):
            stat = entry.stat()
            listing.objects.append(ListedObject(key, stat.st_size, str(stat.st_mtime_ns)))


def list_s3(client: Any, zone: Zone, prefix: str, start_after: str | None) -> Listing:
    """``ListObjectsV2`` pages from ``start_after`` onwards; keys come back relative to the zone."""
    bucket, _, root = zone.root.partition("/")
    base = f"{root}/" if root else ""
    params: dict[str, str] = {"Bucket": bucket, "Prefix": base + prefix}
    if start_after:
        params["StartAfter"] = base + start_after
    listing = Listing()
    for page in client.get_paginator("list_objects_v2").paginate(**params):
        listing.list_calls += 1
        for item in page.get("Contents", []):
            listing.objects.append(
                ListedObject(
                    item["Key"][len(base) :], int(item["Size"]), str(item["ETag"]).strip('"')
                )
            )
    return listing
