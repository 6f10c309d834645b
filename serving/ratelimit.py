"""Per-tenant token buckets: ``rate`` requests per second with a ``burst`` allowance."""

from __future__ import annotations

import math
import threading
import time

from serving.errors import ApiError


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, tenant_id: str) -> None:
        """Take a token, or raise 429 with ``Retry-After``."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(tenant_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[tenant_id] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.rate)
                raise ApiError(
                    429,
                    "rate_limited",
                    "too many requests for this tenant",
                    headers={"Retry-After": str(max(1, wait))},
                )
            self._buckets[tenant_id] = (tokens - 1, now)
