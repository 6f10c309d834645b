"""Fine-tune files, OpenAI-compatible: upload (validated, sealed at rest), list, read, content, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from actors import FILE_ID, PURPOSE, FileStore
from cluster import SLOTTED_KINDS, MemoryKind
from serving.auth import Caller, tenant_caller
from serving.context import GatewayContext
from serving.errors import ApiError
from training import FileValidationError, memory_examples, to_jsonl, upload

MAX_EXAMPLES = 10_000  # examples in a training file made of memories

router = APIRouter(tags=["files"])
FileId = Annotated[str, Path(pattern=FILE_ID, description="A file id, `file-` and 32 hex digits.")]


class FileStats(BaseModel):
    examples: int = Field(description="Training examples (lines) in the file.")
    tokens: int = Field(description="Tokens of all examples, with the base model's chat template applied.")


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int = Field(description="Unix seconds.")
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"
    engram: FileStats


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    has_more: bool


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


def _store(request: Request) -> FileStore:
    ctx: GatewayContext = request.app.state.ctx
    return FileStore(ctx.settings)


def _file_object(record: dict[str, Any]) -> FileObject:
    return FileObject(
        id=record["file_id"],
        bytes=record["bytes"],
        created_at=int(record["created_at"].timestamp()),
        filename=record["filename"],
        purpose=record["purpose"],
        engram=FileStats(examples=record["examples"], tokens=record["tokens"]),
    )


@router.post("/v1/files", response_model=FileObject)
async def create_file(
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
    file: Annotated[UploadFile, File(description="JSONL, one chat example per line.")],
    purpose: Annotated[str, Form(max_length=64, description=f"Must be {PURPOSE!r}.")],
) -> Any:
    ctx: GatewayContext = request.app.state.ctx
    if purpose != PURPOSE:
        raise ApiError(400, "invalid_request", f"purpose must be {PURPOSE!r}, not {purpose!r}", "purpose")
    await asyncio.to_thread(ctx.limits.check_storage, caller.tenant_id)
    limit = ctx.settings.files.max_file_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the file is over {limit} bytes", "file")
    store = _store(request)
    try:
        record = await asyncio.to_thread(
            upload, store, caller.tenant_id, file.filename or "upload.jsonl", purpose, data
        )
    except FileValidationError as e:
        body = {"type": "invalid_request", "message": e.message, "param": e.param, "lines": e.problems}
        return JSONResponse({"error": body}, status_code=400)
    return _file_object(record)


class FromMemories(BaseModel):
    """``POST /v1/files/from_memories``: a training file of the tenant's own memories (opt-in)."""

    model_config = ConfigDict(extra="forbid")

    user_ids: list[str] = Field(min_length=1, max_length=1000, description="Users whose memories to use.")
    kinds: list[MemoryKind] = Field(
        ["fact"],
        min_length=1,
        description=f"Memory kinds, of {list(SLOTTED_KINDS)}: those with a slot and a value.",
    )
    filename: str = Field("memories.jsonl", min_length=1, max_length=255)

    @field_validator("kinds")
    @classmethod
    def _slotted(cls, kinds: list[MemoryKind]) -> list[MemoryKind]:
        unfit = [kind for kind in kinds if kind not in SLOTTED_KINDS]
        if unfit:
            raise ValueError(f"{unfit} have no slot and value to learn from; use {list(SLOTTED_KINDS)}")
        return kinds


@router.post("/v1/files/from_memories", response_model=FileObject)
async def from_memories(
    body: FromMemories, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> Any:
    """Question/answer pairs from the current facts (and preferences) of the chosen users, stored
    like an upload: only the calling tenant's memories are read."""
    ctx: GatewayContext = request.app.state.ctx
    await asyncio.to_thread(ctx.limits.check_storage, caller.tenant_id)
    rows = await asyncio.to_thread(
        memory_examples, ctx.store(caller.tenant_id), body.user_ids, list(body.kinds), MAX_EXAMPLES
    )
    record = await asyncio.to_thread(
        upload, _store(request), caller.tenant_id, body.filename, PURPOSE, to_jsonl(rows)
    )
    return _file_object(record)


@router.get("/v1/files", response_model=FileList)
async def list_files(
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    after: Annotated[str | None, Query(pattern=FILE_ID, description="Continue past this file id.")] = None,
) -> FileList:
    rows = await asyncio.to_thread(_store(request).list, caller.tenant_id, limit + 1, after)
    return FileList(data=[_file_object(r) for r in rows[:limit]], has_more=len(rows) > limit)


@router.get("/v1/files/{file_id}", response_model=FileObject)
async def read(
    file_id: FileId, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> FileObject:
    return _file_object(await asyncio.to_thread(_store(request).get, caller.tenant_id, file_id))


@router.get(
    "/v1/files/{file_id}/content",
    response_class=Response,
    responses={200: {"content": {"application/jsonl": {}}, "description": "The file as uploaded."}},
)
async def content(
    file_id: FileId, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> Response:
    data = await asyncio.to_thread(_store(request).content, caller.tenant_id, file_id)
    return Response(data, media_type="application/jsonl")


@router.delete("/v1/files/{file_id}", response_model=FileDeleted)
async def delete(
    file_id: FileId, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> FileDeleted:
    await asyncio.to_thread(_store(request).delete, caller.tenant_id, file_id)
    return FileDeleted(id=file_id, deleted=True)
