"""Per-key rate limits: a token bucket per API key (the ``token-bucket`` library).

Each key may make ``burst`` requests at once and ``rate`` per second sustained; a key created
with its own ``--rate``/``--burst`` gets those, every other key the server's defaults
(``LAKEHOUSE_API_RATE_LIMIT``, ``LAKEHOUSE_API_RATE_BURST``: 50/s, burst 100). A refused request
is told when one token will be back (``Retry-After``, whole seconds, at least 1). Buckets live in
the server process: with several server processes, each enforces the limit on its own.
"""

from __future__ import annotations

import math

import token_bucket


class RateLimiter:
    """Token buckets keyed by API key id, one limiter per distinct (rate, burst)."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._storage = token_bucket.MemoryStorage()
        self._limiters: dict[tuple[float, int], token_bucket.Limiter] = {}

    def limits_for(self, rate: float | None, burst: int | None) -> tuple[float, int]:
        """The key's own limits where it has them, else the server's."""
        return (rate or self.rate, burst or self.burst)

    def acquire(self, key_id: str, rate: float | None = None, burst: int | None = None) -> int:
        """0 if the request may go ahead, else the seconds to wait before retrying."""
        rate, burst = self.limits_for(rate, burst)
        limiter = self._limiters.get((rate, burst))
        if limiter is None:
            limiter = self._limiters[(rate, burst)] = token_bucket.Limiter(
                rate, burst, self._storage
            )
        bucket = f"{key_id}:{rate}:{burst}"  # a changed limit starts a fresh bucket
        if limiter.consume(bucket):
            return 0
        missing = 1.0 - self._storage.get_token_count(bucket)
        return max(1, math.ceil(missing / rate))
