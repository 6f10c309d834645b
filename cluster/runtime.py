"""Starting or joining Ray, and the resource shapes Engram's workloads ask for."""

from __future__ import annotations

from typing import Any

import ray

from cluster.settings import EmbeddingSettings, Settings


def ensure_ray(settings: Settings) -> None:
    """Join the configured Ray cluster, or start a local one; a no-op when Ray is already up."""
    if ray.is_initialized():
        return
    ray.init(
        address=settings.ray.address,
        num_cpus=settings.ray.num_cpus if settings.ray.address is None else None,
        namespace=settings.ray.namespace,
        include_dashboard=False,
        log_to_driver=False,
    )


def cluster_gpus() -> float:
    """GPUs the connected Ray cluster has in total (0 on a CPU-only cluster)."""
    return float(ray.cluster_resources().get("GPU", 0))


def embedding_actor_resources(embedding: EmbeddingSettings) -> dict[str, Any]:
    """Ray resources of one embedding actor: a GPU fraction when the cluster has GPUs, else a CPU."""
    if cluster_gpus() > 0:
        return {"num_gpus": embedding.gpu_fraction, "num_cpus": 0.5}
    return {"num_cpus": 1}
