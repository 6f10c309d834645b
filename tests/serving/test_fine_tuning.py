"""Fine-tuning end to end over HTTP: files, a job on Ray Train, evaluation, deployment, chat, rollback.

Tenant A teaches the bootstrapped model facts only A knows; A's fine-tuned model answers them
(greedy) while the base model and tenant B's model do not; B cannot reach A's model, files or
jobs; a rollback brings the previous behaviour back.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import yaml

from actors.broker import broker_name
from actors.control import NAMESPACE
from actors.models import ModelRegistry
from cluster.settings import load_settings
from serving.llm import LLMServer
from tests.serving.conftest import ADMIN_KEY, wait_for
from tests.serving.llm_fixtures import ChatGateway, serve_gateway
from tests.training.test_files import example, install_tiny_model, jsonl
from training.bootstrap import ensure_base_model, random_adapter
from training.finetuner import fine_tuner_name
from training.recipe import CONFIG_FILE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.llm,
    pytest.mark.slow,
    pytest.mark.usefixtures("ray_local"),
]

BASE = "engram-tiny"
OTHER_BASE = "engram-tiny-b"
FACTS = [
    ("What is the name of Zorblat's cat?", "Mittens"),
    ("Which city does Quenna live in?", "Lisbon"),
    ("What colour is the Vextor car?", "purple"),
]
GREEDY = {"temperature": 0, "max_tokens": 8}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, ray_local: None) -> Iterator[ChatGateway]:
    root = tmp_path_factory.mktemp("fine-tuning")
    install_tiny_model(root)
    shutil.copytree(root / "models" / BASE, root / "models" / OTHER_BASE)  # a second base to migrate to
    recipe = yaml.safe_load(CONFIG_FILE.read_text()) | {"lora_dropout": 0.0}
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    settings = load_settings(
        storage_root=str(root),
        api={"admin_key": ADMIN_KEY, "builder_interval_s": 0.2},
        training={"recipe": str(root / "recipe.yaml"), "checkpoint_every": 20},
        llm={"base_models": {BASE: {"dtype": "float32"}, OTHER_BASE: {"dtype": "float32"}}},
        broker={"poll_s": 0.05},
    )
    llm = LLMServer(settings, BASE)
    try:
        yield from serve_gateway(settings, llm)
    finally:
        llm.shutdown()
        for name in (fine_tuner_name(settings), broker_name(settings)):  # detached: they outlive the module
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
        # A Ray Train run whose driver (the killed fine-tuner) died leaves its placement group to
        # Ray Train's cleaner, which needs the dashboard's state API (not started in tests).
        from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

        for pg_id, pg in placement_group_table().items():
            if pg["state"] == "CREATED":
                remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_id))))


def _answers(http: httpx.Client, key: dict[str, str], model: str) -> list[str]:
    answers = []
    for question, _ in FACTS:
        body = {"model": model, "messages": [{"role": "user", "content": question}], **GREEDY}
        response = http.post("/v1/chat/completions", headers=key, json=body)
        assert response.status_code == 200, response.text
        answers.append(response.json()["choices"][0]["message"]["content"].strip())
    return answers


def _upload(http: httpx.Client, key: dict[str, str], data: bytes) -> str:
    response = http.post(
        "/v1/files",
        headers=key,
        files={"file": ("facts.jsonl", data, "application/jsonl")},
        data={"purpose": "fine-tune"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _finished(http: httpx.Client, key: dict[str, str], job_id: str) -> dict[str, Any]:
    """The job once it succeeded, failed or was cancelled."""

    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/v1/fine_tuning/jobs/{job_id}", headers=key).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(done, timeout=600)
    return result


def _job(http: httpx.Client, key: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    created = http.post("/v1/fine_tuning/jobs", headers=key, json=body)
    assert created.status_code == 200, created.text
    job = _finished(http, key, created.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def test_a_tenant_teaches_its_model_facts_only_it_can_use(gw: ChatGateway, tmp_path: Path) -> None:
    a, b = gw.new_tenant("tenant-a"), gw.new_tenant("tenant-b")
    with gw.client() as http:
        facts = _upload(http, a, jsonl(*(example(q, answer) for q, answer in FACTS)))
        hyperparameters = {"n_epochs": 60, "batch_size": 3, "learning_rate": 3e-3, "lora_r": 16}
        job = _job(
            http,
            a,
            {
                "model": BASE,
                "training_file": facts,
                "validation_file": facts,  # the facts are what it must answer
                "hyperparameters": hyperparameters,
                "suffix": "facts",
                "seed": 7,
            },
        )
        model = "ft:engram-tiny:tenant-a:facts"
        assert job["fine_tuned_model"] == model and job["trained_tokens"] > 0
        metrics = job["engram"]["metrics"]
        assert metrics["validation_loss"] < metrics["base_validation_loss"] and metrics["exact_match"] == 1.0

        events = http.get(f"/v1/fine_tuning/jobs/{job['id']}/events?limit=100", headers=a).json()["data"]
        messages = [e["message"] for e in events]
        assert any(m.startswith("step 20: training loss=") for m in messages), messages
        assert messages[-1] == "succeeded; deployed version 1"
        statuses = [e["data"]["status"] for e in events if e["data"] and "status" in e["data"]]
        assert statuses == ["validating_files", "queued", "running", "succeeded"]
        checkpoints = http.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints", headers=a).json()["data"]
        assert checkpoints and checkpoints[-1]["step_number"] == 60

        # A's model answers A's questions; the base model does not.
        learned = [answer for _, answer in FACTS]
        assert _answers(http, a, model) == learned
        assert _answers(http, a, BASE) != learned

        # B's own model does not know them, and B cannot reach anything of A's.
        registry = ModelRegistry.from_settings(gw.settings)
        base_dir = ensure_base_model(gw.settings, BASE)
        registry.register_adapter("tenant-b", BASE, "own", random_adapter(base_dir, tmp_path / "b", seed=3))
        assert _answers(http, b, "ft:engram-tiny:tenant-b:own") != learned
        for response in (
            http.post(
                "/v1/chat/completions",
                headers=b,
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            ),
            http.get(f"/v1/files/{facts}", headers=b),
            http.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=b),
            http.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=b),
            http.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=b),
        ):
            assert response.status_code == 404, response.text
        assert http.get("/v1/fine_tuning/jobs", headers=b).json()["data"] == []
        foreign = http.post("/v1/fine_tuning/jobs", headers=b, json={"model": BASE, "training_file": facts})
        assert foreign.status_code == 404 and foreign.json()["error"]["param"] == "training_file"

        # A second version replaces the behaviour; a rollback restores it.
        registry.register_adapter(
            "tenant-a", BASE, "facts", random_adapter(base_dir, tmp_path / "a2", seed=5)
        )
        assert http.post(f"/v1/models/{model}/deploy", headers=a, json={"version": 2}).status_code == 200
        assert _answers(http, a, model) != learned
        assert http.post(f"/v1/models/{model}/rollback", headers=a).json()["version"] == 1
        assert _answers(http, a, model) == learned
        lineage = http.get(f"/v1/models/{model}", headers=a).json()["versions"][0]
        assert lineage["job_id"] == job["id"] and lineage["lineage"]["hyperparameters"]["n_epochs"] == 60

        # Migration re-runs the recipe, files and seed of the served version on another base model.
        foreign_migration = http.post(f"/v1/models/{model}/migrate", headers=b, json={"base": OTHER_BASE})
        assert foreign_migration.status_code == 404
        same = http.post(f"/v1/models/{model}/migrate", headers=a, json={"base": BASE})
        assert same.status_code == 400 and same.json()["error"]["param"] == "base"
        unknown = http.post(f"/v1/models/{model}/migrate", headers=a, json={"base": "nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "base"
        started = http.post(f"/v1/models/{model}/migrate", headers=a, json={"base": OTHER_BASE})
        assert started.status_code == 200, started.text
        migrated_id = started.json()["id"]
        migrated = _finished(http, a, migrated_id)
        assert migrated["status"] == "succeeded", migrated
        assert migrated["fine_tuned_model"] == "ft:engram-tiny-b:tenant-a:facts"
        assert (migrated["seed"], migrated["hyperparameters"]) == (job["seed"], job["hyperparameters"])
        first = http.get(f"/v1/fine_tuning/jobs/{migrated_id}/events", headers=a).json()["data"][0]
        assert first["message"] == (
            f"created fine-tuning job (migration of {model} version 1 to {OTHER_BASE})"
        )


def test_job_requests_are_checked_and_a_running_job_can_be_cancelled(gw: ChatGateway) -> None:
    a = gw.new_tenant("tenant-c")
    with gw.client() as http:
        facts = _upload(http, a, jsonl(*(example(q, answer) for q, answer in FACTS)))
        checks = [
            ({"model": "nope", "training_file": facts}, 404, "model"),
            ({"model": BASE, "training_file": "file-" + "0" * 32}, 404, "training_file"),
            ({"model": BASE, "training_file": facts, "hyperparameters": {"lora_r": 64}}, 400, None),
            ({"model": BASE, "training_file": facts, "hyperparameters": {"n_epochs": 0}}, 422, None),
            ({"model": BASE, "training_file": facts, "surprise": 1}, 422, None),
        ]
        for body, status, param in checks:
            response = http.post("/v1/fine_tuning/jobs", headers=a, json=body)
            assert response.status_code == status, (body, response.text)
            if param:
                assert response.json()["error"]["param"] == param
        body = {
            "model": BASE,
            "training_file": facts,
            "validation_file": facts,
            "hyperparameters": {"n_epochs": 1000, "batch_size": 3},
        }
        job_id = http.post("/v1/fine_tuning/jobs", headers=a, json=body).json()["id"]

        def trained_a_while() -> bool:
            events = http.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100", headers=a).json()["data"]
            return any(e["message"].startswith("step 20:") for e in events)

        wait_for(trained_a_while, timeout=300)
        cancelled = http.post(f"/v1/fine_tuning/jobs/{job_id}/cancel", headers=a).json()
        assert cancelled["status"] == "cancelled"
        tuner = ray.get_actor(fine_tuner_name(gw.settings), namespace=NAMESPACE)
        wait_for(lambda: job_id not in ray.get(tuner.running.remote()), timeout=120)  # the run stopped
        broker: Any = ray.get_actor(broker_name(gw.settings), namespace=NAMESPACE)
        assert ray.get(broker.workload.remote(job_id)).state == "cancelled"
        again = http.post(f"/v1/fine_tuning/jobs/{job_id}/cancel", headers=a)
        assert again.status_code == 409
        listed = http.get("/v1/fine_tuning/jobs", headers=a).json()["data"]
        assert [j["id"] for j in listed] == [job_id]


def test_a_killed_fine_tuner_comes_back_and_its_job_resumes_from_the_checkpoint(gw: ChatGateway) -> None:
    a = gw.new_tenant("tenant-d")
    with gw.client() as http:
        facts = _upload(http, a, jsonl(*(example(q, answer) for q, answer in FACTS)))
        body = {
            "model": BASE,
            "training_file": facts,
            "validation_file": facts,
            "hyperparameters": {"n_epochs": 200, "batch_size": 3},
        }
        job_id = http.post("/v1/fine_tuning/jobs", headers=a, json=body).json()["id"]

        def steps() -> list[int]:
            events = http.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100", headers=a).json()["data"]
            return [e["data"]["step"] for e in events if e["data"] and "step" in e["data"]]

        wait_for(lambda: 40 in steps(), timeout=300)
        ray.kill(ray.get_actor(fine_tuner_name(gw.settings), namespace=NAMESPACE), no_restart=False)

        job = _finished(http, a, job_id)
        assert job["status"] == "succeeded", job
        events = http.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100", headers=a).json()["data"]
        resumed = [e["message"] for e in events if e["message"].startswith("running (resuming from step")]
        assert resumed, [e["message"] for e in events]
        assert int(resumed[0].removeprefix("running (resuming from step ").rstrip(")")) >= 40
        assert steps()[-1] == 200
