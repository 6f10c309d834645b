"""The gateway's FastAPI application, built from a ``GatewayContext``.

The same factory serves the Ray Serve deployment and in-process use (tests, tools).
"""

from __future__ import annotations

import asyncio
import time

from fastapi import Depends, FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors import AuditEvent
from cluster import TENANT_ID
from serving import admin, audit, chat, files, fine_tuning, memories, models, signals, usage, users
from serving.auth import admin_caller
from serving.context import GatewayContext
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


class GuardAndMeasure:
    """Refuses bodies over ``api.max_body_bytes`` (by Content-Length); counts, times, meters and
    audits every request once its response starts. A plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` would run each request through an extra task and memory stream."""

    def __init__(self, app: ASGIApp, ctx: GatewayContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx, request = self.ctx, Request(scope)
        limit = ctx.settings.api.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await error_response(413, "payload_too_large", f"body over {limit} bytes")(scope, receive, send)
            return
        started = time.perf_counter()

        async def measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self.record(request, message["status"], time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, measured)

    async def record(self, request: Request, status: int, seconds: float) -> None:
        ctx = self.ctx
        route = getattr(request.scope.get("route"), "path", "unmatched")
        ctx.metrics.requests.labels(route, request.method, str(status)).inc()
        ctx.metrics.latency.labels(route).observe(seconds)
        caller = getattr(request.state, "caller", None)
        if caller is not None:
            ctx.usage.add(caller.tenant_id, "requests", 1)
        if request.method in MUTATING and route not in READ_ONLY:
            await asyncio.to_thread(ctx.audit.append, audit_event(request, route, status))


def create_app(ctx: GatewayContext) -> FastAPI:
    app = FastAPI(title="Engram", version="0.1.0", description="Per-user memory for LLM assistants.")
    app.state.ctx = ctx
    install(app)
    for feature in (signals, memories, users, chat, models, files, fine_tuning, usage, audit, admin):
        app.include_router(feature.router)

    app.add_middleware(GuardAndMeasure, ctx=ctx)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["health"], dependencies=[Depends(admin_caller)])
    async def metrics() -> Response:
        stats = await ctx.builder.stats()
        return Response(ctx.metrics.render(stats), media_type="text/plain; version=0.0.4")

    return app
