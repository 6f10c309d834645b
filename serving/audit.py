"""The audit log over HTTP: the admin reads every event, a tenant only its own."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cluster import TENANT_ID
from serving.auth import Caller, admin_caller, tenant_caller

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    event_id: int
    at: datetime
    tenant_id: str | None
    actor: str = Field(description="The API key id, `admin`, or `anonymous` (failed authentication).")
    action: str = Field(description="`METHOD /route/template`.")
    resource: str = Field(description="The request path.")
    status: int = Field(description="The HTTP status of the answer.")
    detail: dict[str, Any] | None = None


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end.")


MAX_EVENT_ID = 2**63 - 1  # a SQL BIGINT: larger ids cannot exist
After = Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="Events after this event id.")]
Since = Annotated[datetime | None, Query(description="Events at or after this time.")]
Limit = Annotated[int, Query(ge=1, le=1000)]


async def _page(
    request: Request, tenant_id: str | None, after: int, since: datetime | None, limit: int
) -> dict:
    events = await asyncio.to_thread(
        request.app.state.ctx.audit.events, tenant_id, after=after, since=since, limit=limit
    )
    return {"events": events, "next_after": events[-1]["event_id"] if len(events) == limit else None}


@router.get("/admin/audit", response_model=AuditPage, dependencies=[Depends(admin_caller)])
async def all_events(
    request: Request,
    tenant_id: Annotated[str | None, Query(pattern=TENANT_ID.pattern)] = None,
    after: After = 0,
    since: Since = None,
    limit: Limit = 100,
) -> dict:
    return await _page(request, tenant_id, after, since, limit)


@router.get("/v1/audit", response_model=AuditPage)
async def my_events(
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
    after: After = 0,
    since: Since = None,
    limit: Limit = 100,
) -> dict:
    return await _page(request, caller.tenant_id, after, since, limit)
