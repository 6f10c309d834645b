"""The Engram Serve application on a real local Ray, over real HTTP."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster.settings import load_settings
from serving import start_serving
from tests.serving.conftest import ADMIN_KEY, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The app on a free port; a test marked ``llm`` also gets the vLLM deployment (slow to start)."""
    from ray import serve

    port = _free_port()
    llm = {} if request.node.get_closest_marker("llm") else {"base_models": {}}
    settings = load_settings(
        storage_root=str(tmp_path),
        api={"admin_key": ADMIN_KEY, "port": port, "builder_interval_s": 0.2},
        llm=llm,
        security={"scratch_dir": str(tmp_path / "scratch")},
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


@pytest.mark.llm
@pytest.mark.slow
def test_chat_through_serve_with_memory_and_a_client_leaving_mid_stream(served: str, tmp_path: Path) -> None:
    from ray import serve

    from actors.models import ModelRegistry
    from tests.serving.llm_fixtures import sse_events
    from training.bootstrap import ensure_base_model, random_adapter

    with httpx.Client(base_url=served, timeout=120) as http:
        created = http.post(
            "/admin/tenants", json={"tenant_id": "acme"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        signal = {
            "user_id": "alice",
            "source": "chat",
            "role": "user",
            "session_id": "s1",
            "text": "I moved to Lisbon last month",
            "occurred_at": "2024-06-03T09:00:00Z",
        }
        assert http.post("/v1/signals", headers=key, json={"signals": [signal]}).json()["accepted"] == 1
        body = {
            "model": "engram-tiny",
            "messages": [{"role": "user", "content": "Where do I live?"}],
            "user": "alice",
            "temperature": 0,
            "max_tokens": 8,
        }

        def answered_with_memory() -> dict:
            response = http.post("/v1/chat/completions", headers=key, json=body).json()
            return response if response["engram"]["memory_ids"] else {}

        answer = wait_for(answered_with_memory, timeout=180)
        assert answer["choices"][0]["message"]["content"] and answer["usage"]["completion_tokens"] <= 8
        assert [m["id"] for m in http.get("/v1/models", headers=key).json()["data"]] == ["engram-tiny"]

        streamed = {**body, "stream": True}
        with http.stream("POST", "/v1/chat/completions", headers=key, json=streamed) as response:
            events = sse_events(response)
        assert (
            "".join(e["choices"][0]["delta"].get("content", "") for e in events)
            == (answer["choices"][0]["message"]["content"])
        )

        assert unfinished() == 0
        # 1,900 tokens (min_tokens: no early end) take seconds; the client leaves after the first.
        long = {**body, "stream": True, "max_tokens": 1900, "min_tokens": 1900, "memory": False}
        with http.stream("POST", "/v1/chat/completions", headers=key, json=long) as response:
            lines = response.iter_lines()  # held: a dropped iterator would close the response
            assert next(lines).startswith("data: ")
            assert unfinished() == 1
        wait_for(lambda: unfinished() == 0, timeout=15)

        # An adapter served by the engine replica is decrypted into its private scratch folder ...
        settings = load_settings(storage_root=str(tmp_path))
        adapter = random_adapter(ensure_base_model(settings, "engram-tiny"), tmp_path / "adapter", seed=3)
        model = (
            ModelRegistry.from_settings(settings).register_adapter("acme", "engram-tiny", "s", adapter).model
        )
        tuned = http.post("/v1/chat/completions", headers=key, json={**body, "model": model, "memory": False})
        assert tuned.status_code == 200, tuned.text
    copies = list((tmp_path / "scratch").glob("engram-adapters-*/acme/*/adapter_model.safetensors"))
    assert len(copies) == 1
    # ... and removed when Serve stops the replica.
    serve.shutdown()
    assert not list((tmp_path / "scratch").glob("engram-adapters-*"))


def unfinished() -> int:
    """Requests the tiny model's engine holds, asked through a handle whose router runs on a
    loop of its own: a Serve that runs handle routers on the caller's event loop
    (RAY_SERVE_THROUGHPUT_OPTIMIZED) has no sync handles."""
    from ray import serve

    async def ask() -> int:
        return await serve.get_deployment_handle("LLM-engram-tiny", app_name="engram").unfinished.remote()

    return asyncio.run_coroutine_threadsafe(ask(), _handle_loop()).result(timeout=30)


@functools.cache
def _handle_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="serve-handles", daemon=True).start()
    return loop


def test_a_killed_gateway_replica_comes_back_with_tenants_quotas_usage_and_audit_intact(
    served: str,
) -> None:
    """Tenants, keys, quotas, usage and the audit log live in SQL: a crashed gateway loses none."""
    import ray

    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=served, timeout=30) as http:
        created = http.post("/admin/tenants", json={"tenant_id": "durable"}, headers=admin).json()
        key = {"Authorization": f"Bearer {created['api_key']['key']}"}
        quota = http.put("/admin/tenants/durable/quota", json={"requests_per_s": 50}, headers=admin)
        assert quota.status_code == 200, quota.text
        for _ in range(3):
            assert http.post("/v1/signals", headers=key, json={"signals": []}).status_code == 200
        # usage is written to SQL every usage_flush_s: wait until it is there, then crash
        wait_for(lambda: http.get("/v1/usage", headers=key).json()["usage"]["requests"] >= 3)
        before = {
            "usage": http.get("/v1/usage", headers=key).json()["usage"]["requests"],
            "audit": http.get("/v1/audit", headers=key).json()["events"],
            "quota": http.get("/admin/tenants/durable/quota", headers=admin).json(),
        }

        def gateways() -> set[str]:
            named = ray.util.list_named_actors(all_namespaces=True)
            return {a["name"] for a in named if a["namespace"] == "serve" and "#Gateway#" in a["name"]}

        (replica,) = gateways()
        ray.kill(ray.get_actor(replica, namespace="serve"))  # a crash: no clean shutdown
        wait_for(lambda: gateways() - {replica}, timeout=60)

        def answers() -> bool:
            try:
                return http.get("/v1/usage", headers=key).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=60)
        assert http.get("/admin/tenants/durable/quota", headers=admin).json() == before["quota"]
        assert http.get("/v1/usage", headers=key).json()["usage"]["requests"] >= before["usage"]
        events = http.get("/v1/audit", headers=key).json()["events"]
        assert events[: len(before["audit"])] == before["audit"]
