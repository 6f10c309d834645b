"""Decrypted private copies of tenant adapters, for an LLM engine that loads them lazily.

vLLM reads an adapter's files when a request first names its LoRA id, and again whenever it
evicted the adapter from its cache, so a copy must live as long as the engine may load it: one
copy per ``(tenant, lora_id)``, made on first use inside this engine's private folder (mode
0700), kept until the tenant is forgotten (deleted) or the engine shuts down. Copies of tenants
whose data key was destroyed are dropped by ``sweep`` (the engine's periodic health check), so
replicas that did not see a deletion drop theirs too. The copies of an engine that was killed
are removed by the next engine started on the node (``private_dir``).
"""

from __future__ import annotations

import shutil
import threading
import weakref
from pathlib import Path

from actors import Adapter, DataKeys
from cluster import Settings, Storage, crypto, validate_tenant_id


class DecryptedAdapters:
    def __init__(self, settings: Settings, keys: DataKeys | None = None) -> None:
        self.storage = Storage.of(settings)
        self.keys = keys or DataKeys.from_settings(settings)
        self.root = crypto.private_dir(settings.security.scratch_dir, prefix="engram-adapters-")
        # removed at close(), when this object is collected, and at interpreter exit
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.root), True)
        self._copies: dict[tuple[str, int], Path] = {}
        self._lock = threading.Lock()

    def path(self, adapter: Adapter) -> str:
        """The folder of a plaintext copy of ``adapter``, decrypted on first use."""
        entry = (adapter.tenant_id, adapter.lora_id)
        with self._lock:
            copy = self._copies.get(entry)
            if copy is None or not copy.is_dir():
                copy = self.root / adapter.tenant_id / str(adapter.lora_id)
                shutil.rmtree(copy, ignore_errors=True)
                data_key = self.keys.key(adapter.tenant_id, create=False)
                crypto.open_tree(self.storage, adapter.key, copy, data_key, adapter.context)
                self._copies[entry] = copy
            return str(copy)

    def tenants(self) -> set[str]:
        with self._lock:
            return {tenant for tenant, _ in self._copies}

    def forget(self, tenant_id: str) -> list[int]:
        """Remove every copy of the tenant's adapters; returns their LoRA ids."""
        validate_tenant_id(tenant_id)
        with self._lock:
            gone = sorted(lora for tenant, lora in self._copies if tenant == tenant_id)
            for lora in gone:
                del self._copies[(tenant_id, lora)]
            shutil.rmtree(self.root / tenant_id, ignore_errors=True)
        return gone

    def deleted_tenants(self) -> set[str]:
        """Tenants with copies here whose data key was destroyed (deleted, maybe by another replica)."""
        return self.keys.destroyed(sorted(self.tenants()))

    def close(self) -> None:
        with self._lock:
            self._copies.clear()
            self._cleanup()
