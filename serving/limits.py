"""Enforcing a tenant's quota in a gateway, and metering its usage.

- requests/s: a token bucket per tenant (``requests_per_s``, capacity ``quotas.burst``);
- tokens/min: a token bucket per tenant refilled at ``tokens_per_min`` / 60 per second; a chat
  request is admitted while the bucket is not empty and its actual tokens are taken after it;
- storage: a write is refused once the tenant's stored bytes reach ``storage_bytes``.

Each refusal is a 429: with ``Retry-After`` when waiting helps (rates), type
``insufficient_quota`` when it does not (storage). Limits are per gateway replica, read from the
quota table at most every ``quotas.cache_s``. Usage is buffered and written every
``quotas.usage_flush_s`` by a background thread, and on close.
"""

from __future__ import annotations

import atexit
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

from actors import Metric, QuotaBook
from cluster import Storage, TenantLimits, tenant_key
from serving.errors import ApiError

T = TypeVar("T")


class TokenBuckets:
    """Token buckets by key; each call names the bucket's rate (tokens/s) and capacity."""

    def __init__(self) -> None:
        self._levels: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, capacity: float, amount: float, need: float) -> float:
        """Take ``amount`` if at least ``need`` is there: 0.0; else the seconds until it is."""
        now = time.monotonic()
        with self._lock:
            level, last = self._levels.get(key, (capacity, now))
            level = min(capacity, level + (now - last) * rate)
            if level < need:
                self._levels[key] = (level, now)
                return (need - level) / rate
            self._levels[key] = (level - amount, now)
            return 0.0


class Cached(Generic[T]):
    """Values by key, each trusted for ``ttl`` seconds after it was read."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, T]] = {}

    def get(self, key: str, read: Callable[[], T]) -> T:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = read()
        self._items[key] = (now, value)
        return value

    def drop(self, key: str) -> None:
        self._items.pop(key, None)


class Limits:
    def __init__(self, book: QuotaBook, storage: Storage) -> None:
        self.book = book
        self.storage = storage
        self.settings = book.defaults
        self.buckets = TokenBuckets()
        self._quotas: Cached[TenantLimits] = Cached(self.settings.cache_s)
        self._stored: Cached[int] = Cached(self.settings.cache_s)

    def quota(self, tenant_id: str) -> TenantLimits:
        return self._quotas.get(tenant_id, lambda: self.book.get(tenant_id))

    def forget(self, tenant_id: str) -> None:
        """Drop what this gateway cached of the tenant (its quota changed, or it was deleted)."""
        self._quotas.drop(tenant_id)
        self._stored.drop(tenant_id)

    def check_request(self, tenant_id: str) -> None:
        quota = self.quota(tenant_id)
        capacity = max(float(self.settings.burst), quota.requests_per_s)
        wait = self.buckets.take(f"requests/{tenant_id}", quota.requests_per_s, capacity, 1.0, 1.0)
        if wait:
            raise _rate_limited("requests_per_s", f"over {quota.requests_per_s:g} requests/s", wait)

    def check_tokens(self, tenant_id: str) -> None:
        """Admit an LLM request while the tenant's tokens/min bucket is not empty."""
        limit = self.quota(tenant_id).tokens_per_min
        if limit is not None:
            wait = self.buckets.take(f"tokens/{tenant_id}", limit / 60, limit, 0.0, 1.0)
            if wait:
                raise _rate_limited("tokens_per_min", f"over {limit} tokens/min", wait)

    def spend_tokens(self, tenant_id: str, tokens: int) -> None:
        limit = self.quota(tenant_id).tokens_per_min
        if limit is not None and tokens:
            self.buckets.take(f"tokens/{tenant_id}", limit / 60, limit, float(tokens), 0.0)

    def stored_bytes(self, tenant_id: str) -> int:
        """Bytes the tenant stores (tables, files, adapters, checkpoints), on disk or object store."""
        return self._stored.get(tenant_id, lambda: self.storage.size(tenant_key(tenant_id))[1])

    def check_storage(self, tenant_id: str) -> None:
        limit = self.quota(tenant_id).storage_bytes
        if limit is None:
            return
        used = self.stored_bytes(tenant_id)
        if used >= limit:
            raise ApiError(
                429,
                "insufficient_quota",
                f"the tenant stores {used} of its {limit} bytes; delete data or ask for a larger quota",
                "storage_bytes",
            )


def _rate_limited(param: str, message: str, wait: float) -> ApiError:
    retry = {"Retry-After": str(max(1, math.ceil(wait)))}
    return ApiError(429, "rate_limited", f"{message} for this tenant", param, retry)


class UsageMeter:
    """Usage buffered in memory and written to the quota book every ``interval`` seconds."""

    def __init__(self, book: QuotaBook, interval: float) -> None:
        self.book = book
        self.interval = interval
        self._pending: list[tuple[str, Metric, float, datetime]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-meter", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def add(self, tenant_id: str, metric: Metric, amount: float) -> None:
        if amount:
            with self._lock:
                self._pending.append((tenant_id, metric, amount, datetime.now(UTC)))

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        try:
            self.book.record(pending)
        except Exception:
            with self._lock:  # keep them for the next flush rather than lose them
                self._pending[:0] = pending
            raise

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # a database hiccup: retried at the next interval
                continue

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=5)
            self.flush()
