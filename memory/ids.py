"""Deterministic memory ids: the same input always yields the same id, so re-runs are idempotent."""

from __future__ import annotations

import hashlib
import json


def memory_id(tenant_id: str, user_id: str, kind: str, *key: str) -> str:
    digest = hashlib.sha256(json.dumps([tenant_id, user_id, kind, *key], ensure_ascii=False).encode())
    return f"mem-{digest.hexdigest()[:32]}"
