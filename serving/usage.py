"""Quotas and usage: a tenant reads its own (``GET /v1/usage``); the admin reads and sets any."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, create_model

from actors import replan
from cluster import TenantLimits
from serving.admin import TenantIdPath
from serving.auth import Caller, admin_caller, tenant_caller
from serving.context import GatewayContext
from serving.errors import ApiError

router = APIRouter(tags=["usage"])


def _optional(name: str) -> tuple[Any, Any]:
    """A ``TenantLimits`` field as a request field: same type and bounds, None (the default) allowed."""
    field = TenantLimits.model_fields[name]
    number = next(t for t in get_args(field.annotation) or (field.annotation,) if t is not type(None))
    return Annotated[number, *field.metadata] | None, Field(None, description=field.description)


# A tenant's limits; a field left out (or null) goes back to the platform default.
_FIELDS: dict[str, Any] = {name: _optional(name) for name in TenantLimits.model_fields}
QuotaRequest = create_model("QuotaRequest", __config__=ConfigDict(extra="forbid"), **_FIELDS)


class QuotaResponse(BaseModel):
    tenant_id: str
    quota: TenantLimits = Field(description="Effective limits; null is unlimited.")


class UsageResponse(BaseModel):
    tenant_id: str
    since: datetime
    until: datetime
    usage: dict[str, float] = Field(description="Totals per metric over the hours in [since, until).")
    storage_bytes: int = Field(
        description="Bytes the tenant stores now (tables, files, adapters, checkpoints)."
    )
    quota: TenantLimits
    hourly: list[dict[str, Any]] = Field(description="Per hour and metric.")


Since = Annotated[datetime | None, Query(description="Start (default: 30 days before `until`).")]
Until = Annotated[datetime | None, Query(description="End (default: now).")]


async def _usage(ctx: GatewayContext, tenant_id: str, since: datetime | None, until: datetime | None) -> dict:
    until = _utc(until) if until else datetime.now(UTC) + timedelta(hours=1)
    since = _utc(since) if since else until - timedelta(days=30)
    if since >= until:
        raise ApiError(400, "invalid_request_error", "since must be before until", "since")
    await asyncio.to_thread(ctx.usage.flush)  # what this gateway metered so far counts
    totals, hourly = await asyncio.gather(
        asyncio.to_thread(ctx.quotas.usage, tenant_id, since, until),
        asyncio.to_thread(ctx.quotas.hourly, tenant_id, since, until),
    )
    return {
        "tenant_id": tenant_id,
        "since": since,
        "until": until,
        "usage": totals,
        "storage_bytes": await asyncio.to_thread(ctx.limits.stored_bytes, tenant_id),
        "quota": ctx.limits.quota(tenant_id).model_dump(),
        "hourly": hourly,
    }


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


@router.get("/v1/usage", response_model=UsageResponse)
async def my_usage(
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
    since: Since = None,
    until: Until = None,
) -> dict:
    return await _usage(request.app.state.ctx, caller.tenant_id, since, until)


@router.get(
    "/admin/tenants/{tenant_id}/usage", response_model=UsageResponse, dependencies=[Depends(admin_caller)]
)
async def tenant_usage(
    tenant_id: TenantIdPath, request: Request, since: Since = None, until: Until = None
) -> dict:
    ctx: GatewayContext = request.app.state.ctx
    if not await asyncio.to_thread(ctx.tenants.exists, tenant_id):
        raise ApiError(404, "not_found", f"no tenant {tenant_id!r}", "tenant_id")
    return await _usage(ctx, tenant_id, since, until)


@router.get(
    "/admin/tenants/{tenant_id}/quota", response_model=QuotaResponse, dependencies=[Depends(admin_caller)]
)
async def get_quota(tenant_id: TenantIdPath, request: Request) -> dict:
    ctx: GatewayContext = request.app.state.ctx
    if not await asyncio.to_thread(ctx.tenants.exists, tenant_id):
        raise ApiError(404, "not_found", f"no tenant {tenant_id!r}", "tenant_id")
    quota = await asyncio.to_thread(ctx.quotas.get, tenant_id)
    return {"tenant_id": tenant_id, "quota": quota.model_dump()}


@router.put(
    "/admin/tenants/{tenant_id}/quota", response_model=QuotaResponse, dependencies=[Depends(admin_caller)]
)
async def set_quota(tenant_id: TenantIdPath, body: QuotaRequest, request: Request) -> dict:
    """Every limit of the tenant at once: requests, tokens, storage, fine-tune jobs and GPUs."""
    ctx: GatewayContext = request.app.state.ctx
    limits = body.model_dump(exclude_none=True)
    quota = await asyncio.to_thread(ctx.quotas.set, tenant_id, limits)  # NotFound for an unknown tenant
    await asyncio.to_thread(replan, ctx.settings)  # the broker applies a new nominal_gpus at once
    ctx.limits.forget(tenant_id)
    return {"tenant_id": tenant_id, "quota": quota.model_dump()}
