"""What the gateway's routes work with: settings, tenants, stores, retrieval, the builder."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from actors.tenants import TenantDirectory
from cluster.settings import Settings
from memory.store import TenantStore
from serving.metrics import Metrics
from serving.ratelimit import RateLimiter


@dataclass
class GatewayContext:
    settings: Settings
    tenants: TenantDirectory
    retrieval: Any  # a serving.retrieval.Retriever, or a Serve DeploymentHandle to one
    builder: Any  # a serving.builder.MemoryBuilder, or a Serve DeploymentHandle to one
    metrics: Metrics = field(default_factory=Metrics)
    rate_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(self.settings.api.rate_limit_rps, self.settings.api.rate_limit_burst)
        self._stores = lru_cache(maxsize=256)(lambda tenant: TenantStore(self.settings.storage_root, tenant))

    def store(self, tenant_id: str) -> TenantStore:
        return self._stores(tenant_id)


async def call(target: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``method`` on a local object (in a thread) or on a Serve deployment handle, alike."""
    from ray.serve.handle import DeploymentHandle

    if isinstance(target, DeploymentHandle):
        return await getattr(target, method).remote(*args, **kwargs)
    return await asyncio.to_thread(getattr(target, method), *args, **kwargs)
