"""POST /v1/signals: signals in, durable before the answer."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from memory import ingest_rows
from serving.auth import Caller, tenant_caller
from serving.context import GatewayContext
from serving.errors import ApiError

router = APIRouter(tags=["signals"])


class SignalsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signals: list[Any] = Field(description="Signal objects; each is validated on its own.")


class Rejected(BaseModel):
    index: int = Field(description="Position of the signal in the request.")
    reason: str
    param: str | None = Field(None, description="The field at fault, when there is one.")


class SignalsResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejected]


@router.post("/v1/signals", response_model=SignalsResponse)
async def post_signals(
    body: SignalsRequest, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> SignalsResponse:
    ctx: GatewayContext = request.app.state.ctx
    limit = ctx.settings.api.max_signals_per_request
    if len(body.signals) > limit:
        raise ApiError(413, "payload_too_large", f"at most {limit} signals per request", "signals")
    await asyncio.to_thread(ctx.limits.check_storage, caller.tenant_id)
    report = await asyncio.to_thread(
        ingest_rows, ctx.store(caller.tenant_id), body.signals, ctx.settings.ingest, origin="api"
    )
    ctx.metrics.signals.labels("accepted").inc(report.accepted)
    ctx.metrics.signals.labels("duplicate").inc(report.duplicates)
    ctx.metrics.signals.labels("quarantined").inc(report.quarantined)
    if report.accepted:
        await ctx.builder.notify(caller.tenant_id)
    return SignalsResponse(
        accepted=report.accepted,
        duplicates=report.duplicates,
        rejected=[Rejected(index=r.index, reason=r.reason, param=r.field) for r in report.rejected],
    )
