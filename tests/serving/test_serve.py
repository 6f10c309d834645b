"""The Engram Serve application on a real local Ray, over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster.runtime import start_serving
from cluster.settings import load_settings
from tests.serving.conftest import ADMIN_KEY, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    from ray import serve

    port = _free_port()
    settings = load_settings(
        storage_root=str(tmp_path), api={"admin_key": ADMIN_KEY, "port": port, "builder_interval_s": 0.2}
    )
    url = start_serving(settings)
    yield url
    serve.shutdown()


def test_signal_to_searchable_memory_over_http(served: str) -> None:
    with httpx.Client(base_url=served, timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        created = http.post(
            "/admin/tenants", json={"tenant_id": "acme"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        posted = http.post(
            "/v1/signals",
            headers=key,
            json={
                "signals": [
                    {
                        "user_id": "alice",
                        "source": "chat",
                        "role": "user",
                        "session_id": "s1",
                        "text": "I started working at Globex last week",
                        "occurred_at": "2024-06-03T09:00:00Z",
                    }
                ]
            },
        )
        assert posted.json()["accepted"] == 1

        def employer() -> list[dict]:
            body = {"user_id": "alice", "query": "who is her employer", "kinds": ["fact"]}
            results = http.post("/v1/memories/search", headers=key, json=body).json()["results"]
            return [r for r in results if r["slot"] == "employer"]

        found = wait_for(employer, timeout=90)
        assert found[0]["value"] == "Globex" and found[0]["sources"]
        assert http.get("/v1/memories", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert (
            "engram_builder_total"
            in http.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).text
        )
