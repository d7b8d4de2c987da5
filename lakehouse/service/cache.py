"""Pages already served, by ETag: an unchanged request for unchanged data skips the query.

A page is kept as the JSON bytes that were sent, so a hit costs neither DuckDB nor pydantic.

The ETag digests everything a page depends on (role and its policy version, route and every
parameter, the exact partition files read), so it is a safe cache key: new or republished data,
or a policy change for the role, gives another ETag and so a miss. Dashboards polling the same
URLs are answered from memory; the cache is bounded in size (``LAKEHOUSE_API_RESPONSE_CACHE_MB``,
0 turns it off) and least recently used pages go first.
"""

from __future__ import annotations

import threading

import cachetools


class PageCache:
    """A thread-safe LRU map of ETag -> (JSON body, rows), bounded by the bodies' bytes."""

    def __init__(self, megabytes: int):
        self.enabled = megabytes > 0
        self._pages: cachetools.LRUCache = cachetools.LRUCache(
            maxsize=max(1, megabytes) << 20, getsizeof=_size
        )
        self._lock = threading.Lock()

    def get(self, etag: str) -> tuple[bytes, int] | None:
        if not self.enabled:
            return None
        with self._lock:
            return self._pages.get(etag)

    def put(self, etag: str, page: tuple[bytes, int]) -> None:
        if not self.enabled or _size(page) > self._pages.maxsize:
            return
        with self._lock:
            self._pages[etag] = page


def _size(page: tuple[bytes, int]) -> int:
    return len(page[0]) + 100
