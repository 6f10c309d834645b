"""Fine-tuning jobs, OpenAI-compatible: create, list, get, events, checkpoints, cancel.

Creating and cancelling go to the fine-tuner actor (``training.finetuner``), which runs the jobs;
reads come straight from SQL. The tenant always comes from the key: another tenant's job is 404.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from ray.exceptions import RayTaskError

from actors import JOB_ID, FileStore, JobRequest, JobStore, check_request
from serving.auth import Caller, tenant_caller
from serving.context import GatewayContext
from training import checkpoints, fine_tuner

router = APIRouter(tags=["fine-tuning"])
JobId = Annotated[str, Path(pattern=JOB_ID, description="A job id, `ftjob-` and 24 hex digits.")]
Limit = Annotated[int, Query(ge=1, le=100)]


def _unix(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def _job_object(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if k not in ("tenant_id", "suffix", "version", "metrics")}
    out.update(
        created_at=_unix(job["created_at"]),
        started_at=_unix(job["started_at"]),
        finished_at=_unix(job["finished_at"]),
        organization_id=job["tenant_id"],
        engram={"suffix": job["suffix"], "version": job["version"], "metrics": job["metrics"]},
    )
    return out


async def _actor_call(ref: Any) -> Any:
    """Await an actor call; an error it raised comes back as itself (mapped to its 4xx)."""
    try:
        return await ref
    except RayTaskError as e:
        raise (e.cause or e) from None


async def submit_job(
    ctx: GatewayContext, tenant_id: str, body: JobRequest, origin: str | None = None
) -> dict[str, Any]:
    """Check the request here (4xx before any Ray call), then hand it to the fine-tuner."""
    files = FileStore(ctx.settings)
    await asyncio.to_thread(check_request, ctx.settings, files, tenant_id, body)
    tuner = await asyncio.to_thread(fine_tuner, ctx.settings)
    job = await _actor_call(tuner.submit.remote(tenant_id, body.model_dump(), origin))
    return _job_object(job)


def _store(request: Request) -> JobStore:
    ctx: GatewayContext = request.app.state.ctx
    return JobStore.from_settings(ctx.settings)


@router.post("/v1/fine_tuning/jobs")
async def create_job(
    body: JobRequest, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict[str, Any]:
    return await submit_job(request.app.state.ctx, caller.tenant_id, body)


@router.get("/v1/fine_tuning/jobs")
async def list_jobs(
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
    limit: Limit = 20,
    after: Annotated[str | None, Query(pattern=JOB_ID)] = None,
) -> dict[str, Any]:
    jobs = await asyncio.to_thread(_store(request).list_jobs, caller.tenant_id, limit=limit + 1, after=after)
    return {"object": "list", "data": [_job_object(j) for j in jobs[:limit]], "has_more": len(jobs) > limit}


@router.get("/v1/fine_tuning/jobs/{job_id}")
async def get_job(
    job_id: JobId, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict[str, Any]:
    return _job_object(await asyncio.to_thread(_store(request).get, caller.tenant_id, job_id))


@router.get("/v1/fine_tuning/jobs/{job_id}/events")
async def job_events(
    job_id: JobId,
    request: Request,
    caller: Annotated[Caller, Depends(tenant_caller)],
    limit: Limit = 20,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> dict[str, Any]:
    store = _store(request)
    events = await asyncio.to_thread(store.events, caller.tenant_id, job_id, limit=limit + 1, after=after)
    data = [
        {"object": "fine_tuning.job.event", **e, "created_at": _unix(e["created_at"])} for e in events[:limit]
    ]
    return {"object": "list", "data": data, "has_more": len(events) > limit}


@router.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
async def job_checkpoints(
    job_id: JobId, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict[str, Any]:
    ctx: GatewayContext = request.app.state.ctx
    job = await asyncio.to_thread(_store(request).get, caller.tenant_id, job_id)
    found = await asyncio.to_thread(checkpoints, ctx.settings, job)
    data = [
        {
            "object": "fine_tuning.job.checkpoint",
            "id": f"ftckpt-{job_id.removeprefix('ftjob-')}-{c['step']}",
            "created_at": _unix(c["created_at"]),
            "step_number": c["step"],
            "fine_tuning_job_id": job_id,
            "metrics": c["metrics"],
        }
        for c in found
    ]
    return {"object": "list", "data": data, "has_more": False}


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel")
async def cancel_job(
    job_id: JobId, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict[str, Any]:
    ctx: GatewayContext = request.app.state.ctx
    tuner = await asyncio.to_thread(fine_tuner, ctx.settings)
    return _job_object(await _actor_call(tuner.cancel.remote(caller.tenant_id, job_id)))
