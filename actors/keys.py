"""Tenant data keys, stored only wrapped by the master key (``cluster.crypto``), durable in SQL.

A tenant's data key is made on first use. Destroying it (tenant deletion) clears the wrapped
key and stamps ``destroyed_at``; the row stays, so no key can ever be made again for that
tenant id and everything sealed with the old one stays unreadable. Keys are not cached: a
destruction takes effect at once in every process.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, LargeBinary, String, Table, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from actors.db import engine_for, metadata
from cluster import KeyDestroyedError, NotFoundError, Settings, crypto, validate_tenant_id

data_keys = Table(
    "data_keys",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("wrapped_key", LargeBinary),  # NULL once destroyed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True)),
)


def secure_delete(db: Connection) -> None:
    """On SQLite, make this connection overwrite what it deletes or replaces with zeros, so no old
    row survives in the file's free space. (PostgreSQL keeps dead row versions until a vacuum.)"""
    if db.dialect.name == "sqlite":
        db.exec_driver_sql("PRAGMA secure_delete = ON")


def destroy_key(db: Connection, tenant_id: str) -> bool:
    """Destroy the tenant's data key inside the caller's transaction; True if a live key was destroyed.

    A tenant without a key gets a destroyed row anyway, so none can be made for it later.
    """
    secure_delete(db)
    now = datetime.now(UTC)
    live = db.execute(
        update(data_keys)
        .where(data_keys.c.tenant_id == tenant_id, data_keys.c.destroyed_at.is_(None))
        .values(wrapped_key=None, destroyed_at=now)
    ).rowcount
    exists = db.execute(select(data_keys.c.tenant_id).where(data_keys.c.tenant_id == tenant_id)).first()
    if exists is None:
        db.execute(insert(data_keys).values(tenant_id=tenant_id, created_at=now, destroyed_at=now))
    return bool(live)


class DataKeys:
    """Unwrapped data keys on demand; the master key stays in this object, never in storage."""

    def __init__(self, database_url: str, master: bytes) -> None:
        self.engine = engine_for(database_url)
        self._master = master

    @classmethod
    def from_settings(cls, settings: Settings) -> DataKeys:
        return cls(settings.control_db_url, crypto.master_key(settings))

    def __repr__(self) -> str:
        return f"DataKeys({self.engine.url!r})"

    def key(self, tenant_id: str, *, create: bool = True) -> bytes:
        """The tenant's data key, made on first use when ``create``.

        KeyDestroyedError once the tenant was deleted; DecryptionError under another master key.
        """
        validate_tenant_id(tenant_id)
        for _ in range(2):  # a second pass reads the key a concurrent first use just stored
            with self.engine.connect() as db:
                row = db.execute(select(data_keys).where(data_keys.c.tenant_id == tenant_id)).first()
            if row is not None:
                if row.destroyed_at is not None or row.wrapped_key is None:
                    raise KeyDestroyedError(
                        f"the data key of tenant {tenant_id!r} was destroyed (the tenant was deleted); "
                        "what it encrypted can never be decrypted",
                        param="tenant_id",
                        tenant_id=tenant_id,
                    )
                return crypto.unwrap_key(self._master, row.wrapped_key, tenant_id)
            if not create:
                raise NotFoundError(f"tenant {tenant_id!r} has no data key", param="tenant_id")
            data_key = crypto.new_key()
            try:
                with self.engine.begin() as db:
                    db.execute(
                        insert(data_keys).values(
                            tenant_id=tenant_id,
                            wrapped_key=crypto.wrap_key(self._master, data_key, tenant_id),
                            created_at=datetime.now(UTC),
                        )
                    )
                return data_key
            except IntegrityError:
                continue
        raise NotFoundError(f"tenant {tenant_id!r} has no data key", param="tenant_id")

    def checkpoint_sealing(self, tenant_id: str, run_id: str) -> crypto.Sealing:
        """What seals a training run's checkpoints: the tenant's key, bound to the run's folder.

        KeyDestroyedError once the tenant was deleted: nothing more is written for it."""
        return crypto.Sealing(self.key(tenant_id), f"{tenant_id}/checkpoints/{run_id}")

    def destroy(self, tenant_id: str) -> bool:
        """Destroy the tenant's data key; True if a live key was destroyed."""
        validate_tenant_id(tenant_id)
        with self.engine.begin() as db:
            return destroy_key(db, tenant_id)

    def destroyed(self, tenant_ids: list[str]) -> set[str]:
        """Those of ``tenant_ids`` whose data key was destroyed."""
        if not tenant_ids:
            return set()
        with self.engine.connect() as db:
            rows = db.execute(
                select(data_keys.c.tenant_id).where(
                    data_keys.c.tenant_id.in_(tenant_ids), data_keys.c.destroyed_at.is_not(None)
                )
            ).all()
        return {r.tenant_id for r in rows}
