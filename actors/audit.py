"""The audit log: who did what to which resource, when, and with what result. Append-only.

Every mutating API call and every admin action is one event: the acting key (a tenant key
id, ``admin``, or ``anonymous`` for a call that failed authentication), the action
(``METHOD /route/template``), the resource (the request path), the HTTP status and the time.
The database itself refuses updates and deletes of events (triggers made by migration 0002),
so nothing in the platform can rewrite history. Events name resources, never their content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, insert, select

from actors.db import engine_for, metadata

audit_events = Table(
    "audit_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("tenant_id", String(63)),
    Column("actor", String(64), nullable=False),
    Column("action", String(128), nullable=False),
    Column("resource", String(512), nullable=False),
    Column("status", Integer, nullable=False),
    Column("detail", Text),
    Index("ix_audit_events_tenant_id", "tenant_id", "event_id"),
)


@dataclass(frozen=True)
class AuditEvent:
    tenant_id: str | None
    actor: str
    action: str
    resource: str
    status: int
    detail: dict[str, Any] | None = None
    at: datetime | None = None


class AuditLog:
    def __init__(self, database_url: str) -> None:
        self.engine = engine_for(database_url)

    def append(self, event: AuditEvent) -> int:
        """Store ``event``; returns its id (ids only grow)."""
        with self.engine.begin() as db:
            result = db.execute(
                insert(audit_events).values(
                    at=event.at or datetime.now(UTC),
                    tenant_id=event.tenant_id,
                    actor=event.actor[:64],
                    action=event.action[:128],
                    resource=event.resource[:512],
                    status=event.status,
                    detail=json.dumps(event.detail, default=str) if event.detail else None,
                )
            )
            (event_id,) = result.inserted_primary_key or (0,)
            return int(event_id)

    def events(
        self,
        tenant_id: str | None = None,
        *,
        after: int = 0,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events oldest first, from id ``after`` on; only ``tenant_id``'s when given."""
        query = select(audit_events).where(audit_events.c.event_id > after)
        if tenant_id is not None:
            query = query.where(audit_events.c.tenant_id == tenant_id)
        if since is not None:
            query = query.where(audit_events.c.at >= since)
        with self.engine.connect() as db:
            rows = db.execute(query.order_by(audit_events.c.event_id).limit(limit)).all()
        return [
            {
                "event_id": r.event_id,
                "at": r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
                "tenant_id": r.tenant_id,
                "actor": r.actor,
                "action": r.action,
                "resource": r.resource,
                "status": r.status,
                "detail": json.loads(r.detail) if r.detail else None,
            }
            for r in rows
        ]
