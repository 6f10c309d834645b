"""User routes: forget a user, read a user's profile."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel

from cluster import USER_ID
from memory import forget_user, profile
from serving.auth import Caller, tenant_caller

router = APIRouter(tags=["users"])
UserIdPath = Annotated[str, Path(pattern=USER_ID.pattern, description="A user id.")]


class Profile(BaseModel):
    user_id: str
    signals: int
    sessions: int
    by_source: dict[str, int]
    top_topics: list[str]
    current_facts: dict[str, str]
    first_active: datetime
    last_active: datetime
    updated_at: datetime


class Forgotten(BaseModel):
    user_id: str
    deleted: dict[str, int]


@router.delete("/v1/users/{user_id}", response_model=Forgotten)
async def forget(
    user_id: UserIdPath, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict:
    store = request.app.state.ctx.store(caller.tenant_id)
    return {"user_id": user_id, "deleted": await asyncio.to_thread(forget_user, store, user_id)}


@router.get("/v1/users/{user_id}/profile", response_model=Profile)
async def get_profile(
    user_id: UserIdPath, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict:
    return await asyncio.to_thread(profile, request.app.state.ctx.store(caller.tenant_id), user_id)
