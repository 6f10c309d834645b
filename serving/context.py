"""What the gateway's routes work with: settings, tenants, stores, retrieval, the builder."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from actors.audit import AuditLog
from actors.models import ModelRegistry
from actors.quotas import QuotaBook
from actors.tenants import TenantDirectory
from cluster.settings import Settings
from memory.store import TenantStore
from serving.limits import Limits, UsageMeter
from serving.metrics import Metrics


@dataclass
class GatewayContext:
    settings: Settings
    tenants: TenantDirectory
    retrieval: Any  # a serving.retrieval.Retriever, or a Serve DeploymentHandle to one
    builder: Any  # a serving.builder.MemoryBuilder, or a Serve DeploymentHandle to one
    llms: dict[str, Any] = field(default_factory=dict)  # base model -> serving.llm.LLMServer or a handle
    metrics: Metrics = field(default_factory=Metrics)
    models: ModelRegistry = field(init=False)
    quotas: QuotaBook = field(init=False)
    limits: Limits = field(init=False)
    usage: UsageMeter = field(init=False)
    audit: AuditLog = field(init=False)

    def __post_init__(self) -> None:
        database = self.settings.api.control_db_url(self.settings.storage_root)
        self.models = ModelRegistry.from_settings(self.settings)
        self.quotas = QuotaBook(database, self.settings.quotas)
        self.limits = Limits(self.quotas, self.settings.storage_root)
        self.usage = UsageMeter(self.quotas, self.settings.quotas.usage_flush_s)
        self.audit = AuditLog(database)
        self._stores = lru_cache(maxsize=256)(lambda tenant: TenantStore(self.settings.storage_root, tenant))

    def store(self, tenant_id: str) -> TenantStore:
        return self._stores(tenant_id)

    async def forget_tenant(self, tenant_id: str) -> None:
        """Stop everything this gateway runs or holds for a tenant being deleted: background builds
        (waited for), metered usage (written now, so the deletion removes it), cached quotas, open
        stores here and in retrieval, decrypted adapters and loaded weights in the engines."""
        await call(self.builder, "forget_tenant", tenant_id)
        await asyncio.to_thread(self.usage.flush)
        self.limits.forget(tenant_id)
        self._stores.cache_clear()
        await call(self.retrieval, "forget_tenant", tenant_id)
        for llm in self.llms.values():
            await call(llm, "forget_tenant", tenant_id)


def _is_handle(target: Any) -> bool:
    from ray.serve.handle import DeploymentHandle

    return isinstance(target, DeploymentHandle)


def _over_grpc(handle: Any, **options: Any) -> Any:
    """The handle, calling its deployment over Serve's inter-deployment gRPC
    (``_by_reference=False``): the result comes back on the call itself, where a Ray actor call
    returns an object reference to fetch."""
    return handle.options(_by_reference=False, **options)


async def call(target: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``method`` on a local object (in a thread unless it is async) or on a Serve handle, alike."""
    if _is_handle(target):
        return await getattr(_over_grpc(target), method).remote(*args, **kwargs)
    function = getattr(target, method)
    if inspect.iscoroutinefunction(function):
        return await function(*args, **kwargs)
    return await asyncio.to_thread(function, *args, **kwargs)


def stream(target: Any, method: str, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """Iterate the async generator ``method`` of a local object or of a Serve deployment, alike."""
    if _is_handle(target):
        generator: AsyncIterator[Any] = getattr(_over_grpc(target, stream=True), method).remote(
            *args, **kwargs
        )
        return generator
    local: AsyncIterator[Any] = getattr(target, method)(*args, **kwargs)
    return local
