"""Memory retrieval for the gateway: the embedders stay loaded, tenant stores stay open."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from cluster import MemoryKind, Settings, Storage
from memory import TenantStore, query_embedder, search


class Retriever:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        query_embedder(settings.embedding.model, settings.retrieval.query_int8)  # loaded for search
        storage = Storage.of(settings)
        self._stores = lru_cache(maxsize=256)(lambda tenant: TenantStore(storage, tenant))

    def search(
        self,
        tenant_id: str,
        user_id: str,
        query: str,
        *,
        k: int = 10,
        kinds: list[MemoryKind] | None = None,
        as_of: datetime | None = None,
        include_superseded: bool = False,
    ) -> list[dict[str, Any]]:
        return search(
            self._stores(tenant_id),
            user_id,
            query,
            k=k,
            kinds=kinds,
            as_of=as_of,
            include_superseded=include_superseded,
            settings=self.settings.retrieval,
            embedder=self.settings.embedding.model,
        )

    def embed(self, texts: list[str]) -> list[Any]:
        """Vectors of memory texts (a corrected memory): by the full model, which embeds every
        memory, whatever form embeds the queries; the one search uses when that is the full model."""
        return list(query_embedder(self.settings.embedding.model).embed(texts))

    def forget_tenant(self, tenant_id: str) -> None:
        """Close the open stores (a deleted tenant's among them; the others reopen on next use)."""
        self._stores.cache_clear()
