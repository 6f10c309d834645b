"""``GET /v1/models``: the base models, and the calling tenant's own fine-tuned models only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from serving.auth import Caller, tenant_caller
from serving.context import GatewayContext

router = APIRouter(tags=["models"])
_STARTED = int(datetime.now(UTC).timestamp())


@router.get("/v1/models")
async def list_models(request: Request, caller: Annotated[Caller, Depends(tenant_caller)]) -> dict[str, Any]:
    ctx: GatewayContext = request.app.state.ctx
    data: list[dict[str, Any]] = [
        {"id": name, "object": "model", "created": _STARTED, "owned_by": "engram"} for name in ctx.llms
    ]
    for row in await asyncio.to_thread(ctx.models.list_models, caller.tenant_id):
        created = row["created_at"]
        data.append(
            {
                "id": row["model"],
                "object": "model",
                "created": int(created.replace(tzinfo=created.tzinfo or UTC).timestamp()),
                "owned_by": caller.tenant_id,
                "root": row["base_model"],
                "version": row["version"],
            }
        )
    return {"object": "list", "data": data}
