"""Tenants and their API keys, durable in SQL (SQLite file by default, PostgreSQL on a cluster).

A key is shown once, at creation: ``egk_<key_id>_<secret>``. Only the SHA-256 of the secret
is stored; it is compared in constant time. Keys are revocable; a revoked key never
authenticates again.

A deleted tenant (``actors.deletion``) stays as a tombstone row with ``deleted_at`` set and its
name scrubbed: it does not exist for any lookup, and its id is never given to a new tenant (other
replicas' caches, audit events and engines' adapter caches may still name it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, ForeignKey, Select, String, Table, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from actors.db import engine_for, metadata
from cluster import ConflictError, NotFoundError, validate_tenant_id

KEY_PREFIX = "egk_"

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
)
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(24), primary_key=True),
    Column("tenant_id", String(63), ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)


@dataclass(frozen=True)
class NewKey:
    """A freshly made key; ``key`` is the only time the secret is ever available."""

    tenant_id: str
    key_id: str
    key: str


@dataclass(frozen=True)
class KeyScope:
    """Who an authenticated key speaks for."""

    tenant_id: str
    key_id: str


def _live(tenant_id: str) -> Select[tuple[str]]:
    return select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id, tenants.c.deleted_at.is_(None))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TenantDirectory:
    def __init__(self, database_url: str) -> None:
        self.engine: Engine = engine_for(database_url)

    def create_tenant(self, tenant_id: str, name: str | None = None) -> NewKey:
        """Register a tenant and return its first key."""
        validate_tenant_id(tenant_id)
        try:
            with self.engine.begin() as db:
                db.execute(
                    insert(tenants).values(
                        tenant_id=tenant_id, name=name or tenant_id, created_at=datetime.now(UTC)
                    )
                )
                return self._new_key(db, tenant_id)
        except IntegrityError as e:
            if self.deleted(tenant_id):
                raise ConflictError(
                    f"tenant id {tenant_id!r} belonged to a deleted tenant; ids are never reused",
                    param="tenant_id",
                ) from e
            raise ConflictError(f"tenant {tenant_id!r} already exists", param="tenant_id") from e

    def exists(self, tenant_id: str) -> bool:
        """A live tenant (not deleted) has this id."""
        with self.engine.connect() as db:
            return db.execute(_live(tenant_id)).first() is not None

    def deleted(self, tenant_id: str) -> bool:
        """This id belonged to a tenant that was deleted."""
        with self.engine.connect() as db:
            row = db.execute(select(tenants.c.deleted_at).where(tenants.c.tenant_id == tenant_id)).first()
        return row is not None and row.deleted_at is not None

    def create_key(self, tenant_id: str) -> NewKey:
        with self.engine.begin() as db:
            if db.execute(_live(tenant_id)).first() is None:
                raise NotFoundError(f"no tenant {tenant_id!r}", param="tenant_id")
            return self._new_key(db, tenant_id)

    def _new_key(self, db: object, tenant_id: str) -> NewKey:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        db.execute(  # type: ignore[attr-defined]
            insert(api_keys).values(
                key_id=key_id,
                tenant_id=tenant_id,
                secret_sha256=_digest(secret),
                created_at=datetime.now(UTC),
            )
        )
        return NewKey(tenant_id, key_id, f"{KEY_PREFIX}{key_id}_{secret}")

    def revoke_key(self, tenant_id: str, key_id: str) -> None:
        with self.engine.begin() as db:
            result = db.execute(
                update(api_keys)
                .where(
                    api_keys.c.key_id == key_id,
                    api_keys.c.tenant_id == tenant_id,
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=datetime.now(UTC))
            )
            if result.rowcount == 0:
                raise NotFoundError(f"no active key {key_id!r} for tenant {tenant_id!r}", param="key_id")

    def authenticate(self, presented: str) -> KeyScope | None:
        """The scope of a valid, unrevoked key; None for anything else."""
        if not presented.startswith(KEY_PREFIX):
            return None
        key_id, _, secret = presented[len(KEY_PREFIX) :].partition("_")
        if not key_id or not secret:
            return None
        with self.engine.connect() as db:
            row = db.execute(
                select(api_keys.c.tenant_id, api_keys.c.secret_sha256, api_keys.c.revoked_at).where(
                    api_keys.c.key_id == key_id
                )
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_sha256, _digest(secret)):
            return None
        return KeyScope(row.tenant_id, key_id)
