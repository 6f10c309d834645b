"""The gateway's FastAPI application, built from a ``GatewayContext``.

The same factory serves the Ray Serve deployment and in-process use (tests, tools).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response

from actors.audit import AuditEvent
from cluster.paths import TENANT_ID
from serving import admin, audit, chat, files, fine_tuning, memories, models, signals, usage, users
from serving.auth import admin_caller
from serving.context import GatewayContext, call
from serving.errors import error_response, install

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POST routes that change nothing: not audited.
READ_ONLY = frozenset({"/v1/memories/search", "/v1/chat/completions"})


def audit_event(request: Request, route: str, status: int) -> AuditEvent:
    """Who (key id, ``admin`` or ``anonymous``) did what to which resource, and the outcome."""
    caller = getattr(request.state, "caller", None)
    if caller is not None:
        tenant_id, actor = caller.tenant_id, caller.key_id
    else:
        # an admin route names its tenant in the path, or (tenant creation) sets it on the request
        named = getattr(request.state, "tenant_id", None) or request.scope.get("path_params", {}).get(
            "tenant_id"
        )
        tenant_id = named if isinstance(named, str) and TENANT_ID.fullmatch(named) else None
        actor = "admin" if getattr(request.state, "admin", False) else "anonymous"
    return AuditEvent(tenant_id, actor, f"{request.method} {route}", request.url.path, status)


def create_app(ctx: GatewayContext) -> FastAPI:
    app = FastAPI(title="Engram", version="0.1.0", description="Per-user memory for LLM assistants.")
    app.state.ctx = ctx
    install(app)
    for feature in (signals, memories, users, chat, models, files, fine_tuning, usage, audit, admin):
        app.include_router(feature.router)

    @app.middleware("http")
    async def guard_and_measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > ctx.settings.api.max_body_bytes):
            return error_response(
                413, "payload_too_large", f"body over {ctx.settings.api.max_body_bytes} bytes"
            )
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        ctx.metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        ctx.metrics.latency.labels(route).observe(time.perf_counter() - started)
        caller = getattr(request.state, "caller", None)
        if caller is not None:
            ctx.usage.add(caller.tenant_id, "requests", 1)
        if request.method in MUTATING and route not in READ_ONLY:
            await asyncio.to_thread(ctx.audit.append, audit_event(request, route, response.status_code))
        return response

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["health"], dependencies=[Depends(admin_caller)])
    async def metrics() -> Response:
        stats = await call(ctx.builder, "stats")
        return Response(ctx.metrics.render(stats), media_type="text/plain; version=0.0.4")

    return app
