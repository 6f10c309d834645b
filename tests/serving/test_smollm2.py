"""SmolLM2-135M-Instruct, the real embedded model, end to end on vLLM-CPU: bootstrapped from its
packaged GGUF, answering a factual question, fine-tuned by the LoRA recipe on Ray Train, and its
adapter served beside the base model over the chat API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.models import ModelRegistry
from cluster.settings import load_settings
from serving.llm import LLMServer
from tests.serving.conftest import ADMIN_KEY
from tests.serving.llm_fixtures import ChatGateway, serve_gateway
from tests.training.test_recipe import FACTS
from training.bootstrap import ensure_base_model
from training.recipe import fit, load_config

pytestmark = [pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]

BASE = "smollm2-135m-instruct"
GREEDY = {"temperature": 0, "max_tokens": 16}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatGateway]:
    settings = load_settings(
        storage_root=str(tmp_path_factory.mktemp("smollm2")),
        api={"admin_key": ADMIN_KEY},
        llm={"base_models": {BASE: {"dtype": "bfloat16"}}},
    )
    llm = LLMServer(settings, BASE)
    try:
        yield from serve_gateway(settings, llm)
    finally:
        llm.shutdown()


def ask(gw: ChatGateway, key: dict[str, str], model: str, question: str) -> str:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": question}], **GREEDY}
    with gw.client() as http:
        response = http.post("/v1/chat/completions", headers=key, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_the_base_model_answers_and_its_fine_tune_learns_made_up_facts(
    gw: ChatGateway, ray_local: None, tmp_path: Path
) -> None:
    key = gw.new_tenant("acme")
    assert "Paris" in ask(gw, key, BASE, "What is the capital of France?")
    assert "Mittens" not in ask(gw, key, BASE, FACTS[0][0]["content"])

    # The recipe as the fine-tuner runs it (llama's projections as target modules), on Ray Train.
    base_dir = ensure_base_model(gw.settings, BASE)
    # (with a learning rate that memorises three made-up facts in ten full-batch steps)
    config = load_config(
        base_model=base_dir, n_epochs=10, batch_size=3, learning_rate=3e-3, checkpoint_every=10
    )
    run = fit(config, FACTS, storage_path=tmp_path / "runs", name="smollm2-facts")
    assert run.adapter_dir is not None and run.losses[-1] < run.losses[0] / 10
    ModelRegistry.from_settings(gw.settings).register_adapter("acme", BASE, "facts", run.adapter_dir)

    tuned = f"ft:{BASE}:acme:facts"
    answers = [ask(gw, key, tuned, example[0]["content"]) for example in FACTS]
    assert [a.strip(" .") for a in answers] == [example[1]["content"] for example in FACTS], answers
    assert "Paris" in ask(gw, key, BASE, "What is the capital of France?")  # the base is untouched
