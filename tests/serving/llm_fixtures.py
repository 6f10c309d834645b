"""Shared pieces of the LLM tests: a real vLLM engine, peft adapters, a gateway over real HTTP."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from cluster import Settings
from serving import GatewayContext, LLMServer, MemoryBuilder, Retriever, create_app
from tests.serving.conftest import ADMIN_KEY, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ChatGateway:
    """The real gateway app served by uvicorn in a thread, with an in-process LLM engine."""

    url: str
    settings: Settings
    llm: LLMServer
    builder: MemoryBuilder

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)

    def new_tenant(self, tenant_id: str) -> dict[str, str]:
        with self.client() as http:
            response = http.post(
                "/admin/tenants",
                json={"tenant_id": tenant_id},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['api_key']['key']}"}


def serve_gateway(settings: Settings, llm: LLMServer) -> Iterator[ChatGateway]:
    import uvicorn

    builder = MemoryBuilder(settings)
    ctx = GatewayContext.create(settings, Retriever(settings), builder, {llm.base_model: llm})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30)
    try:
        yield ChatGateway(f"http://127.0.0.1:{port}", settings, llm, builder)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        builder.close()
        ctx.usage.close()


def sse_events(response: httpx.Response) -> list[Any]:
    """The JSON payloads of a server-sent event stream, up to ``[DONE]`` (which must end it)."""
    events: list[Any] = []
    for line in response.iter_lines():
        if not line:
            continue
        assert line.startswith("data: "), line
        data = line[len("data: ") :]
        if data == "[DONE]":
            return events
        events.append(json.loads(data))
    raise AssertionError("the stream ended without [DONE]")
