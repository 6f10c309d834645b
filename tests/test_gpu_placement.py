"""GPUs are asked for from the settings, so an autoscaler sees the demand: on a Ray cluster with a
CPU head and no GPU node, a model whose settings name a GPU (``llm.base_models.<m>.gpus``) leaves
its replica pending as a demand for a GPU, in the cluster status an autoscaler reads, instead of
running on a CPU; a node with a (logical) GPU added, as an autoscaler would, the replica starts
there and answers a chat. Then a fine-tune with ``training.use_gpu``: the one GPU serves, so its
Ray Train worker waits as a second GPU demand (the broker admits it: ``broker.capacity_gpus`` is
the GPU pool an autoscaler may grow to); a second GPU node added, the run trains there.

In a fresh Python (a process joins one Ray only), on a ``ray.cluster_utils.Cluster``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.llm, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "placement-admin-key-0123456789"
REPLICA = "ServeReplica:engram:LLM-engram-tiny"


def test_a_gpu_model_waits_as_gpu_demand_then_starts_on_the_gpu_node(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "ENGRAM_"))}
    env |= {"RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    code = "import sys; from tests.test_gpu_placement import scenario; scenario(sys.argv[1])"
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"CPU": 0.5, "GPU": 1.0} in report["pending"], report
    assert report["replica_node"] == report["gpu_node"], report
    assert {"CPU": 1.0, "GPU": 1.0} in report["pending_training"], report
    assert report["train_nodes"] == [report["second_gpu_node"]], report


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s")


def scenario(tmp: str) -> None:
    import httpx
    import ray
    import ray._private.state
    from ray import serve
    from ray.autoscaler.v2.sdk import get_cluster_status
    from ray.cluster_utils import Cluster

    from cluster import load_settings
    from serving import start_serving
    from tests.training.test_files import example, jsonl
    from training import base_model_location

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        settings = load_settings(
            storage_root=f"{tmp}/store",
            ray={"address": cluster.address},
            api={"admin_key": ADMIN, "port": free_port(), "proxy_location": "HeadOnly"},
            training={"use_gpu": True},
            broker={"capacity_gpus": 2},
            llm={
                "min_replicas": 1,
                "max_replicas": 1,
                "base_models": {"engram-tiny": {"dtype": "float32", "gpus": 1}},
            },
        )
        base_model_location(settings, "engram-tiny")
        url = start_serving(settings, wait=False)

        def replicas() -> list[dict[str, Any]]:
            found = ray._private.state.actors().values()
            return [a for a in found if a["ActorClassName"] == REPLICA and a["State"] == "ALIVE"]

        def pending_gpus() -> list[dict[str, float]]:
            """The bundles waiting for resources (actors and placement groups) that ask for a GPU."""
            demands = get_cluster_status(cluster.address).resource_demands
            waiting = [*demands.ray_task_actor_demand, *demands.placement_group_demand]
            bundles = [dict(b.bundle) for d in waiting for b in d.bundles_by_count]
            return [b for b in bundles if b.get("GPU")]

        report: dict[str, Any] = {"pending": wait_for(pending_gpus, 180, "a pending demand for a GPU")}
        assert not replicas()  # it waits for a GPU; it does not run on a CPU
        gpu = cluster.add_node(num_cpus=2, num_gpus=1)  # as an autoscaler starts a GPU node
        report["gpu_node"] = gpu.node_id
        started = wait_for(replicas, 180, "the LLM replica")
        report["replica_node"] = started[0]["Address"]["NodeID"]

        with httpx.Client(base_url=url, timeout=120) as http:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            created = http.post("/admin/tenants", json={"tenant_id": "acme"}, headers=admin)
            assert created.status_code == 201, created.text
            key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
            body = {"model": "engram-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}

            def chat() -> httpx.Response | None:
                answered = http.post("/v1/chat/completions", headers=key, json=body)
                return answered if answered.status_code != 503 else None  # 503: the engine is starting

            answered = wait_for(chat, 240, "a chat")
            assert answered.status_code == 200, answered.text

            facts = jsonl(*(example(f"Code {i}?", f"It is {i}.") for i in range(4)))
            uploaded = http.post(
                "/v1/files",
                headers=key,
                files={"file": ("facts.jsonl", facts)},
                data={"purpose": "fine-tune"},
            )
            assert uploaded.status_code == 200, uploaded.text
            body = {
                "model": "engram-tiny",
                "training_file": uploaded.json()["id"],
                "hyperparameters": {"n_epochs": 2, "batch_size": 2},
            }
            job = http.post("/v1/fine_tuning/jobs", headers=key, json=body)
            assert job.status_code == 200, job.text
            report["pending_training"] = wait_for(
                lambda: [b for b in pending_gpus() if b.get("CPU") == 1.0], 180, "a fine-tune's GPU demand"
            )
            report["second_gpu_node"] = cluster.add_node(num_cpus=2, num_gpus=1).node_id

            def finished() -> dict[str, Any] | None:
                state = http.get(f"/v1/fine_tuning/jobs/{job.json()['id']}", headers=key).json()
                return state if state["status"] in ("succeeded", "failed", "cancelled") else None

            done = wait_for(finished, 240, "the fine-tune")
            assert done["status"] == "succeeded", done
            found = ray._private.state.actors().values()
            report["train_nodes"] = sorted(
                {a["Address"]["NodeID"] for a in found if a["ActorClassName"] == "RayTrainWorker"}
            )
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(report), flush=True)
