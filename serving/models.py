"""Models: the base models and the calling tenant's own fine-tuned models only.

``GET /v1/models`` lists them; ``GET /v1/models/{model}`` gives one, with a fine-tuned model's
versions (lineage, metrics) and deployment history; ``POST .../deploy`` and ``.../rollback``
switch the served version from the next request on, with no engine restart; ``DELETE`` retires
the model and removes its files. Another tenant's model is 404, exactly like a missing one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from actors import migration_request
from serving.auth import Caller, tenant_caller
from serving.context import GatewayContext
from serving.fine_tuning import submit_job

router = APIRouter(tags=["models"])
_STARTED = int(datetime.now(UTC).timestamp())
ModelName = Annotated[str, Path(min_length=1, max_length=300, description="A model id.")]


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=2**31 - 1, description="The version to serve.")


def _unix(at: datetime) -> int:
    return int(at.replace(tzinfo=at.tzinfo or UTC).timestamp())


@router.get("/v1/models")
async def list_models(request: Request, caller: Annotated[Caller, Depends(tenant_caller)]) -> dict[str, Any]:
    ctx: GatewayContext = request.app.state.ctx
    data: list[dict[str, Any]] = [
        {"id": name, "object": "model", "created": _STARTED, "owned_by": "engram"} for name in ctx.llms
    ]
    for row in await asyncio.to_thread(ctx.models.list_models, caller.tenant_id):
        data.append(
            {
                "id": row["model"],
                "object": "model",
                "created": _unix(row["created_at"]),
                "owned_by": caller.tenant_id,
                "root": row["base_model"],
                "version": row["version"],
            }
        )
    return {"object": "list", "data": data}


@router.get("/v1/models/{model}")
async def get_model(
    model: ModelName, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict[str, Any]:
    ctx: GatewayContext = request.app.state.ctx
    if model in ctx.llms:
        return {"id": model, "object": "model", "created": _STARTED, "owned_by": "engram"}
    found = await asyncio.to_thread(ctx.models.describe, caller.tenant_id, model)
    return {
        "id": model,
        "object": "model",
        "created": _unix(found["created_at"]),
        "owned_by": caller.tenant_id,
        "root": found["base_model"],
        "version": found["deployed_version"],
        "versions": [{**v, "created_at": _unix(v["created_at"])} for v in found["versions"]],
        "deployments": [{**d, "at": _unix(d["at"])} for d in found["deployments"]],
    }


@router.post("/v1/models/{model}/deploy")
async def deploy(
    model: ModelName,
    body: DeployRequest,
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
) -> dict[str, Any]:
    ctx: GatewayContext = request.app.state.ctx
    version = await asyncio.to_thread(ctx.models.deploy, caller.tenant_id, model, body.version)
    return {"id": model, "object": "model", "version": version}


@router.post("/v1/models/{model}/rollback")
async def rollback(
    model: ModelName, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict[str, Any]:
    ctx: GatewayContext = request.app.state.ctx
    version = await asyncio.to_thread(ctx.models.rollback, caller.tenant_id, model)
    return {"id": model, "object": "model", "version": version}


@router.delete("/v1/models/{model}")
async def retire(
    model: ModelName, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict[str, Any]:
    ctx: GatewayContext = request.app.state.ctx
    await asyncio.to_thread(ctx.models.retire, caller.tenant_id, model)
    return {"id": model, "object": "model", "deleted": True}


class MigrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: str = Field(min_length=1, max_length=128, description="The base model to move to.")


@router.post("/v1/models/{model}/migrate")
async def migrate(
    model: ModelName,
    body: MigrateRequest,
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
) -> dict[str, Any]:
    """Re-run the recipe, files and seed behind the served version on another base model, as a job."""
    ctx: GatewayContext = request.app.state.ctx
    ctx.settings.llm.base_model(body.base, param="base")
    job, origin = await asyncio.to_thread(migration_request, ctx.models, caller.tenant_id, model, body.base)
    return await submit_job(ctx, caller.tenant_id, job, origin)
