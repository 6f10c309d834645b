"""Admin routes (admin key only): tenants, their API keys, tenant deletion."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from actors import delete_tenant as delete_everything
from cluster import TENANT_ID
from serving.auth import admin_caller
from serving.context import GatewayContext

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
    request.state.tenant_id = body.tenant_id  # the audit log's tenant
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


class TenantDeleted(BaseModel):
    tenant_id: str
    deleted_at: datetime
    keys_revoked: int = Field(description="API keys revoked.")
    data_key_destroyed: bool = Field(description="Its data key was destroyed: what it sealed is unreadable.")
    lance_tables: dict[str, int] = Field(description="LanceDB tables dropped, with their versions.")
    files_removed: int = Field(description="Files removed from the tenant's storage folder.")
    bytes_removed: int = Field(description="Bytes those files held.")
    rows_removed: dict[str, int] = Field(description="Control-plane rows removed, per table.")


@router.delete("/admin/tenants/{tenant_id}", response_model=TenantDeleted)
async def delete_tenant(tenant_id: TenantIdPath, request: Request) -> dict:
    """Delete a tenant and all its data (see actors/deletion.py); a deleted tenant's id is never reused."""
    request.state.tenant_id = tenant_id  # the audit log's tenant
    ctx: GatewayContext = request.app.state.ctx
    loop = asyncio.get_running_loop()

    def quiesce(tenant: str) -> None:  # runs in the deletion's thread, once the keys are revoked
        asyncio.run_coroutine_threadsafe(ctx.forget_tenant(tenant), loop).result()

    report = await asyncio.to_thread(delete_everything, ctx.settings, tenant_id, quiesce)
    return asdict(report)
