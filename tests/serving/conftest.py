"""A gateway app in this process: the real FastAPI app, real LanceDB, SQLite, MiniLM and builder."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cluster import Settings, load_settings
from serving import GatewayContext, MemoryBuilder, Retriever, create_app

ADMIN_KEY = "admin-key-for-tests-0123456789"


@dataclass
class Gateway:
    client: TestClient
    settings: Settings
    builder: MemoryBuilder
    ctx: GatewayContext

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    def new_tenant(self, tenant_id: str) -> dict[str, str]:
        response = self.client.post("/admin/tenants", json={"tenant_id": tenant_id}, headers=self.admin)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['api_key']['key']}"}


def make_gateway(
    root: Path, quotas: dict[str, Any] | None = None, **api: Any
) -> tuple[Gateway, Callable[[], None]]:
    settings = load_settings(
        storage_root=str(root),
        api={"admin_key": ADMIN_KEY, "builder_interval_s": 0.2, **api},
        quotas=quotas or {},
    )
    return gateway_over(settings)


def gateway_over(settings: Settings) -> tuple[Gateway, Callable[[], None]]:
    """The gateway app in this process over ``settings``, with its own builder and retrieval."""
    builder = MemoryBuilder(settings)
    ctx = GatewayContext.create(settings, Retriever(settings), builder)
    client = TestClient(create_app(ctx))

    def close() -> None:
        builder.close()
        ctx.usage.close()

    return Gateway(client, settings, builder, ctx), close


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw, close = make_gateway(tmp_path_factory.mktemp("gateway"))
    yield gw
    close()


def wait_for(condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")
