"""ETags and cache headers: a response is as fresh as the partition files it read.

The ETag digests the representation's version, the caller's role and that role's policy
version, the request (route and parameters) and the digest of the files read (their keys, sizes
and versions). Replacing an hour, landing a new one inside the range, or changing what the role
may see all change it; an unchanged one lets a client revalidate with ``If-None-Match`` and get
``304 Not Modified`` without the query being run. Responses depend on the API key, so they are
``private`` and vary by ``Authorization``.
"""

from __future__ import annotations

import hashlib
import json

# Bump when the JSON shape of a response changes, so cached copies are not revalidated.
REPRESENTATION = "v1.1"


def make_etag(*parts: object) -> str:
    """A strong ETag over ``parts`` (JSON-serialisable)."""
    text = json.dumps([REPRESENTATION, *parts], sort_keys=True, default=str)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison of ``If-None-Match`` against our ETag (``*`` matches)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def cache_headers(etag: str, max_age: int) -> dict[str, str]:
    """Validator and caching policy of a successful response."""
    return {
        "ETag": etag,
        "Cache-Control": f"private, max-age={max_age}, must-revalidate",
        "Vary": "Authorization",
    }
