"""The gateway's FastAPI application, built from a ``GatewayContext``.

The same factory serves the Ray Serve deployment and in-process use (tests, tools).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response

from serving import admin, chat, memories, models, signals, users
from serving.auth import admin_caller
from serving.context import GatewayContext, call
from serving.errors import error_response, install


def create_app(ctx: GatewayContext) -> FastAPI:
    app = FastAPI(title="Engram", version="0.1.0", description="Per-user memory for LLM assistants.")
    app.state.ctx = ctx
    install(app)
    for feature in (signals, memories, users, chat, models, admin):
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
        return response

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["health"], dependencies=[Depends(admin_caller)])
    async def metrics() -> Response:
        stats = await call(ctx.builder, "stats")
        return Response(ctx.metrics.render(stats), media_type="text/plain; version=0.0.4")

    return app
