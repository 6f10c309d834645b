"""Admin routes (admin key only): tenants and their API keys."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from cluster.paths import TENANT_ID
from serving.auth import admin_caller

router = APIRouter(tags=["admin"], dependencies=[Depends(admin_caller)])
TenantIdPath = Annotated[str, Path(pattern=TENANT_ID.pattern, description="A tenant id.")]


class TenantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str = Field(pattern=TENANT_ID.pattern, description="Lower-case letters, digits, '_' and '-'.")
    name: str | None = Field(None, max_length=200)


class ApiKey(BaseModel):
    key_id: str
    key: str = Field(description="The secret key; shown this once only.")


class TenantCreated(BaseModel):
    tenant_id: str
    api_key: ApiKey


@router.post("/admin/tenants", response_model=TenantCreated, status_code=201)
async def create_tenant(body: TenantRequest, request: Request) -> dict:
    key = await asyncio.to_thread(request.app.state.ctx.tenants.create_tenant, body.tenant_id, body.name)
    return {"tenant_id": key.tenant_id, "api_key": {"key_id": key.key_id, "key": key.key}}


@router.post("/admin/tenants/{tenant_id}/keys", response_model=ApiKey, status_code=201)
async def create_key(tenant_id: TenantIdPath, request: Request) -> dict:
    key = await asyncio.to_thread(request.app.state.ctx.tenants.create_key, tenant_id)
    return {"key_id": key.key_id, "key": key.key}


@router.delete("/admin/tenants/{tenant_id}/keys/{key_id}")
async def revoke_key(
    tenant_id: TenantIdPath, key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], request: Request
) -> dict:
    await asyncio.to_thread(request.app.state.ctx.tenants.revoke_key, tenant_id, key_id)
    return {"tenant_id": tenant_id, "key_id": key_id, "revoked": True}
