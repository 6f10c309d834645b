"""Deleting a tenant: afterwards nothing of it can be read back from storage, or served.

``delete_tenant`` goes in an order that stays safe if it is interrupted (a second call finishes
the job) and against requests in flight:

1. One transaction: every API key revoked (no new request gets in), its GPU workloads cancelled
   (training runs stop at their next poll), and the data key destroyed, which makes every file,
   adapter and checkpoint sealed with it unreadable at once, copies included (crypto-erasure).
2. ``quiesce(tenant_id)``: the caller stops its own work on the tenant (the gateway: background
   builds, open stores, decrypted adapters in the engines).
3. Every LanceDB table dropped (with all its versions), then the tenant's whole folder removed:
   ``lance``, ``files``, ``adapters``, ``checkpoints``.
4. One transaction: the tenant's rows removed from every control-plane table that has a
   ``tenant_id`` (models and their versions, quotas, usage, ...) except ``KEPT``; the tenant row
   becomes a tombstone (``deleted_at`` set, name scrubbed). On SQLite, deleted rows are zeroed
   in the file (``secure_delete``).
5. The folder is removed once more, should a write in flight have recreated it.

The tombstone keeps the id from ever naming another tenant: other replicas may still hold
caches keyed by it, the audit log names it, and it keeps step 1's destroyed key in force (no new
data key can be made for the id). A second delete of the same id is "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import lancedb
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from actors.broker import cancel_tenant, gpu_events, gpu_workloads
from actors.db import engine_for, load_tables
from actors.jobs import fine_tune_events, fine_tune_jobs
from actors.keys import destroy_key, secure_delete
from actors.models import model_deployments, model_versions, models
from actors.tenants import api_keys, tenants
from cluster import NotFoundError, Settings, Storage, area_key, tenant_key, validate_tenant_id

# Tables whose rows of a deleted tenant stay, and why.
KEPT = {
    "tenants": "the tombstone (deleted_at set, name scrubbed)",
    "api_keys": "the revoked keys (hashes of random secrets), so audit events keep naming them",
    "data_keys": "the destroyed key, so no new one is ever made for the id",
    "audit_events": "the audit log is append-only",
}


@dataclass(frozen=True)
class DeletionReport:
    """What ``delete_tenant`` removed."""

    tenant_id: str
    deleted_at: datetime
    keys_revoked: int
    data_key_destroyed: bool
    lance_tables: dict[str, int] = field(default_factory=dict)  # table -> versions dropped with it
    files_removed: int = 0
    bytes_removed: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)  # control-plane table -> rows


def delete_tenant(
    settings: Settings, tenant_id: str, quiesce: Callable[[str], None] | None = None
) -> DeletionReport:
    """Delete the tenant and everything it stores; NotFoundError for an unknown or deleted tenant."""
    validate_tenant_id(tenant_id)
    engine = engine_for(settings.control_db_url)
    with engine.begin() as db:
        secure_delete(db)
        row = db.execute(select(tenants.c.deleted_at).where(tenants.c.tenant_id == tenant_id)).first()
        if row is None or row.deleted_at is not None:
            raise NotFoundError(f"no tenant {tenant_id!r}", param="tenant_id")
        revoked = db.execute(
            update(api_keys)
            .where(api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
        cancel_tenant(db, tenant_id)
        destroyed = destroy_key(db, tenant_id)
    if quiesce is not None:
        quiesce(tenant_id)
    storage = Storage.of(settings)
    files, size = storage.size(tenant_key(tenant_id))
    lance = _drop_lance_tables(storage, tenant_id)
    storage.delete_tree(tenant_key(tenant_id))
    deleted_at = datetime.now(UTC)
    with engine.begin() as db:
        secure_delete(db)
        rows = _remove_rows(db, tenant_id)
        db.execute(
            update(tenants)
            .where(tenants.c.tenant_id == tenant_id)
            .values(deleted_at=deleted_at, name=tenant_id)
        )
    storage.delete_tree(tenant_key(tenant_id))
    return DeletionReport(tenant_id, deleted_at, revoked, destroyed, lance, files, size, rows)


def _drop_lance_tables(storage: Storage, tenant_id: str) -> dict[str, int]:
    """Drop every LanceDB table of the tenant; returns each one's number of versions."""
    key = area_key(tenant_id, "lance")
    if not storage.exists(key):
        return {}
    db = lancedb.connect(storage.uri(key), storage_options=storage.lance_options() or None)
    versions = {name: len(db.open_table(name).list_versions()) for name in db.list_tables().tables}
    db.drop_all_tables()
    return versions


def _remove_rows(db: Connection, tenant_id: str) -> dict[str, int]:
    """The tenant's rows in every table with a ``tenant_id`` column (but ``KEPT``), dependents first."""
    owned = select(models.c.model).where(models.c.tenant_id == tenant_id)
    workloads = select(gpu_workloads.c.workload_id).where(gpu_workloads.c.tenant_id == tenant_id)
    jobs = select(fine_tune_jobs.c.job_id).where(fine_tune_jobs.c.tenant_id == tenant_id)
    dependents = [  # rows without a tenant_id that belong to the tenant's rows
        delete(model_versions).where(model_versions.c.model.in_(owned)),
        delete(model_deployments).where(model_deployments.c.model.in_(owned)),
        delete(gpu_events).where(gpu_events.c.workload_id.in_(workloads)),
        delete(fine_tune_events).where(fine_tune_events.c.job_id.in_(jobs)),
    ]
    removed = {str(query.table): db.execute(query).rowcount for query in dependents}
    for table in reversed(load_tables().sorted_tables):
        if table.name in KEPT or "tenant_id" not in table.c:
            continue
        removed[table.name] = db.execute(delete(table).where(table.c.tenant_id == tenant_id)).rowcount
    return removed
