"""Memory routes: build, search, list, read, correct, delete."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cluster import USER_ID, MemoryKind, NotFoundError, check_time
from memory import delete_memory, get_memory, list_memories, update_memory
from serving.auth import Caller, tenant_caller
from serving.builder import BuildStatus
from serving.context import GatewayContext
from serving.errors import ApiError

router = APIRouter(tags=["memories"])
Time = Annotated[datetime, AfterValidator(check_time)]
MemoryId = Annotated[str, Path(pattern=r"^mem-[0-9a-f]{32}$", description="A memory id.")]
UserId = Annotated[str, Field(pattern=USER_ID.pattern, description="The user whose memories to use.")]


class Memory(BaseModel):
    memory_id: str
    user_id: str
    kind: MemoryKind
    text: str
    slot: str | None = None
    value: str | None = None
    importance: float
    confidence: float
    support: int
    sources: list[str] = Field(description="Signal ids behind this memory (provenance).")
    valid_from: datetime
    valid_to: datetime | None


class ScoredMemory(Memory):
    score: float
    scores: dict[str, float] = Field(default_factory=dict, description="The parts of the score.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: UserId
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(10, ge=1, le=100)
    kinds: list[MemoryKind] | None = None
    as_of: Time | None = Field(None, description="Return what was valid at this time.")
    include_superseded: bool = Field(False, description="Also return memories that newer ones replaced.")


class SearchResponse(BaseModel):
    results: list[ScoredMemory]


class MemoryPage(BaseModel):
    data: list[Memory]
    next_offset: int | None


class MemoryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(
        None, min_length=1, max_length=20_000, description="Corrected text (re-embedded)."
    )
    importance: float | None = Field(None, ge=0, le=1)
    confidence: float | None = Field(None, ge=0, le=1)
    valid_to: Time | None = Field(None, description="Close the memory's validity at this time.")


class Build(BaseModel):
    id: str
    status: BuildStatus
    created_at: str
    finished_at: str | None
    signals: int
    memories_written: int
    error: str | None


def _ctx(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


@router.post("/v1/memories/build", response_model=Build, status_code=202)
async def start_build(request: Request, caller: Annotated[Caller, Depends(tenant_caller)]) -> dict[str, Any]:
    record = await _ctx(request).builder.start_build(caller.tenant_id)
    record.pop("tenant_id", None)
    return record


@router.get("/v1/memories/build/{build_id}", response_model=Build)
async def get_build(
    build_id: Annotated[str, Path(max_length=64)],
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
) -> dict[str, Any]:
    record = await _ctx(request).builder.get_build(caller.tenant_id, build_id)
    if record is None:
        raise NotFoundError(f"no build {build_id!r}", param="build_id")
    record.pop("tenant_id", None)
    return dict(record)


@router.post("/v1/memories/search", response_model=SearchResponse)
async def search(
    body: SearchRequest, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict:
    results = await _ctx(request).retrieval.search(
        caller.tenant_id,
        body.user_id,
        body.query,
        k=body.k,
        kinds=body.kinds,
        as_of=body.as_of,
        include_superseded=body.include_superseded,
    )
    return {"results": results}


@router.get("/v1/memories", response_model=MemoryPage)
async def list_page(
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
    user_id: Annotated[str | None, Query(pattern=USER_ID.pattern)] = None,
    kind: Annotated[list[MemoryKind] | None, Query()] = None,
    current: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    store = _ctx(request).store(caller.tenant_id)
    rows = await asyncio.to_thread(
        list_memories,
        store,
        user_id,
        kinds=list(kind) if kind else None,
        current_only=current,
        limit=limit + 1,
        offset=offset,
    )
    more = len(rows) > limit
    return {"data": rows[:limit], "next_offset": offset + limit if more else None}


@router.get("/v1/memories/{memory_id}", response_model=Memory)
async def read(
    memory_id: MemoryId, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict:
    row = await asyncio.to_thread(get_memory, _ctx(request).store(caller.tenant_id), memory_id)
    if row is None:
        raise NotFoundError(f"no memory {memory_id!r}", param="memory_id")
    return row


@router.patch("/v1/memories/{memory_id}", response_model=Memory)
async def correct(
    memory_id: MemoryId,
    body: MemoryPatch,
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
) -> dict:
    ctx = _ctx(request)
    changes = body.model_dump(exclude_unset=True)
    for name in ("text", "importance", "confidence"):  # only valid_to may be set to null (reopened)
        if name in changes and changes[name] is None:
            raise ApiError(422, "invalid_request", f"{name} cannot be null", name)
    if not changes:
        return await read(memory_id, request, caller)
    if "text" in changes:
        changes["vector"] = (await ctx.retrieval.embed([changes["text"]]))[0]
    return await asyncio.to_thread(update_memory, ctx.store(caller.tenant_id), memory_id, changes)


@router.delete("/v1/memories/{memory_id}")
async def delete(
    memory_id: MemoryId, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict:
    await asyncio.to_thread(delete_memory, _ctx(request).store(caller.tenant_id), memory_id)
    return {"memory_id": memory_id, "deleted": True}
