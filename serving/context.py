"""What the gateway's routes work with: settings, the control plane's stores, and the deployments.

``retrieval``, ``builder`` and each of ``llms`` are typed handles (``serving.handles``): the routes
call their methods, whether they run in this process or as Serve deployments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from actors import AuditLog, ModelRegistry, QuotaBook, TenantDirectory
from cluster import Settings, Storage
from memory import TenantStore
from serving.handles import LLM, Builder, Retrieval, connect
from serving.limits import Limits, UsageMeter
from serving.metrics import Metrics


@dataclass
class GatewayContext:
    settings: Settings
    tenants: TenantDirectory
    retrieval: Retrieval
    builder: Builder
    llms: dict[str, LLM] = field(default_factory=dict)  # base model -> its engine
    metrics: Metrics = field(default_factory=Metrics)
    models: ModelRegistry = field(init=False)
    quotas: QuotaBook = field(init=False)
    limits: Limits = field(init=False)
    usage: UsageMeter = field(init=False)
    audit: AuditLog = field(init=False)

    @classmethod
    def create(
        cls, settings: Settings, retrieval: object, builder: object, llms: Mapping[str, object] | None = None
    ) -> GatewayContext:
        """The context of a gateway over these deployments: objects in this process or Serve handles."""
        tenants = TenantDirectory(settings.control_db_url)
        engines = {name: connect(llm, LLM) for name, llm in (llms or {}).items()}
        return cls(settings, tenants, connect(retrieval, Retrieval), connect(builder, Builder), engines)

    def __post_init__(self) -> None:
        database = self.settings.control_db_url
        self.models = ModelRegistry.from_settings(self.settings)
        self.quotas = QuotaBook(database, self.settings.quotas)
        self.limits = Limits(self.quotas, Storage.of(self.settings))
        self.usage = UsageMeter(self.quotas, self.settings.quotas.usage_flush_s)
        self.audit = AuditLog(database)
        storage = Storage.of(self.settings)
        self._stores = lru_cache(maxsize=256)(lambda tenant: TenantStore(storage, tenant))

    def store(self, tenant_id: str) -> TenantStore:
        return self._stores(tenant_id)

    async def forget_tenant(self, tenant_id: str) -> None:
        """Stop everything this gateway runs or holds for a tenant being deleted: background builds
        (waited for), metered usage (written now, so the deletion removes it), cached quotas, open
        stores here and in retrieval, decrypted adapters and loaded weights in the engines."""
        await self.builder.forget_tenant(tenant_id)
        await asyncio.to_thread(self.usage.flush)
        self.limits.forget(tenant_id)
        self._stores.cache_clear()
        await self.retrieval.forget_tenant(tenant_id)
        for llm in self.llms.values():
            await llm.forget_tenant(tenant_id)
